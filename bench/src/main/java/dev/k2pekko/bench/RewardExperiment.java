package dev.k2pekko.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.agents.JudgeRubric;
import dev.k2pekko.agents.OfflinePlay;
import dev.k2pekko.agents.TaskDraws;
import dev.k2pekko.agents.policy.LearnedPolicy;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.agents.policy.TeacherPolicy;
import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.critic.Critic;
import dev.k2pekko.critic.CriticModel;
import dev.k2pekko.critic.CriticTrainer;
import dev.k2pekko.critic.TrajectoryFeatures;
import dev.k2pekko.model.Decoder;
import dev.k2pekko.model.Losses;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.Sequence;
import dev.k2pekko.model.TokenBatch;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import dev.k2pekko.trainer.Reward;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * SFT then RL with the multi-objective reward and a learned critic, offline (no actors, one thread), in the default
 * noisy world: the experiment behind {@code k2 bench open} (open tasks rewarded by the critic alone) and
 * {@code k2 bench pareto} (reward weightings against success, cost and safety).
 *
 * <ol>
 *   <li>Synthesis: the teacher (the pipeline's mistakes, never retrying) on verifiable training tasks, judged; and on
 *   open training tasks, kept by the public checks only ({@link JudgeRubric#passesPublicChecks}: their checker is
 *   hidden from training).</li>
 *   <li>The critic ({@code k2.critic} settings) trains on the verifiable synthesis episodes and their verdicts, never on
 *   an open task's.</li>
 *   <li>SFT: {@code sftSteps} steps of 8 trajectories from both kinds of data (MuonClip, the pipeline's SFT schedule).</li>
 *   <li>RL rounds: {@code rlTasks} verifiable and {@code rlOpenTasks} open training tasks x {@code rollouts} at temperature
 *   1. A rollout's reward is {@link Reward#mix} with the weights; an open rollout's reward reads the critic's score, never
 *   its verdict ({@link OpenReward#CRITIC}), or, for the comparison, its hidden verdict ({@code ORACLE}), or it is not
 *   trained on ({@code NONE}). The filtered objective: cross-entropy on a group's successes of lowest penalty, from
 *   groups whose rewards differ. After each round the critic retrains on the round's verifiable rollouts (their verdicts
 *   are known) with as many synthesis examples replayed.</li>
 *   <li>Evaluations after SFT and after every round: the fixed held-out open tasks by the hidden rubric, and the
 *   held-out verifiable tasks of {@code k2 run}; success, tool calls and safety violations per episode.</li>
 * </ol>
 */
public final class RewardExperiment {
  private RewardExperiment() {}

  /** How the open tasks' rollouts are rewarded in RL. */
  public enum OpenReward { CRITIC, ORACLE, NONE }

  public record Config(long seed, int episodes, int openEpisodes, int sftSteps, int evalTasks, int openEvalTasks, int evalTrials,
                       int rlRounds, int rlTasks, int rlOpenTasks, int rollouts, int groupsPerStep, double lrSft, double lrRl,
                       Reward.Weights weights, OpenReward openReward) {
    public static Config defaults() {
      return new Config(42, 6000, 1500, 800, 100, 60, 4, 3, 200, 100, 4, 8, 0.01, 0.003, Reward.Weights.DEFAULT, OpenReward.CRITIC);
    }
  }

  /** One evaluation: held-out success, and per episode the tool calls and safety violations, verifiable and open. */
  public record Eval(double success, double calls, double violations, double openSuccess, double openCalls) {}

  /**
   * One stage: after SFT ({@code round} 0) or after RL round {@code round}. For a round, the critic's mean score on its
   * open rollouts (at the weights that rewarded them) next to their hidden success: the hacking watch of open tasks.
   */
  public record Point(int round, Eval eval, double openCriticMean, double openHiddenSuccess, double criticAuc) {}

  public record Result(Config config, int sftData, int openSftData, List<Point> points, double seconds) {
    public ObjectNode toJson() {
      var o = new ObjectMapper().createObjectNode();
      var c = config;
      o.put("seed", c.seed()).put("sft_steps", c.sftSteps()).put("rl_rounds", c.rlRounds()).put("open_reward", c.openReward().name().toLowerCase());
      o.putObject("reward_weights").put("verifiable", c.weights().verifiable()).put("critic", c.weights().critic()).put("cost", c.weights().cost())
          .put("safety", c.weights().safety());
      o.put("sft_data", sftData).put("open_sft_data", openSftData);
      var a = o.putArray("points");
      for (var p : points) {
        var n = a.addObject();
        n.put("round", p.round());
        n.put("success", r(p.eval().success())).put("calls", r(p.eval().calls())).put("violations", r(p.eval().violations()));
        n.put("open_success", r(p.eval().openSuccess())).put("open_calls", r(p.eval().openCalls()));
        put(n, "open_critic_mean", p.openCriticMean());
        put(n, "open_hidden_success", p.openHiddenSuccess());
        put(n, "critic_auc", p.criticAuc());
      }
      o.put("seconds", r(seconds));
      return o;
    }

    private static void put(ObjectNode n, String k, double v) {
      if (Double.isNaN(v)) n.putNull(k);
      else n.put(k, r(v));
    }
  }

  static double r(double v) {
    return Math.round(v * 10000) / 10000.0;
  }

  /** What every branch starts from: the world, the data, the critic after synthesis and the SFT weights with their evaluation. */
  public record Prepared(Config config, ToolUniverse universe, PolicyFormat format, TaskGenerator train, TaskGenerator held, JudgeRubric judge,
                         List<CriticTrainer.Example> synthExamples, CriticModel critic, dev.k2pekko.model.WeightsSnapshot sft, Point sftPoint,
                         int sftData, int openSftData, double seconds) {}

  public static Result run(Config cfg, Critic.Settings criticSettings, Consumer<Point> progress) {
    var p = prepare(cfg, criticSettings);
    progress.accept(p.sftPoint());
    return rl(p, cfg.weights(), cfg.openReward(), criticSettings, progress);
  }

  /** Synthesis, the critic's first training and SFT, shared by every weighting or open-reward mode compared from them. */
  public static Prepared prepare(Config cfg, Critic.Settings criticSettings) {
    long t0 = System.nanoTime();
    var universe = ToolUniverse.generate(7, new Stochasticity(0.12, 0.08, 0));
    var format = new PolicyFormat(universe);
    var train = new TaskGenerator(universe, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN);
    var held = new TaskGenerator(universe, 5).coreOnly(true).withSplit(TaskGenerator.Split.HELD_OUT);
    var teacher = new TeacherPolicy(train, new TeacherPolicy.Mistakes(0.03, 0.02, 0.02, 0.01, 0));
    var judge = new JudgeRubric(0.8);
    int buckets = criticSettings.buckets();

    // synthesis: verifiable (judged; accepted ones are SFT data, all are the critic's) and open (public checks only)
    var data = new ArrayList<List<Sequence>>();
    var synthExamples = new ArrayList<CriticTrainer.Example>();
    for (int i = 0; i < cfg.episodes(); i++) {
      long s = TaskGenerator.mix(cfg.seed() * 0x9E3779B97F4A7C15L + i);
      var t = OfflinePlay.play(universe, teacher, judge, train.task(s, "s-" + i), "s-" + i, s, true);
      synthExamples.add(new CriticTrainer.Example(TrajectoryFeatures.of(t, buckets), t.verdict().accepted()));
      if (t.verdict().accepted()) data.add(format.examples(t));
    }
    int verifiableData = data.size();
    var open = OfflineSft.openDemonstrations(cfg.seed(), cfg.openEpisodes(), universe, format, train, teacher, judge);
    data.addAll(open);
    int openData = open.size();
    var critic = CriticTrainer.train(CriticModel.init(buckets, criticSettings.hidden(), criticSettings.training().seed()), synthExamples,
        criticSettings.training()).model();

    var model = OfflineSft.model(format);
    var opt = OfflineSft.optimizer(model, 16);
    var rnd = new SplittableRandom(cfg.seed());
    for (int step = 1; step <= cfg.sftSteps(); step++) OfflineSft.step(model, opt, data, rnd, OfflineSft.rate(cfg.lrSft(), step, 50, 600));
    var heldOutEpisodes = new ArrayList<Trajectory>();
    var eval = evaluate(cfg, universe, format, held, judge, model, heldOutEpisodes);
    var point = new Point(0, eval, Double.NaN, Double.NaN, auc(critic, heldOutEpisodes, buckets));
    return new Prepared(cfg, universe, format, train, held, judge, List.copyOf(synthExamples), critic, dev.k2pekko.model.WeightsSnapshot.of(0, model),
        point, verifiableData, openData, (System.nanoTime() - t0) / 1e9);
  }

  /**
   * RL rounds from the prepared SFT weights (a fresh optimizer: Muon's momentum starts at zero), with the reward mixed by
   * {@code weights} and the open rollouts rewarded as {@code openReward} says. Thread-safe: every branch has its own
   * model, optimizer, critic and random streams, so branches run side by side.
   */
  public static Result rl(Prepared prep, Reward.Weights weights, OpenReward openReward, Critic.Settings criticSettings, Consumer<Point> progress) {
    long t0 = System.nanoTime();
    var cfg = prep.config();
    var universe = prep.universe();
    var format = prep.format();
    var train = prep.train();
    var judge = prep.judge();
    var synthExamples = prep.synthExamples();
    int buckets = criticSettings.buckets();
    var critic = prep.critic();
    var model = prep.sft().toModel(new ReferenceOps());
    var opt = OfflineSft.optimizer(model, 16);
    var rnd = new SplittableRandom(cfg.seed() ^ 0x5851F42D4C957F2DL);
    var points = new ArrayList<Point>();
    points.add(prep.sftPoint());
    var heldOutEpisodes = new ArrayList<Trajectory>();
    for (int round = 1; round <= cfg.rlRounds(); round++) {
      var policy = new LearnedPolicy(format, new Decoder(model), round, 1.0);
      var groups = new ArrayList<List<Sequence>>();
      var roundExamples = new ArrayList<CriticTrainer.Example>();
      double openScoreSum = 0;
      int openN = 0, openAccepted = 0;
      int tasks = cfg.rlTasks() + cfg.rlOpenTasks();
      for (int i = 0; i < tasks; i++) {
        long ts = TaskGenerator.mix(cfg.seed() * 0x2545F4914F6CDD1DL + round * 100_003L + i);
        boolean open = i >= cfg.rlTasks();
        int j = open ? i - cfg.rlTasks() : i;
        Task task = open ? train.openTask(ts, "ro-" + round + "-" + j, TaskGenerator.openFacts(j))
            : train.taskOfDifficulty(ts, "r-" + round + "-" + j, 1 + j % 5);
        var group = new ArrayList<Trajectory>();
        for (int k = 0; k < cfg.rollouts(); k++) group.add(OfflinePlay.play(universe, policy, judge, task, task.id() + "#" + k, TaskGenerator.mix(ts + k), true));
        var rewards = new double[group.size()];
        var success = new boolean[group.size()];
        var penalty = new double[group.size()];
        for (int k = 0; k < group.size(); k++) {
          var t = group.get(k);
          double score = critic.score(TrajectoryFeatures.of(t, buckets));
          if (open) {
            openScoreSum += score;
            openN++;
            if (t.verdict().accepted()) openAccepted++;
          } else {
            roundExamples.add(new CriticTrainer.Example(TrajectoryFeatures.of(t, buckets), t.verdict().accepted()));
          }
          // the oracle reads the hidden verdict as if the task were verifiable; the critic's reward never does
          var seen = open && openReward == OpenReward.ORACLE ? withCategory(t, "core") : t;
          var terms = Reward.Terms.of(seen, score);
          rewards[k] = Reward.mix(weights, terms);
          success[k] = Reward.success(weights, terms);
          penalty[k] = Reward.penalty(weights, terms);
        }
        if (open && openReward == OpenReward.NONE) continue;
        if (open && openReward == OpenReward.CRITIC) {
          double[] scores = new double[group.size()];
          for (int k = 0; k < scores.length; k++) scores[k] = critic.score(TrajectoryFeatures.of(group.get(k), buckets));
          success = Reward.openSuccesses(scores); // the group's best by the critic, as the learners pick them
        }
        boolean differ = false;
        for (double x : rewards) differ |= Math.abs(x - rewards[0]) > 1e-9;
        if (!differ) continue;
        double least = Double.POSITIVE_INFINITY;
        for (int k = 0; k < group.size(); k++) if (success[k]) least = Math.min(least, penalty[k]);
        var kept = new ArrayList<Sequence>();
        for (int k = 0; k < group.size(); k++) if (success[k] && penalty[k] <= least + 1e-12) kept.addAll(format.examples(group.get(k)));
        if (!kept.isEmpty()) groups.add(kept);
      }
      // verifiable and open groups interleaved, in a seeded order
      for (int i = groups.size() - 1; i > 0; i--) {
        int j = rnd.nextInt(i + 1);
        var x = groups.get(i);
        groups.set(i, groups.get(j));
        groups.set(j, x);
      }
      for (int from = 0; from < groups.size(); from += cfg.groupsPerStep()) {
        var batch = new ArrayList<Sequence>();
        for (int g = from; g < Math.min(groups.size(), from + cfg.groupsPerStep()); g++) batch.addAll(groups.get(g));
        var res = Losses.nextToken(model, TokenBatch.of(batch, 0));
        opt.step(model, res.grads(), res.maxLogit(), cfg.lrRl());
      }
      // the critic retrains on the round's verifiable rollouts, whose verdicts are known, with a replay of the synthesis
      if (!roundExamples.isEmpty()) {
        var mix = new ArrayList<>(roundExamples);
        for (int i = 0; i < roundExamples.size(); i++) mix.add(synthExamples.get(rnd.nextInt(synthExamples.size())));
        critic = CriticTrainer.train(critic, mix, criticSettings.training()).model();
      }
      heldOutEpisodes.clear();
      var p = new Point(round, evaluate(cfg, universe, format, prep.held(), judge, model, heldOutEpisodes), openN == 0 ? Double.NaN : openScoreSum / openN,
          openN == 0 ? Double.NaN : (double) openAccepted / openN, auc(critic, heldOutEpisodes, buckets));
      points.add(p);
      progress.accept(p);
    }
    var c = new Config(cfg.seed(), cfg.episodes(), cfg.openEpisodes(), cfg.sftSteps(), cfg.evalTasks(), cfg.openEvalTasks(), cfg.evalTrials(),
        cfg.rlRounds(), cfg.rlTasks(), cfg.rlOpenTasks(), cfg.rollouts(), cfg.groupsPerStep(), cfg.lrSft(), cfg.lrRl(), weights, openReward);
    return new Result(c, prep.sftData(), prep.openSftData(), points, prep.seconds() + (System.nanoTime() - t0) / 1e9);
  }

  private static Trajectory withCategory(Trajectory t, String category) {
    return new Trajectory(t.trajectoryId(), t.taskId(), category, t.difficulty(), t.seed(), t.system(), t.prompt(), t.tools(), t.steps(),
        t.finalAnswer(), t.verdict(), t.policy(), t.sampling());
  }

  /**
   * The held-out evaluations: the verifiable tasks of {@code k2 run --seed S} ({@code evalTasks}) and the fixed open
   * held-out set ({@code openEvalTasks}: task i gathers 2 + i mod 2 facts), {@code evalTrials} trials each at
   * temperature 1 in the noisy world; an open episode succeeds when the hidden rubric accepts it. The verifiable
   * episodes are added to {@code verifiableEpisodes} (the critic's AUC is measured on them).
   */
  static Eval evaluate(Config cfg, ToolUniverse universe, PolicyFormat format, TaskGenerator held, JudgeRubric judge, PolicyModel model,
                       List<Trajectory> verifiableEpisodes) {
    var policy = new LearnedPolicy(format, new Decoder(model), 0, 1.0);
    int ok = 0, n = 0, calls = 0, violations = 0;
    for (int i = 0; i < cfg.evalTasks(); i++) {
      var task = TaskDraws.heldOutTask(held, cfg.seed(), i, 5);
      long seed = TaskGenerator.mix(cfg.seed() * 0xD1B54A32D192ED03L + i);
      for (int trial = 0; trial < cfg.evalTrials(); trial++) {
        var t = OfflinePlay.play(universe, policy, judge, task, "h-" + i + "#" + trial, TaskGenerator.mix(seed + trial), true);
        verifiableEpisodes.add(t);
        n++;
        if (t.verdict().accepted()) ok++;
        calls += t.steps().size();
        violations += Reward.Terms.of(t, Double.NaN).violations();
      }
    }
    int openOk = 0, openN = 0, openCalls = 0;
    for (int i = 0; i < cfg.openEvalTasks(); i++) {
      var task = TaskDraws.heldOutOpenTask(held, cfg.seed(), i); // the pipeline's open evaluation's tasks
      long seed = TaskGenerator.mix(cfg.seed() * 0x94D049BB133111EBL + i);
      for (int trial = 0; trial < cfg.evalTrials(); trial++) {
        var t = OfflinePlay.play(universe, policy, judge, task, "ho-" + i + "#" + trial, TaskGenerator.mix(seed + trial), true);
        openN++;
        if (t.verdict().accepted()) openOk++;
        openCalls += t.steps().size();
      }
    }
    return new Eval(n == 0 ? Double.NaN : (double) ok / n, n == 0 ? Double.NaN : (double) calls / n, n == 0 ? Double.NaN : (double) violations / n,
        openN == 0 ? Double.NaN : (double) openOk / openN, openN == 0 ? Double.NaN : (double) openCalls / openN);
  }

  private static double auc(CriticModel critic, List<Trajectory> episodes, int buckets) {
    double[] scores = new double[episodes.size()];
    boolean[] labels = new boolean[episodes.size()];
    for (int i = 0; i < scores.length; i++) {
      scores[i] = critic.score(TrajectoryFeatures.of(episodes.get(i), buckets));
      labels[i] = episodes.get(i).verdict().accepted();
    }
    return dev.k2pekko.critic.Auc.of(scores, labels);
  }
}
