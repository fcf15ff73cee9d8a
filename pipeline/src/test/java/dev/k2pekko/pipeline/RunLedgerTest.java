package dev.k2pekko.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A run's record and what a resume takes from it, on an H2 database of its own: no cluster. */
class RunLedgerTest {
  private static Pipeline.Spec spec(String runId, long seed, int rlRounds, Duration timeout) {
    return new Pipeline.Spec(runId, seed, 5, 2, 1.0, 20, 10, 2, rlRounds, 10, 2, 1.0, true, timeout);
  }

  private static PipelineRecord record() throws Exception {
    var dir = Files.createTempDirectory("k2-ledger");
    return new PipelineRecord("jdbc:h2:file:" + dir.resolve("db").toAbsolutePath(), "sa", "");
  }

  @Test void aResumedRunGoesOnWithTheSettingsItWasStartedWithAndSaysSo() throws Exception {
    try (var record = record()) {
      var fresh = RunLedger.open(record, spec("r", 42, 2, Duration.ofMinutes(3)));
      fresh.cameUpWith(-1);
      assertFalse(fresh.again(), "nothing recorded, no checkpoint: a fresh run");
      assertEquals(List.of(), fresh.notes());
      assertNull(fresh.done("synthesis"));
      fresh.save("synthesis", PipelineRecord.object().put("trajectories", 7));

      // given other settings and another timeout: the data-fixing settings come from the record, the timeout as given now
      var resumed = RunLedger.open(record, spec("r", 43, 4, Duration.ofMinutes(9)));
      assertEquals(spec("r", 42, 2, Duration.ofMinutes(9)), resumed.spec());
      assertTrue(resumed.notes().getFirst().startsWith("settings: as the run was started"), resumed.notes().toString());
      assertEquals(7, resumed.done("synthesis").get("trajectories").asLong());
      resumed.cameUpWith(12);
      assertTrue(resumed.again());
      assertEquals("weights: checkpoint version 12", resumed.notes().get(1));

      // the same settings again: nothing to say about them
      var same = RunLedger.open(record, spec("r", 42, 2, Duration.ofMinutes(3)));
      assertEquals(List.of(), same.notes());
      same.cameUpWith(-1);
      assertTrue(same.again(), "a record of an earlier start: what the journal holds of a stage is counted");
      assertEquals(List.of("weights: no checkpoint, the initial ones"), same.notes());
    }
  }

  @Test void anEvaluationReadsBackAsItWasRecorded() {
    var e = new Pipeline.Eval("sft", 9, 5, 2, 0.7, new double[] {0.7, 0.5}, new java.util.TreeMap<>(java.util.Map.of(2, new double[] {4, 3})),
        Duration.ofMillis(1234), "abc");
    var back = Evaluation.fromJson(Evaluation.toJson(e));
    assertEquals(Evaluation.toJson(e).toString(), Evaluation.toJson(back).toString());
    assertEquals("abc", back.weights());
    assertEquals(9, back.version());
  }
}
