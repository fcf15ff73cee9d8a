package dev.k2pekko.pipeline;

import com.typesafe.config.Config;
import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.NodeServices;
import dev.k2pekko.agents.RunDriver;
import dev.k2pekko.agents.RunTracker;
import dev.k2pekko.agents.inference.InferenceServer;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.ps.eval.PassK;
import dev.k2pekko.ps.server.PsCoordinator;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * The paper's pipeline on a running cluster, stage after stage: evaluation at initialisation, synthesis by the
 * teacher on training tasks (accepted trajectories go to the journal), SFT (the learners consume them from the
 * journal), evaluation, RL rounds (K rollouts per task from the current policy, all persisted, consumed by the
 * learners with the K2 loss), evaluation. Every wait has a deadline.
 */
public final class Pipeline {
  public record Spec(String runId, long seed, int evalTasks, int evalTrials, double evalTemperature, int synthAgents, int synthEpisodes,
                     int sftParts, int rlRounds, int rlTasks, int rlRollouts, double rlTemperature, boolean rlPrioritized, Duration stageTimeout) {
    public Spec {
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
          p.getBoolean("rl-prioritized"), p.getDuration("stage-timeout"));
    }
  }

  /**
   * Prioritized sampling of RL tasks (the K2 report's): half of a round's tasks are drawn uniformly over the
   * difficulties, half in proportion to the previous round's failure rate at each difficulty (its rollouts on
   * training tasks; held-out results never steer training). Null (uniform) without a previous round or without
   * failures.
   */
  static double[] priorities(Map<String, Long> previousRound, int maxSteps) {
    double[] fail = new double[maxSteps];
    double total = 0;
    for (int d = 1; d <= maxSteps; d++) {
      long n = previousRound.getOrDefault("difficulty/" + d + "/episodes", 0L), ok = previousRound.getOrDefault("difficulty/" + d + "/accepted", 0L);
      fail[d - 1] = n == 0 ? 0 : 1.0 - (double) ok / n;
      total += fail[d - 1];
    }
    if (!(total > 0)) return null;
    double[] w = new double[maxSteps];
    for (int d = 0; d < maxSteps; d++) w[d] = 0.5 / maxSteps + 0.5 * fail[d] / total;
    return w;
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

  public record StageTime(String stage, Duration took) {}

  /**
   * @param roundSuccess per RL round, the fraction of its rollouts the judge accepted (sampled at the rollout
   *     temperature, on training tasks), from the journal for a round a resumed run completed
   * @param roundDifficultyWeights per RL round, the difficulty weights its tasks were drawn by (null: uniform)
   * @param resumed what a resumed run took from its record or completed, one line per stage; empty for a fresh run
   */
  public record Result(Eval init, List<Eval> sftCurve, Eval sft, Eval rl, Map<String, Duration> times, PsCoordinator.Status status, ClipMonitorProtocol.History clip,
                       long synthesized, long rollouts, double[] roundSuccess, java.util.List<double[]> roundDifficultyWeights,
                       List<String> resumed, CriticReport critic, RewardReport reward) {}

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
  private Spec spec; // a resumed run takes the spec it was started with, from its record
  private final Consumer<Progress> progress;

  public Pipeline(ActorSystem<?> system, TrainerNode.Started node, Spec spec, Consumer<Progress> progress) {
    this.system = system;
    this.node = node;
    this.spec = spec;
    this.progress = progress;
  }

  public Result run() throws Exception {
    try (var record = PipelineRecord.of(system.settings().config())) {
      return run(record);
    }
  }

  /**
   * Runs every stage that {@code record} does not hold as done, and takes the ones it holds as they are. A stage
   * that a crash interrupted is run again from its start with the same run id and seed, hence the same tasks and
   * trajectory ids: what the journal already holds of it is kept (the collectors drop the second copy of a
   * trajectory id), what is missing is generated by the policy of the restored checkpoint, and the learners continue
   * from the checkpoint's offsets. So a resumed run ends with the journal and the counts of an uninterrupted one.
   */
  private Result run(PipelineRecord record) throws Exception {
    var times = new LinkedHashMap<String, Duration>();
    var done = record.load(spec.runId());
    var resumed = new java.util.ArrayList<String>();
    if (done.containsKey("spec")) {
      var started = specFromJson(spec.runId(), done.get("spec"), spec.stageTimeout());
      if (!started.equals(spec)) {
        resumed.add("settings: as the run was started (" + specToJson(started) + "), not as given now (" + specToJson(spec) + ")");
        spec = started;
      }
    } else {
      record.save(spec.runId(), "spec", specToJson(spec));
    }
    long t0 = System.nanoTime();
    awaitReady();
    var status0 = status();
    times.put("startup", since(t0));
    // A run with a record or a checkpoint has been here before: what the journal holds of an unfinished stage is counted.
    boolean again = !done.isEmpty() || status0.restoredFrom() >= 0;
    if (again) resumed.add("weights: " + (status0.restoredFrom() >= 0 ? "checkpoint version " + status0.restoredFrom() : "no checkpoint, the initial ones"));

    long t = System.nanoTime();
    var init = evaluation("init", done, record, resumed);
    times.put("eval-init", since(t));

    t = System.nanoTime();
    // Synthesis and SFT in sft-parts parts: the teacher's episodes of part p are synthesized once the learners have
    // consumed those of part p-1, and the policy is evaluated on the held-out tasks after each part but the last
    // (whose evaluation is the sft one): held-out success against SFT steps, in the run report.
    long synthesized = 0;
    var sftCurve = new java.util.ArrayList<Eval>();
    var synthStages = new java.util.ArrayList<String>();
    for (int part = 1; part <= spec.sftParts(); part++) {
      String name = synthName(part), key = part == 1 ? "synthesis" : "synthesis-" + part;
      int episodes = (int) ((long) spec.synthEpisodes() * part / spec.sftParts() - (long) spec.synthEpisodes() * (part - 1) / spec.sftParts());
      synthStages.add(name);
      long made;
      if (done.containsKey(key)) {
        made = done.get(key).get("trajectories").asLong();
        resumed.add(String.format("%s: done before (%,d trajectories)", key, made));
      } else {
        long before = again ? journalCount(name + "/") : 0;
        var synth = runEpisodes(name, spec.synthAgents(), episodes, new Agent.EpisodeSpec("train", "teacher", 0, 1), Agent.PersistMode.ACCEPTED,
            spec.sftParts() == 1 ? "synthesis" : "synthesis " + part + "/" + spec.sftParts());
        made = before > 0 ? journalCount(name + "/") : synth.get("persisted");
        if (before > 0) resumed.add(String.format("%s: completed (%,d of its trajectories were in the journal, now %,d)", key, before, made));
        record.save(spec.runId(), key, PipelineRecord.object().put("trajectories", made));
      }
      // sealed again on a resume: a crash may have come between the part's last trajectory and its seal
      dev.k2pekko.agents.PartSeal.seal(system, name, part, Duration.ofSeconds(30));
      synthesized += made;
      awaitConsumed(synthesized, "sft");
      if (part < spec.sftParts()) {
        awaitPublished();
        sftCurve.add(evaluation("sft-" + part, done, record, resumed));
      }
    }
    times.put("sft", since(t));
    node.coordinator().tell(new PsCoordinator.CheckpointNow(system.ignoreRef()));
    awaitPublished();
    t = System.nanoTime();
    var sft = evaluation("sft", done, record, resumed);
    times.put("eval-sft", since(t));
    sftCurve.add(sft);
    var critics = new CriticSteps(system, node.critic(), spec.runId(), spec.stageTimeout(), progress);
    var criticRounds = new java.util.ArrayList<CriticRound>();
    var watched = new java.util.ArrayList<HackingFlag.Round>();
    criticRounds.add(critics.retrain(synthStages, "synthesis", -1));

    t = System.nanoTime();
    long target = synthesized, rollouts = 0;
    double[] roundSuccess = new double[spec.rlRounds()];
    java.util.Arrays.fill(roundSuccess, Double.NaN);
    int maxSteps = system.settings().config().getInt("k2.policy.max-steps");
    double[] weights = null;
    var mixes = new java.util.ArrayList<double[]>();
    for (int r = 1; r <= spec.rlRounds(); r++) {
      int agents = Math.min(spec.rlTasks(), 1000);
      int tasksPerAgent = (spec.rlTasks() + agents - 1) / agents;
      long expected = (long) agents * tasksPerAgent * spec.rlRollouts();
      String key = "rl-" + r, stage = "rl " + r + "/" + spec.rlRounds(), prefix = spec.runId() + "-rl" + r + "/";
      long round;
      if (done.containsKey(key)) {
        var rec = done.get(key);
        round = rec.get("rollouts").asLong();
        roundSuccess[r - 1] = rec.get("success").asDouble();
        mixes.add(doubles(rec.get("mix")));
        weights = doubles(rec.get("next-mix"));
        resumed.add(String.format("rl %d: done before (%,d rollouts)", r, round));
      } else {
        mixes.add(weights);
        long before = again ? journalCount(prefix) : 0;
        Map<String, Long> counters;
        if (before >= expected) {
          counters = journalStats(prefix);
          resumed.add(String.format("rl %d: its %,d rollouts were all in the journal; not rolled out again", r, before));
        } else {
          var sum = runEpisodes(spec.runId() + "-rl" + r, agents, tasksPerAgent * spec.rlRollouts(),
              new Agent.EpisodeSpec("train", "learned", spec.rlTemperature(), spec.rlRollouts(), weights), Agent.PersistMode.ALL, stage);
          counters = before > 0 ? journalStats(prefix) : sum.counters();
          if (before > 0) {
            resumed.add(String.format("rl %d: completed (%,d of its %,d rollouts were in the journal and kept; the rest sampled at the restored weights)",
                r, before, expected));
          } else if (again) {
            resumed.add(String.format("rl %d: rolled out (none of its rollouts was in the journal)", r));
          }
        }
        round = before > 0 ? counters.getOrDefault("episodes", 0L) : counters.getOrDefault("persisted", 0L);
        if (round != expected) throw new IllegalStateException(stage + ": the journal holds " + round + " of the round's " + expected + " rollouts");
        roundSuccess[r - 1] = (double) counters.getOrDefault("accepted", 0L) / Math.max(1, counters.getOrDefault("episodes", 0L));
        var previous = weights;
        if (spec.rlPrioritized()) weights = priorities(counters, maxSteps);
        rollouts += round;
        target += round;
        awaitConsumed(target, stage);
        awaitPublished();
        checkpoint(); // a resume after this round starts from its weights, not from an older checkpoint's
        var rec = PipelineRecord.object().put("rollouts", round).put("success", roundSuccess[r - 1]);
        rec.set("mix", array(previous));
        rec.set("next-mix", array(weights));
        record.save(spec.runId(), key, rec);
        watched.add(critics.watch(spec.runId() + "-rl" + r, "rl " + r, round));
        criticRounds.add(critics.retrain(spec.runId() + "-rl" + r, "rl " + r, round));
        continue;
      }
      rollouts += round;
      target += round;
      awaitConsumed(target, stage);
      awaitPublished();
      watched.add(critics.watch(spec.runId() + "-rl" + r, "rl " + r, round));
      criticRounds.add(critics.retrain(spec.runId() + "-rl" + r, "rl " + r, round));
    }
    times.put("rl", since(t));
    t = System.nanoTime();
    var rl = evaluation("rl", done, record, resumed);
    times.put("eval-rl", since(t));
    var criticOnRl = critics.measure(spec.runId() + "-eval-rl");
    // the critic's trainings: the first between eval-sft and rl, the rounds' inside rl
    times.put("critic", criticRounds.stream().map(CriticRound::took).reduce(Duration.ZERO, Duration::plus));
    checkpoint();
    times.put("total", since(t0));
    return new Result(init, List.copyOf(sftCurve), sft, rl, times, status(), history(), synthesized, rollouts, roundSuccess, mixes, List.copyOf(resumed),
        new CriticReport(List.copyOf(criticRounds), criticOnRl),
        new RewardReport(dev.k2pekko.trainer.Reward.Weights.fromConfig(system.settings().config()), HackingFlag.flag(watched)));
  }

  /** The run name of the synthesis's part {@code part} (the first keeps the name of a run in one part). */
  private String synthName(int part) {
    return spec.runId() + "-synth" + (part == 1 ? "" : "-" + part);
  }

  /** What fixes a run's data: everything but its id and the stage timeout. */
  static com.fasterxml.jackson.databind.node.ObjectNode specToJson(Spec s) {
    var o = PipelineRecord.object();
    o.put("seed", s.seed()).put("eval-tasks", s.evalTasks()).put("eval-trials", s.evalTrials()).put("eval-temperature", s.evalTemperature())
        .put("synth-agents", s.synthAgents()).put("synth-episodes", s.synthEpisodes()).put("sft-parts", s.sftParts()).put("rl-rounds", s.rlRounds()).put("rl-tasks", s.rlTasks())
        .put("rl-rollouts", s.rlRollouts()).put("rl-temperature", s.rlTemperature()).put("rl-prioritized", s.rlPrioritized());
    return o;
  }

  static Spec specFromJson(String runId, JsonNode o, Duration stageTimeout) {
    return new Spec(runId, o.get("seed").asLong(), o.get("eval-tasks").asInt(), o.get("eval-trials").asInt(), o.get("eval-temperature").asDouble(),
        o.get("synth-agents").asInt(), o.get("synth-episodes").asInt(), o.has("sft-parts") ? o.get("sft-parts").asInt() : 1, o.get("rl-rounds").asInt(), o.get("rl-tasks").asInt(),
        o.get("rl-rollouts").asInt(), o.get("rl-temperature").asDouble(), o.get("rl-prioritized").asBoolean(), stageTimeout);
  }

  /** An evaluation from the record, or run now and recorded: an evaluation is of the weights of its moment, never redone later. */
  private Eval evaluation(String stage, Map<String, JsonNode> done, PipelineRecord record, List<String> resumed) throws Exception {
    String key = "eval-" + stage;
    if (done.containsKey(key)) {
      var e = fromJson(done.get(key));
      resumed.add(String.format("eval %s: done before (version %d, %.1f%%)", stage, e.version(), 100 * e.success()));
      return e;
    }
    var e = evaluate(stage);
    record.save(spec.runId(), key, toJson(e));
    return e;
  }

  static JsonNode toJson(Eval e) {
    var o = PipelineRecord.object();
    o.put("stage", e.stage()).put("version", e.version()).put("tasks", e.tasks()).put("trials", e.trials()).put("success", e.success())
        .put("millis", e.took().toMillis()).put("weights", e.weights());
    o.set("pass-k", array(e.passK()));
    var bd = o.putObject("by-difficulty");
    e.byDifficulty().forEach((d, nc) -> bd.set(Integer.toString(d), array(nc)));
    return o;
  }

  static Eval fromJson(JsonNode o) {
    var bd = new java.util.TreeMap<Integer, double[]>();
    o.get("by-difficulty").fields().forEachRemaining(f -> bd.put(Integer.parseInt(f.getKey()), doubles(f.getValue())));
    return new Eval(o.get("stage").asText(), o.get("version").asLong(), o.get("tasks").asInt(), o.get("trials").asInt(), o.get("success").asDouble(),
        doubles(o.get("pass-k")), bd, Duration.ofMillis(o.get("millis").asLong()), o.has("weights") ? o.get("weights").asText() : "");
  }

  private static JsonNode array(double[] xs) {
    if (xs == null) return com.fasterxml.jackson.databind.node.NullNode.getInstance();
    var a = PipelineRecord.object().arrayNode();
    for (double x : xs) a.add(x);
    return a;
  }

  private static double[] doubles(JsonNode a) {
    if (a == null || a.isNull()) return null;
    double[] out = new double[a.size()];
    for (int i = 0; i < out.length; i++) out[i] = a.get(i).asDouble();
    return out;
  }

  /** A stage's counters from what the journal holds of it (persist ALL: every episode is there), as a judge counts them. */
  private Map<String, Long> journalStats(String prefix) throws Exception {
    var out = new java.util.concurrent.ConcurrentHashMap<String, Long>();
    new dev.k2pekko.agents.TrajectoryReplay(system).source(dev.k2pekko.agents.TrajectoryReplay.Filter.ALL)
        .filter(t -> t.trajectory().trajectoryId().startsWith(prefix))
        .runWith(org.apache.pekko.stream.javadsl.Sink.foreach(x -> {
          var t = x.trajectory();
          boolean ok = t.verdict().accepted();
          out.merge("episodes", 1L, Long::sum);
          out.merge("difficulty/" + t.difficulty() + "/episodes", 1L, Long::sum);
          if (ok) {
            out.merge("accepted", 1L, Long::sum);
            out.merge("difficulty/" + t.difficulty() + "/accepted", 1L, Long::sum);
          }
        }), system)
        .toCompletableFuture().get(spec.stageTimeout().toSeconds(), TimeUnit.SECONDS);
    return out;
  }

  /** Trajectories in the journal whose id starts with {@code prefix}. */
  private long journalCount(String prefix) throws Exception {
    return new dev.k2pekko.agents.TrajectoryReplay(system).source(dev.k2pekko.agents.TrajectoryReplay.Filter.ALL)
        .filter(t -> t.trajectory().trajectoryId().startsWith(prefix))
        .runWith(org.apache.pekko.stream.javadsl.Sink.fold(0L, (n, t) -> n + 1), system)
        .toCompletableFuture().get(spec.stageTimeout().toSeconds(), TimeUnit.SECONDS);
  }

  private static Duration since(long t) {
    return Duration.ofNanos(System.nanoTime() - t);
  }

  /** Waits for the parameter server's first version and for this node's inference server to hold it. */
  private long awaitReady() throws Exception {
    long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
    while (System.nanoTime() < deadline) {
      var st = status();
      var inf = inferenceStats();
      if (st != null && inf.version() >= st.version() && inf.version() >= 0 && st.learners() > 0) return st.version();
      Thread.sleep(100);
    }
    throw new IllegalStateException("the parameter server, a learner or the inference server did not come up within 2 minutes");
  }

  /** Waits until this node's inference server holds the coordinator's current version. */
  private void awaitPublished() throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (System.nanoTime() < deadline) {
      if (inferenceStats().version() >= status().version()) return;
      Thread.sleep(50);
    }
    throw new IllegalStateException("the inference server did not receive version " + status().version() + " within 60 s");
  }

  PsCoordinator.Status status() throws Exception {
    return AskPattern.<PsCoordinator.Command, PsCoordinator.Status>ask(node.coordinator(), PsCoordinator.GetStatus::new,
        Duration.ofSeconds(10), system.scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS);
  }

  ClipMonitorProtocol.History history() throws Exception {
    return AskPattern.<ClipMonitorProtocol.Command, ClipMonitorProtocol.History>ask(node.monitor(), ClipMonitorProtocol.GetHistory::new,
        Duration.ofSeconds(10), system.scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS);
  }

  private InferenceServer.Stats inferenceStats() throws Exception {
    return AskPattern.<InferenceServer.Command, InferenceServer.Stats>ask(NodeServices.get(system).inference(), InferenceServer.GetStats::new,
        Duration.ofSeconds(10), system.scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS);
  }

  public long checkpoint() throws Exception {
    return AskPattern.<PsCoordinator.Command, Long>ask(node.coordinator(), PsCoordinator.CheckpointNow::new, Duration.ofSeconds(60),
        system.scheduler()).toCompletableFuture().get(70, TimeUnit.SECONDS);
  }

  private void awaitConsumed(long target, String stage) throws Exception {
    long deadline = System.nanoTime() + spec.stageTimeout().toNanos();
    while (true) {
      var st = status();
      long done = st.counters().getOrDefault("trajectories", 0L) + st.counters().getOrDefault("trajectories_rejected", 0L);
      var losses = st.losses();
      String detail = losses.isEmpty() ? "" : String.format("v%d loss %.4f", st.version(), losses.getLast().loss());
      progress.accept(new Progress(stage, done, target, detail));
      if (done >= target) return;
      if (System.nanoTime() > deadline) throw new IllegalStateException(stage + ": learners consumed " + done + " of " + target + " trajectories within " + spec.stageTimeout());
      Thread.sleep(250);
    }
  }

  private RunTracker.Summary runEpisodes(String runId, int agents, int episodes, Agent.EpisodeSpec es, Agent.PersistMode persist, String stage)
      throws Exception {
    // The seed follows from --seed and the stage, not from the run id: the same --seed gives the same synthesis data
    // and rollout tasks, and every evaluation (init, sft, rl) uses the same held-out tasks, so stages compare.
    String stageKey = runId.startsWith(spec.runId()) ? runId.substring(spec.runId().length()) : runId;
    long seed = stageKey.startsWith("-eval-") ? spec.seed() : spec.seed() * 31 + stageKey.hashCode();
    var rs = new RunDriver.RunSpec(runId, agents, episodes, seed, persist, spec.stageTimeout(), es);
    var done = RunDriver.start(system, rs, s -> progress.accept(new Progress(stage, s.get("episodes"), s.expectedEpisodes(),
        String.format("%.1f%% accepted", 100.0 * s.get("accepted") / Math.max(1, s.get("episodes"))))));
    var summary = done.get(spec.stageTimeout().toSeconds() + 30, TimeUnit.SECONDS);
    if (!summary.complete()) throw new IllegalStateException(stage + " did not finish within " + spec.stageTimeout());
    return summary;
  }

  /** Held-out evaluation at the current version: per-task trials and successes from the judges' counters. */
  private Eval evaluate(String stage) throws Exception {
    long t = System.nanoTime();
    var at = status();
    long version = at.version();
    // The untrained policy writes actions of random tokens up to the step budget: slow to play and all failures. Its
    // evaluation takes the first init-eval-tasks held-out tasks (equal shares per difficulty, as the full set's).
    int agents = stage.equals("init") ? Math.min(spec.evalTasks(), system.settings().config().getInt("k2.pipeline.init-eval-tasks")) : spec.evalTasks();
    var summary = runEpisodes(spec.runId() + "-eval-" + stage, agents, spec.evalTrials(),
        new Agent.EpisodeSpec("held-out", "learned", spec.evalTemperature(), spec.evalTrials()), Agent.PersistMode.NONE, "eval " + stage);
    var perTask = new HashMap<String, int[]>();
    summary.counters().forEach((k, v) -> {
      if (!k.startsWith("task/")) return;
      String id = k.substring(5, k.lastIndexOf('/'));
      var nc = perTask.computeIfAbsent(id, x -> new int[2]);
      if (k.endsWith("/n")) nc[0] = v.intValue();
      else nc[1] = v.intValue();
    });
    var pk = PassK.of(perTask, spec.evalTrials());
    var byDifficulty = new java.util.TreeMap<Integer, double[]>();
    int maxSteps = system.settings().config().getInt("k2.policy.max-steps");
    for (int d = 1; d <= maxSteps; d++) {
      long n = summary.get("difficulty/" + d + "/episodes"), ok = summary.get("difficulty/" + d + "/accepted");
      if (n > 0) byDifficulty.put(d, new double[] {n, ok});
    }
    double[] passK = new double[spec.evalTrials()];
    for (int k = 1; k <= spec.evalTrials(); k++) passK[k - 1] = pk.at(k);
    return new Eval(stage, version, perTask.size(), spec.evalTrials(), pk.success(), passK, byDifficulty, since(t), at.weights());
  }
}
