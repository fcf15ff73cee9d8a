package dev.k2pekko.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.agents.JudgeRubric;
import dev.k2pekko.agents.OfflinePlay;
import dev.k2pekko.agents.policy.LearnedPolicy;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.agents.policy.TeacherPolicy;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.model.Decoder;
import dev.k2pekko.model.Losses;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.Sequence;
import dev.k2pekko.model.TokenBatch;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Is SFT at its plateau? SFT of the default policy on the default world's teacher data (verifiable and open, as the
 * default run's synthesis makes it), trained well past the pipeline's SFT steps, with the held-out evaluation of
 * {@code k2 run} (the same tasks of the run seed, 200 by default as the run's, trials at
 * temperature 1, tools failing at the world's rates) every so many steps. Offline: no actors, one process, the
 * pipeline's model, optimizer (MuonClip) and SFT learning-rate schedule; its step is 8 teacher trajectories, as two
 * learners with batch-size 4 make one. The curve says whether more SFT closes the gap RL closes.
 */
public final class SftPlateau {
  private SftPlateau() {}

  /**
   * @param episodes teacher episodes on verifiable training tasks (the accepted ones are the SFT data)
   * @param openEpisodes teacher episodes on open training tasks on top of them, kept for SFT by the public checks alone
   *     as the pipeline's judge keeps them (the default run: 3,600, {@code k2.open.synthesis-share} of 72 per agent)
   * @param steps SFT steps
   * @param evalEvery evaluate after every this many steps (and at the end)
   */
  public record Config(long seed, int episodes, int openEpisodes, int steps, int evalEvery, int evalTasks, int evalTrials, double failureRate, double partialRate,
                       double lr, int warmup, int decaySteps, Rl rl, double notedShare) {
    /** The defaults of {@code k2 run} (reference.conf of tool-actors, agents, parameter-server, pipeline). */
    public static Config defaults() {
      return new Config(42, 18000, 3600, 1600, 200, 200, 4, 0.35, 0.20, 0.01, 50, 600, Rl.defaults(), 0);
    }
  }

  /**
   * RL after the SFT steps, offline, as the pipeline's default does it: rounds of {@code tasks} training tasks x
   * {@code rollouts} at {@code temperature} (1, as the pipeline's) in the noisy world; a step is {@code groupsPerStep} groups (two learners'
   * {@code rl-groups}); cross-entropy on the accepted rollouts of groups whose rewards differ ({@code filtered}), or,
   * with {@code sftControl}, the same number of further SFT steps on the teacher data instead (the same budget).
   */
  public record Rl(int rounds, int tasks, int rollouts, int groupsPerStep, double lr, int epochs, boolean sftControl, double lrDecay,
                   int ptx, boolean advantageWeighted, double replay, double temperature, int recoveryWeight) {
    public static Rl defaults() {
      return new Rl(0, 200, 4, 8, 0.003, 1, false, 1.0, 0, false, 0, 1.0, 1);
    }
  }

  /**
   * One evaluation: held-out success, and split by whether a trial met a tool failure (an error or a partial
   * result): {@code metFailure} is the share of trials that met one, {@code successMet} the success among those,
   * {@code successClean} among the others. RL's room in this world is {@code successClean - successMet}.
   * {@code trainAccepted}: for an RL round, the acceptance of its own rollouts on training tasks (sampled before the
   * round's updates); {@code whyMet}: the judge's first reason for each rejected trial that met a failure, counted.
   */
  public record Point(String arm, int step, double success, double loss, double metFailure, double successMet, double successClean,
                      double trainAccepted, java.util.Map<String, Integer> whyMet) {}

  /** {@code accepted}: verifiable teacher trajectories kept; {@code openKept}: open ones kept by the public checks. */
  public record Result(Config config, int accepted, int openKept, int examples, List<Point> curve, double seconds) {
    public ObjectNode toJson() {
      var o = new ObjectMapper().createObjectNode();
      o.put("seed", config.seed()).put("teacher_episodes", config.episodes()).put("accepted", accepted)
          .put("open_teacher_episodes", config.openEpisodes()).put("open_kept", openKept).put("examples", examples);
      var c = o.putArray("curve");
      for (var p : curve) {
        c.addObject().put("arm", p.arm()).put("step", p.step()).put("success", p.success()).put("loss", p.loss())
            .put("met_failure", p.metFailure()).put("success_met", p.successMet()).put("success_clean", p.successClean())
            .put("train_accepted", p.trainAccepted());
      }
      o.put("seconds", seconds);
      return o;
    }
  }

  public static Result run(Config cfg, java.util.function.Consumer<Point> progress) {
    long t0 = System.nanoTime();
    var universe = ToolUniverse.generate(7, new Stochasticity(cfg.failureRate(), cfg.partialRate(), 0));
    var format = new PolicyFormat(universe);
    var train = new TaskGenerator(universe, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN).withNotedShares(cfg.notedShare(), 0);
    var held = new TaskGenerator(universe, 5).coreOnly(true).withSplit(TaskGenerator.Split.HELD_OUT);
    var teacher = new TeacherPolicy(train, new TeacherPolicy.Mistakes(0.03, 0.02, 0.02, 0.01, 0));
    var judge = new JudgeRubric(0.8);
    var data = new ArrayList<List<Sequence>>();
    int examples = 0;
    for (int i = 0; i < cfg.episodes(); i++) {
      long s = TaskGenerator.mix(cfg.seed() * 0x9E3779B97F4A7C15L + i);
      var noted = train.notedDraw(s, "s-" + i); // k2.tasks.noted-share, as the run's synthesis draws them
      var t = OfflinePlay.play(universe, teacher, judge, noted != null ? noted : train.task(s, "s-" + i), "s-" + i, s, true);
      if (!t.verdict().accepted()) continue;
      var ex = format.examples(t);
      data.add(ex);
      examples += ex.size();
    }
    var open = OfflineSft.openDemonstrations(cfg.seed(), cfg.openEpisodes(), universe, format, train, teacher, judge);
    data.addAll(open);
    for (var ex : open) examples += ex.size();
    int openKept = open.size();
    var model = OfflineSft.model(format);
    var opt = OfflineSft.optimizer(model, 100);
    var rnd = new SplittableRandom(cfg.seed());
    var curve = new ArrayList<Point>();
    double loss = Double.NaN;
    for (int step = 1; step <= cfg.steps(); step++) {
      loss = OfflineSft.step(model, opt, data, rnd, OfflineSft.rate(cfg.lr(), step, cfg.warmup(), cfg.decaySteps()));
      if (step % cfg.evalEvery() == 0 || step == cfg.steps()) {
        var p = evaluate("sft", step, loss, cfg, universe, format, held, judge, model);
        curve.add(p);
        progress.accept(p);
      }
    }
    // RL and, with sftControl, the control, each from its own copy of the SFT model with a fresh optimizer: paired.
    var sftModel = model;
    if (cfg.rl().rounds() > 0) {
      int[] stepsPerRound = new int[cfg.rl().rounds()];
      curve.addAll(rl(cfg, false, copy(sftModel), universe, format, train, held, judge, data, stepsPerRound, progress));
      if (cfg.rl().sftControl()) curve.addAll(rl(cfg, true, copy(sftModel), universe, format, train, held, judge, data, stepsPerRound, progress));
    }
    return new Result(cfg, data.size() - openKept, openKept, examples, curve, (System.nanoTime() - t0) / 1e9);
  }

  private static PolicyModel copy(PolicyModel m) {
    return dev.k2pekko.model.WeightsSnapshot.of(0, m).toModel(new ReferenceOps());
  }

  private static List<Point> rl(Config cfg, boolean control, PolicyModel model, ToolUniverse universe, PolicyFormat format, TaskGenerator train,
                                TaskGenerator held, JudgeRubric judge, List<List<Sequence>> data, int[] stepsPerRound,
                                java.util.function.Consumer<Point> progress) {
    var opt = OfflineSft.optimizer(model, 100);
    var rnd = new SplittableRandom(cfg.seed() ^ 0x7F4A7C15L);
    var curve = new ArrayList<Point>();
    double loss = Double.NaN;
    int step = cfg.steps();
    String arm = control ? "sft-control" : "rl";
    var history = new ArrayList<List<Sequence>>();
    for (int round = 1; round <= cfg.rl().rounds(); round++) {
      var groups = new ArrayList<List<Sequence>>();
      var policy = new LearnedPolicy(format, new Decoder(model), step, cfg.rl().temperature());
      int played = 0, accepted = 0;
      for (int i = 0; !control && i < cfg.rl().tasks(); i++) {
        long ts = TaskGenerator.mix(cfg.seed() * 0x2545F4914F6CDD1DL + round * 100_003L + i);
        var task = train.taskOfDifficulty(ts, "r-" + round + "-" + i, 1 + i % 5);
        var kept = new ArrayList<Sequence>();
        var rewards = new java.util.HashSet<Double>();
        int ok = 0;
        for (int k = 0; k < cfg.rl().rollouts(); k++) {
          var t = OfflinePlay.play(universe, policy, judge, task, task.id() + "#" + k, TaskGenerator.mix(ts + k), true);
          rewards.add(dev.k2pekko.trainer.Reward.of(t.verdict()));
          played++;
          if (t.verdict().accepted()) {
            var ex = format.examples(t);
            kept.addAll(ex);
            // recovery weight: an action whose view shows a failed call (the one before it failed or came back partial)
            // counts this many times in all: the retries a success carries are a few of its actions
            for (int a = 1; a < ex.size() && a <= t.steps().size(); a++) {
              if (PolicyFormat.succeeded(t.steps().get(a - 1))) continue;
              for (int c = 1; c < cfg.rl().recoveryWeight(); c++) kept.add(ex.get(a));
            }
            ok++;
          }
        }
        accepted += ok;
        // advantage-weighted: a success counts (1 - the group's success share) x K times, as REINFORCE's positive part
        // weighs it; by repetition, so the loss stays the plain cross-entropy
        int copies = cfg.rl().advantageWeighted() ? Math.max(1, cfg.rl().rollouts() - ok) : 1;
        var weighted = new ArrayList<Sequence>();
        for (int c = 0; c < copies; c++) weighted.addAll(kept);
        if (rewards.size() > 1 && !kept.isEmpty()) groups.add(weighted);
      }
      // replay: earlier rounds' groups (their successes stay valid demonstrations) join this round's, replay x as many
      // as this round has (a negative replay: all of them), in a shuffled order
      if (!control && cfg.rl().replay() != 0) {
        var fresh = new ArrayList<>(groups);
        var old = new ArrayList<>(history);
        java.util.Collections.shuffle(old, new java.util.Random(rnd.nextLong()));
        int n = cfg.rl().replay() < 0 ? old.size() : Math.min(old.size(), (int) Math.round(cfg.rl().replay() * fresh.size()));
        groups.addAll(old.subList(0, n));
        java.util.Collections.shuffle(groups, new java.util.Random(rnd.nextLong()));
        history.addAll(fresh);
      }
      // the control takes as many steps as RL took in the same round (RL runs first)
      int perPass = (groups.size() + cfg.rl().groupsPerStep() - 1) / cfg.rl().groupsPerStep();
      int steps = control ? stepsPerRound[round - 1] : perPass * cfg.rl().epochs();
      if (!control) stepsPerRound[round - 1] = steps;
      for (int jj = 0; jj < steps; jj++) {
        int j = perPass == 0 ? 0 : jj % perPass; // epochs: passes over the round's groups
        var batch = new ArrayList<Sequence>();
        if (control) {
          for (int i = 0; i < OfflineSft.BATCH; i++) batch.addAll(data.get(rnd.nextInt(data.size())));
        } else {
          for (int g = j * cfg.rl().groupsPerStep(); g < Math.min(groups.size(), (j + 1) * cfg.rl().groupsPerStep()); g++) batch.addAll(groups.get(g));
          // PTX (the K2 report's auxiliary loss on curated data during RL): teacher trajectories SFT trained on
          for (int i = 0; i < cfg.rl().ptx(); i++) batch.addAll(data.get(rnd.nextInt(data.size())));
        }
        var r = Losses.nextToken(model, TokenBatch.of(batch, 0));
        loss = r.loss();
        // the control at the same rate: only the data differs; lrDecay < 1: linear from lr in the first round to
        // lr x lrDecay in the last
        double f = cfg.rl().rounds() <= 1 ? 1.0 : 1.0 - (1.0 - cfg.rl().lrDecay()) * (round - 1) / (cfg.rl().rounds() - 1.0);
        opt.step(model, r.grads(), r.maxLogit(), cfg.rl().lr() * f);
        step++;
      }
      var p = evaluate(arm, step, loss, cfg, universe, format, held, judge, model);
      if (!control) p = new Point(p.arm(), p.step(), p.success(), p.loss(), p.metFailure(), p.successMet(), p.successClean(),
          played == 0 ? Double.NaN : (double) accepted / played, p.whyMet());
      curve.add(p);
      progress.accept(p);
    }
    return curve;
  }

  /**
   * What the policy did right after the first failure of a trial: {@code retried} (the same call again),
   * {@code garbled} (the same tool, other arguments), {@code moved-on} (another tool) or {@code stopped} (answered or
   * ended).
   */
  static String afterFirstFailure(List<dev.k2pekko.protocol.Step> steps) {
    for (int i = 0; i < steps.size(); i++) {
      var st = steps.get(i);
      if (!"TRANSIENT_FAILURE".equals(st.error()) && !st.partial()) continue;
      if (i + 1 == steps.size()) return "stopped";
      var next = steps.get(i + 1);
      if (!next.tool().equals(st.tool())) return "moved-on";
      return next.arguments().equals(st.arguments()) ? "retried" : "garbled";
    }
    return "none";
  }

  /** {@code K2_SHOW_FAILED=N}: print the first N rejected held-out trials that met a failure of each evaluation. */
  private static final int SHOW = Integer.parseInt(System.getenv().getOrDefault("K2_SHOW_FAILED", "0"));

  /** Held-out success as {@code k2 run} measures it: task i of the run seed has difficulty 1 + i mod 5; trials at temperature 1. */
  static Point evaluate(String arm, int step, double loss, Config cfg, ToolUniverse universe, PolicyFormat format, TaskGenerator held,
                        JudgeRubric judge, PolicyModel model) {
    var policy = new LearnedPolicy(format, new Decoder(model), 0, 1.0);
    int ok = 0, n = 0, met = 0, okMet = 0;
    var why = new java.util.TreeMap<String, Integer>();
    for (int i = 0; i < cfg.evalTasks(); i++) {
      var task = dev.k2pekko.agents.TaskDraws.heldOutTask(held, cfg.seed(), i, 5);
      long seed = TaskGenerator.mix(cfg.seed() * 0xD1B54A32D192ED03L + i); // the probe's own stream of trial noise
      for (int trial = 0; trial < cfg.evalTrials(); trial++) {
        var t = OfflinePlay.play(universe, policy, judge, task, "h-" + i + "#" + trial, TaskGenerator.mix(seed + trial), true);
        n++;
        boolean failed = t.steps().stream().anyMatch(st -> "TRANSIENT_FAILURE".equals(st.error()) || st.partial()); // the world's noise, not the policy's mistakes
        if (failed) met++;
        if (t.verdict().accepted()) {
          ok++;
          if (failed) okMet++;
        } else if (failed) {
          if (SHOW > 0 && why.values().stream().mapToInt(Integer::intValue).sum() < SHOW) {
            var sb = new StringBuilder("    [" + arm + " " + step + "] " + task.prompt() + "\n");
            for (var st : t.steps()) sb.append("      ").append(st.tool()).append(' ').append(st.arguments()).append(" -> ")
                .append(st.error() != null ? "error " + st.error() : st.partial() ? "partial " + st.result() : st.result()).append('\n');
            sb.append("      answer ").append(t.finalAnswer()).append("  ").append(t.verdict().reasons());
            System.out.println(sb);
          }
          why.merge(afterFirstFailure(t.steps()), 1, Integer::sum);
        }
      }
    }
    return new Point(arm, step, (double) ok / n, loss, (double) met / n, met == 0 ? Double.NaN : (double) okMet / met,
        n == met ? Double.NaN : (double) (ok - okMet) / (n - met), Double.NaN, why);
  }
}
