package dev.k2pekko.pipeline;

import com.typesafe.config.Config;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.ps.server.PsCoordinator;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorSystem;

/**
 * The paper's pipeline on a running cluster, stage after stage: evaluation at initialisation, synthesis by the
 * teacher on training tasks (accepted trajectories go to the journal), SFT (the learners consume them from the
 * journal), evaluation, RL rounds (K rollouts per task from the current policy, all persisted, consumed by the
 * learners with the K2 loss), evaluation. Every wait has a deadline.
 *
 * <p>{@link #run} is the stage sequence; the stages are {@link SynthesisStage} (with SFT), {@link RlRounds} and
 * {@link Evaluation}, the resume bookkeeping is {@link RunLedger}, what is asked of and waited for on the cluster is
 * {@link ClusterProbe}, and the records here are what a run reports ({@link Result}).
 */
public final class Pipeline {
  public record Spec(String runId, long seed, int evalTasks, int evalTrials, double evalTemperature, int synthAgents, int synthEpisodes,
                     int sftParts, int rlRounds, int rlTasks, int rlRollouts, double rlTemperature, boolean rlPrioritized, Duration stageTimeout,
                     Open open) {
    /** A run without open tasks. */
    public Spec(String runId, long seed, int evalTasks, int evalTrials, double evalTemperature, int synthAgents, int synthEpisodes,
                int sftParts, int rlRounds, int rlTasks, int rlRollouts, double rlTemperature, boolean rlPrioritized, Duration stageTimeout) {
      this(runId, seed, evalTasks, evalTrials, evalTemperature, synthAgents, synthEpisodes, sftParts, rlRounds, rlTasks, rlRollouts, rlTemperature,
          rlPrioritized, stageTimeout, Open.NONE);
    }

    public Spec {
      java.util.Objects.requireNonNull(open, "open");
      if (evalTasks < 1) throw new IllegalArgumentException("k2.pipeline.eval-tasks must be at least 1, got " + evalTasks);
      if (evalTrials < 1) throw new IllegalArgumentException("k2.pipeline.eval-trials must be at least 1, got " + evalTrials);
      if (synthAgents < 1 || synthEpisodes < 1) throw new IllegalArgumentException("k2.pipeline.synth-agents and synth-episodes must be at least 1");
      if (sftParts < 1 || sftParts > synthEpisodes) {
        throw new IllegalArgumentException("k2.pipeline.sft-parts must lie in [1, synth-episodes = " + synthEpisodes + "], got " + sftParts);
      }
      if (rlRounds < 0) throw new IllegalArgumentException("k2.pipeline.rl-rounds must be >= 0, got " + rlRounds);
      if (rlTasks < 1 || rlRollouts < 1) throw new IllegalArgumentException("k2.pipeline.rl-tasks and rl-rollouts must be at least 1");
      if (!(evalTemperature >= 0) || !(rlTemperature >= 0)) throw new IllegalArgumentException("k2.pipeline temperatures must be >= 0");
      if (stageTimeout.isNegative() || stageTimeout.isZero()) throw new IllegalArgumentException("k2.pipeline.stage-timeout must be positive");
    }

    public static Spec fromConfig(String runId, long seed, Config c) {
      var p = c.getConfig("k2.pipeline");
      return new Spec(runId, seed, p.getInt("eval-tasks"), p.getInt("eval-trials"), p.getDouble("eval-temperature"), p.getInt("synth-agents"),
          p.getInt("synth-episodes"), Math.min(p.getInt("sft-parts"), p.getInt("synth-episodes")), p.getInt("rl-rounds"), p.getInt("rl-tasks"), p.getInt("rl-rollouts"), p.getDouble("rl-temperature"),
          p.getBoolean("rl-prioritized"), p.getDuration("stage-timeout"), Open.fromConfig(c));
    }
  }

  /**
   * Open tasks in the run (k2.open; docs/LOOP.md, "Open tasks"): the share of the synthesis's and of the RL rounds'
   * training tasks that are open (each task drawn open or not from its seed), and the fixed held-out open tasks
   * evaluated after SFT and after RL ({@code evalTasks} of them, {@code eval-trials} trials each; 0: no open evaluation).
   */
  public record Open(double synthesisShare, double rlShare, int evalTasks) {
    public static final Open NONE = new Open(0, 0, 0);

    public Open {
      if (!(synthesisShare >= 0 && synthesisShare <= 1)) throw new IllegalArgumentException("k2.open.synthesis-share must lie in [0, 1], got " + synthesisShare);
      if (!(rlShare >= 0 && rlShare <= 1)) throw new IllegalArgumentException("k2.open.rl-share must lie in [0, 1], got " + rlShare);
      if (evalTasks < 0) throw new IllegalArgumentException("k2.open.eval-tasks must be >= 0, got " + evalTasks);
    }

    public static Open fromConfig(Config c) {
      var o = c.getConfig("k2.open");
      return new Open(o.getDouble("synthesis-share"), o.getDouble("rl-share"), o.getInt("eval-tasks"));
    }
  }

  /**
   * One evaluation: success rate and pass^k for k = 1..trials, over {@code tasks} held-out tasks, of the weights
   * {@code version} whose SHA-256 is {@code weights} (equal digests, equal weights: two runs compare at a glance).
   */
  public record Eval(String stage, long version, int tasks, int trials, double success, double[] passK, Map<Integer, double[]> byDifficulty, Duration took,
                     String weights) {
    public Eval(String stage, long version, int tasks, int trials, double success, double[] passK, Map<Integer, double[]> byDifficulty, Duration took) {
      this(stage, version, tasks, trials, success, passK, byDifficulty, took, "");
    }
  }

  /**
   * @param roundSuccess per RL round, the fraction of its rollouts the judge accepted (sampled at the rollout
   *     temperature, on training tasks), from the journal for a round a resumed run completed
   * @param roundDifficultyWeights per RL round, the difficulty weights its tasks were drawn by (null: uniform)
   * @param resumed what a resumed run took from its record or completed, one line per stage; empty for a fresh run
   */
  public record Result(Eval init, List<Eval> sftCurve, Eval sft, Eval rl, Map<String, Duration> times, PsCoordinator.Status status, ClipMonitorProtocol.History clip,
                       long synthesized, long rollouts, double[] roundSuccess, java.util.List<double[]> roundDifficultyWeights,
                       List<String> resumed, CriticReport critic, RewardReport reward, OpenReport open) {}

  /**
   * Open tasks in the run (docs/LOOP.md, "Open tasks"): the settings; the held-out open set's evaluations after SFT and
   * after RL (success by the hidden rubric; null when {@code k2.open.eval-tasks} is 0); the synthesis's open episodes
   * and how many the public checks kept for SFT (-1: not known, a resumed part); per RL round the hacking watch on the
   * open rollouts (the critic's mean score against the hidden success), empty without open rollouts.
   */
  public record OpenReport(Open settings, Eval sft, Eval rl, long synthesisEpisodes, long synthesisKept, List<HackingFlag.Round> rounds) {}

  /** The reward's weights (k2.reward) and, per RL round, the hacking watch ({@link HackingFlag}). */
  public record RewardReport(dev.k2pekko.trainer.Reward.Weights weights, List<HackingFlag.Round> rounds) {}

  /**
   * One (re)training of the critic, or one measurement: what it trained on ({@code "synthesis"}, {@code "rl 2"}; null
   * for a measurement only), the weights version, the examples (fresh and replayed, {@code accepted} of them), and the
   * ROC AUC of those weights on the held-out episodes named by {@code heldOut} (evaluation episodes it never trained on:
   * {@code eval-sft}, {@code eval-rl}), NaN when they were all of one verdict or when it failed ({@code problem} says why).
   */
  public record CriticRound(String trainedOn, long version, int examples, int accepted, String heldOut, int heldOutEpisodes,
                            int heldOutAccepted, double auc, Duration took, String problem) {
    static CriticRound failed(String trainedOn, String heldOut, Duration took, String problem) {
      return new CriticRound(trainedOn, -1, 0, 0, heldOut, 0, 0, Double.NaN, took, problem);
    }
  }

  /** The critic's trainings in order (after synthesis, after each RL round), and its last weights measured on the rl evaluation. */
  public record CriticReport(List<CriticRound> trainings, CriticRound onRlEval) {}

  /** What the progress line shows: the stage, and done/total in its unit. */
  public record Progress(String stage, long done, long total, String detail) {}

  private final ActorSystem<?> system;
  private final TrainerNode.Started node;
  private final Spec given;
  private final Consumer<Progress> progress;

  public Pipeline(ActorSystem<?> system, TrainerNode.Started node, Spec spec, Consumer<Progress> progress) {
    this.system = system;
    this.node = node;
    this.given = spec;
    this.progress = progress;
  }

  /**
   * Runs every stage that the run's record does not hold as done, and takes the ones it holds as they are. A stage
   * that a crash interrupted is run again from its start with the same run id and seed, hence the same tasks and
   * trajectory ids: what the journal already holds of it is kept (the collectors drop the second copy of a
   * trajectory id), what is missing is generated by the policy of the restored checkpoint, and the learners continue
   * from the checkpoint's offsets. So a resumed run ends with the journal and the counts of an uninterrupted one.
   */
  public Result run() throws Exception {
    try (var record = PipelineRecord.of(system.settings().config())) {
      var ledger = RunLedger.open(record, given);
      return run(ledger, ledger.spec()); // a resumed run goes on with the settings it was started with
    }
  }

  private Result run(RunLedger ledger, Spec spec) throws Exception {
    var config = system.settings().config();
    var probe = new ClusterProbe(system, node, spec.stageTimeout(), progress);
    var journal = new JournalStats(system, spec.stageTimeout());
    var episodes = new EpisodeRuns(system, spec, progress);
    var evaluation = new Evaluation(system, spec, ledger, probe, episodes);
    var times = new LinkedHashMap<String, Duration>();
    long t0 = System.nanoTime();
    probe.awaitReady();
    var status0 = probe.status();
    times.put("startup", since(t0));
    ledger.cameUpWith(status0.restoredFrom());

    long t = System.nanoTime();
    var init = evaluation.of("init");
    times.put("eval-init", since(t));

    t = System.nanoTime();
    var synthesis = new SynthesisStage(system, spec, ledger, probe, journal, episodes, evaluation).run();
    times.put("sft", since(t));
    probe.checkpointInBackground(); // SFT's weights on disk while the sft evaluation runs
    probe.awaitPublished();
    t = System.nanoTime();
    var sft = evaluation.of("sft");
    times.put("eval-sft", since(t));
    t = System.nanoTime();
    var openSft = evaluation.open("sft");
    if (openSft != null) times.put("eval-open-sft", since(t));
    var sftCurve = new ArrayList<>(synthesis.curve()); // held-out success against SFT steps ends at the sft evaluation
    sftCurve.add(sft);
    var critics = new CriticSteps(system, node.critic(), spec.runId(), spec.stageTimeout(), progress);
    var criticRounds = new ArrayList<CriticRound>();
    criticRounds.add(critics.retrain(synthesis.parts(), "synthesis", -1));

    t = System.nanoTime();
    var rounds = new RlRounds(spec, ledger, probe, journal, episodes, critics, config.getInt("k2.policy.max-steps"),
        PolicyTasks.of(config)).run(synthesis.trajectories());
    times.put("rl", since(t));
    criticRounds.addAll(rounds.critic());
    t = System.nanoTime();
    var rl = evaluation.of("rl");
    times.put("eval-rl", since(t));
    t = System.nanoTime();
    var openRl = evaluation.open("rl");
    if (openRl != null) times.put("eval-open-rl", since(t));
    var criticOnRl = critics.measure(spec.runId() + "-eval-rl");
    // the critic's trainings: the first between eval-sft and rl, the rounds' inside rl
    times.put("critic", criticRounds.stream().map(CriticRound::took).reduce(Duration.ZERO, Duration::plus));
    probe.checkpoint();
    times.put("total", since(t0));
    return new Result(init, List.copyOf(sftCurve), sft, rl, times, probe.status(), probe.history(), synthesis.trajectories(), rounds.rollouts(),
        rounds.roundSuccess(), rounds.mixes(), ledger.notes(), new CriticReport(List.copyOf(criticRounds), criticOnRl),
        new RewardReport(dev.k2pekko.trainer.Reward.Weights.fromConfig(config), HackingFlag.flag(rounds.watched())),
        new OpenReport(spec.open(), openSft, openRl, synthesis.openEpisodes(), synthesis.openKept(), HackingFlag.flag(rounds.openWatched())));
  }

  private static Duration since(long t) {
    return Duration.ofNanos(System.nanoTime() - t);
  }
}
