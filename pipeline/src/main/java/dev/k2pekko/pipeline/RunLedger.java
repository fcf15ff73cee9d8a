package dev.k2pekko.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One run's bookkeeping for {@code --resume}: which stages its {@link PipelineRecord} holds as done (taken as they
 * are), the settings it was started with (a resumed run keeps them: they fix its data), and the lines that tell the
 * user what a resumed run took from its record or completed. A stage is recorded only once it is done.
 */
final class RunLedger {
  private final PipelineRecord record;
  private final Pipeline.Spec spec;
  private final Map<String, JsonNode> done;
  private final List<String> notes = new ArrayList<>();
  private boolean again;

  private RunLedger(PipelineRecord record, Pipeline.Spec spec, Map<String, JsonNode> done) {
    this.record = record;
    this.spec = spec;
    this.done = done;
  }

  /** The ledger of run {@code given.runId()}: a fresh run's settings are recorded; a resumed run's are read back. */
  static RunLedger open(PipelineRecord record, Pipeline.Spec given) throws SQLException {
    var done = record.load(given.runId());
    if (!done.containsKey("spec")) {
      record.save(given.runId(), "spec", specToJson(given));
      return new RunLedger(record, given, done);
    }
    var started = specFromJson(given.runId(), done.get("spec"), given.stageTimeout());
    if (started.equals(given)) return new RunLedger(record, given, done);
    var ledger = new RunLedger(record, started, done);
    ledger.note("settings: as the run was started (" + specToJson(started) + "), not as given now (" + specToJson(given) + ")");
    return ledger;
  }

  /** The settings the run goes on with: as it was started. */
  Pipeline.Spec spec() {
    return spec;
  }

  /**
   * Says which weights the cluster came up with. A run with a record or a checkpoint has been here before: what the
   * journal holds of a stage it did not finish is counted ({@link #again()}).
   */
  void cameUpWith(long restoredFrom) {
    again = !done.isEmpty() || restoredFrom >= 0;
    if (again) note("weights: " + (restoredFrom >= 0 ? "checkpoint version " + restoredFrom : "no checkpoint, the initial ones"));
  }

  /** True when this run has been here before, so the journal may hold part of a stage. */
  boolean again() {
    return again;
  }

  /** What the record holds of stage {@code key}, or null when the stage is not done. */
  JsonNode done(String key) {
    return done.get(key);
  }

  /** Records stage {@code key} as done. */
  void save(String key, JsonNode stage) throws SQLException {
    record.save(spec.runId(), key, stage);
  }

  /** One line for the user about what a resumed run took or completed. */
  void note(String line) {
    notes.add(line);
  }

  /** What the run resumed, one line per stage; empty for a fresh run. */
  List<String> notes() {
    return List.copyOf(notes);
  }

  /** What fixes a run's data: everything but its id and the stage timeout. */
  static ObjectNode specToJson(Pipeline.Spec s) {
    var o = PipelineRecord.object();
    o.put("seed", s.seed()).put("eval-tasks", s.evalTasks()).put("eval-trials", s.evalTrials()).put("eval-temperature", s.evalTemperature())
        .put("synth-agents", s.synthAgents()).put("synth-episodes", s.synthEpisodes()).put("sft-parts", s.sftParts()).put("rl-rounds", s.rlRounds()).put("rl-tasks", s.rlTasks())
        .put("rl-rollouts", s.rlRollouts()).put("rl-temperature", s.rlTemperature()).put("rl-prioritized", s.rlPrioritized());
    o.put("open-synthesis-share", s.open().synthesisShare()).put("open-rl-share", s.open().rlShare()).put("open-eval-tasks", s.open().evalTasks());
    return o;
  }

  static Pipeline.Spec specFromJson(String runId, JsonNode o, Duration stageTimeout) {
    return new Pipeline.Spec(runId, o.get("seed").asLong(), o.get("eval-tasks").asInt(), o.get("eval-trials").asInt(), o.get("eval-temperature").asDouble(),
        o.get("synth-agents").asInt(), o.get("synth-episodes").asInt(), o.has("sft-parts") ? o.get("sft-parts").asInt() : 1, o.get("rl-rounds").asInt(), o.get("rl-tasks").asInt(),
        o.get("rl-rollouts").asInt(), o.get("rl-temperature").asDouble(), o.get("rl-prioritized").asBoolean(), stageTimeout,
        // a run recorded before open tasks had none
        o.has("open-synthesis-share") ? new Pipeline.Open(o.get("open-synthesis-share").asDouble(), o.get("open-rl-share").asDouble(),
            o.get("open-eval-tasks").asInt()) : Pipeline.Open.NONE);
  }
}
