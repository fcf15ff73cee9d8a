package dev.k2pekko.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import dev.k2pekko.agents.Agent;
import dev.k2pekko.ps.eval.PassK;
import java.time.Duration;
import java.util.HashMap;
import java.util.TreeMap;
import org.apache.pekko.actor.typed.ActorSystem;

/**
 * The held-out evaluations of a run (init, sft-1.., sft, rl): the current policy on the held-out tasks, each task
 * {@code eval-trials} times, nothing persisted. An evaluation is of the weights of its moment, so a resumed run takes
 * a recorded one from its record and never redoes it later.
 */
final class Evaluation {
  private final ActorSystem<?> system;
  private final Pipeline.Spec spec;
  private final RunLedger ledger;
  private final ClusterProbe probe;
  private final EpisodeRuns episodes;

  Evaluation(ActorSystem<?> system, Pipeline.Spec spec, RunLedger ledger, ClusterProbe probe, EpisodeRuns episodes) {
    this.system = system;
    this.spec = spec;
    this.ledger = ledger;
    this.probe = probe;
    this.episodes = episodes;
  }

  /** The evaluation of {@code stage}: from the record, or run now and recorded. */
  Pipeline.Eval of(String stage) throws Exception {
    String key = "eval-" + stage;
    var recorded = ledger.done(key);
    if (recorded != null) {
      var e = fromJson(recorded);
      ledger.note(String.format("eval %s: done before (version %d, %.1f%%)", stage, e.version(), 100 * e.success()));
      return e;
    }
    var e = evaluate(stage);
    ledger.save(key, toJson(e));
    return e;
  }

  /**
   * The open evaluation after {@code stage} (sft, rl): the fixed held-out open tasks ({@code k2.open.eval-tasks}), each
   * {@code eval-trials} times, success by the hidden rubric; from the record, or run now and recorded. Null when the run
   * evaluates no open tasks. Its episodes are stage {@code <run>-eval-open-<stage>}.
   */
  Pipeline.Eval open(String stage) throws Exception {
    if (spec.open().evalTasks() == 0 || !PolicyTasks.of(system.settings().config()).core()) return null; // open tasks are core tasks
    String key = "eval-open-" + stage;
    var recorded = ledger.done(key);
    if (recorded != null) {
      var e = fromJson(recorded);
      ledger.note(String.format("eval open-%s: done before (version %d, %.1f%%)", stage, e.version(), 100 * e.success()));
      return e;
    }
    var e = evaluate("open-" + stage, spec.open().evalTasks(), Agent.Tasks.HELD_OUT_OPEN);
    ledger.save(key, toJson(e));
    return e;
  }

  /** Held-out evaluation at the current version: per-task trials and successes from the judges' counters. */
  private Pipeline.Eval evaluate(String stage) throws Exception {
    // The untrained policy writes actions of random tokens up to the step budget: slow to play and all failures. Its
    // evaluation takes the first init-eval-tasks held-out tasks (equal shares per difficulty, as the full set's).
    int agents = stage.equals("init") ? Math.min(spec.evalTasks(), system.settings().config().getInt("k2.pipeline.init-eval-tasks")) : spec.evalTasks();
    return evaluate(stage, agents, PolicyTasks.of(system.settings().config()).heldOut());
  }

  /** {@code agents} held-out tasks of kind {@code tasks} (an agent's trials share one task), evaluated as run {@code <run>-eval-<stage>}. */
  private Pipeline.Eval evaluate(String stage, int agents, Agent.Tasks tasks) throws Exception {
    long t = System.nanoTime();
    var at = probe.status();
    long version = at.version();
    var summary = episodes.run(spec.runId() + "-eval-" + stage, agents, spec.evalTrials(),
        new Agent.EpisodeSpec(tasks, "learned", spec.evalTemperature(), spec.evalTrials()), Agent.PersistMode.NONE, "eval " + stage);
    var perTask = new HashMap<String, int[]>();
    summary.counters().forEach((k, v) -> {
      if (!k.startsWith("task/")) return;
      String id = k.substring(5, k.lastIndexOf('/'));
      var nc = perTask.computeIfAbsent(id, x -> new int[2]);
      if (k.endsWith("/n")) nc[0] = v.intValue();
      else nc[1] = v.intValue();
    });
    var pk = PassK.of(perTask, spec.evalTrials());
    var byDifficulty = new TreeMap<Integer, double[]>();
    int maxSteps = Math.max(3, system.settings().config().getInt("k2.policy.max-steps")); // kg tasks: difficulties 1..3
    for (int d = 1; d <= maxSteps; d++) {
      long n = summary.get("difficulty/" + d + "/episodes"), ok = summary.get("difficulty/" + d + "/accepted");
      if (n > 0) byDifficulty.put(d, new double[] {n, ok});
    }
    double[] passK = new double[spec.evalTrials()];
    for (int k = 1; k <= spec.evalTrials(); k++) passK[k - 1] = pk.at(k);
    return new Pipeline.Eval(stage, version, perTask.size(), spec.evalTrials(), pk.success(), passK, byDifficulty,
        Duration.ofNanos(System.nanoTime() - t), at.weights());
  }

  static JsonNode toJson(Pipeline.Eval e) {
    var o = PipelineRecord.object();
    o.put("stage", e.stage()).put("version", e.version()).put("tasks", e.tasks()).put("trials", e.trials()).put("success", e.success())
        .put("millis", e.took().toMillis()).put("weights", e.weights());
    o.set("pass-k", PipelineRecord.array(e.passK()));
    var bd = o.putObject("by-difficulty");
    e.byDifficulty().forEach((d, nc) -> bd.set(Integer.toString(d), PipelineRecord.array(nc)));
    return o;
  }

  static Pipeline.Eval fromJson(JsonNode o) {
    var bd = new TreeMap<Integer, double[]>();
    o.get("by-difficulty").fields().forEachRemaining(f -> bd.put(Integer.parseInt(f.getKey()), PipelineRecord.doubles(f.getValue())));
    return new Pipeline.Eval(o.get("stage").asText(), o.get("version").asLong(), o.get("tasks").asInt(), o.get("trials").asInt(), o.get("success").asDouble(),
        PipelineRecord.doubles(o.get("pass-k")), bd, Duration.ofMillis(o.get("millis").asLong()), o.has("weights") ? o.get("weights").asText() : "");
  }
}
