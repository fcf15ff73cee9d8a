package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import dev.k2pekko.tools.ToolDirectory;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The synthesis stage end to end on one node, every message serialized: agents run tasks against tool workers,
 * the judge scores them, collectors persist them; replay reads back exactly what was persisted, and every
 * exported line follows the chat format. Against H2 and PostgreSQL.
 */
class SynthesisRunTest {
  @Test void h2(@TempDir Path dir) throws Exception {
    runAndReplay(TestNodes.h2(dir, Map.of()));
  }

  @Test void postgres() throws Exception {
    try (var db = PostgresTestDatabase.create("k2test")) {
      runAndReplay(TestNodes.postgres(db.url(), Map.of()));
    }
  }

  private void runAndReplay(Config config) throws Exception {
    JournalSchema.ensure(config);
    var system = K2Node.start("k2", config);
    try {
      var cluster = Cluster.get(system);
      cluster.manager().tell(Join.create(cluster.selfMember().address()));
      String runId = "test-" + System.nanoTime();
      var spec = new RunDriver.RunSpec(runId, 40, 5, 7, Agent.PersistMode.ALL, Duration.ofSeconds(60));
      var summary = RunDriver.start(system, spec, s -> {}).get(90, TimeUnit.SECONDS);
      assertTrue(summary.complete(), "run did not complete: " + summary.counters());
      assertEquals(200, summary.get("episodes"));
      assertEquals(summary.get("episodes"), summary.get("accepted") + summary.get("rejected"));
      // the default world: one call in three fails and the teacher never retries, so about a quarter of its episodes
      // pass (about 52 of 200; 30 is three standard deviations under)
      assertTrue(summary.get("accepted") > 30, "the teacher should succeed about a quarter of the time: " + summary.counters());
      assertTrue(summary.get("rejected") > 0, "the teacher's mistakes should give the judge something to reject");
      assertEquals(200, summary.get("persisted"), "--persist all keeps rejected ones too");
      assertTrue(summary.get("tool_calls") >= 200);
      // the judge's, tool workers' and collectors' meters agree with the run's summary (one node, nothing redone)
      var metrics = dev.k2pekko.metrics.Metrics.get(system);
      assertEquals(summary.get("accepted"), metrics.counter("k2_episodes", "", "outcome", "accepted").count());
      assertEquals(summary.get("rejected"), metrics.counter("k2_episodes", "", "outcome", "rejected").count());
      long calls = metrics.meters().stream().filter(m -> m.id().name().equals("k2_tool_calls"))
          .mapToLong(m -> ((dev.k2pekko.metrics.Meter.Counter) m).count()).sum();
      assertEquals(summary.get("tool_calls"), calls);
      assertTrue(metrics.timer("k2_journal_write", "").count() > 0, "journal writes timed");
      assertEquals(0.0, metrics.gauge("k2_collector_backlog", "").value(), "nothing left waiting for a collector");

      var replay = new TrajectoryReplay(system);
      var ids = new HashSet<String>();
      var accepted = new long[1];
      var export = new ChatExport(ToolDirectory.get(system).universe());
      replay.forEach(TrajectoryReplay.Filter.ALL, Duration.ofSeconds(60), (tag, t) -> {
        if (!t.trajectoryId().startsWith(runId + "/")) return;
        assertTrue(ids.add(t.trajectoryId()), "trajectory twice in the journal: " + t.trajectoryId());
        assertEquals(TrajectoryCollector.tagFor(t.trajectoryId(), 8), tag);
        if (t.verdict().accepted()) accepted[0]++;
        checkChatFormat(export.toLine(t, tag));
      });
      assertEquals(200, ids.size());
      assertEquals(summary.get("accepted"), accepted[0]);
      long acceptedInJournal = replay.count(new TrajectoryReplay.Filter(null, null, true), Duration.ofSeconds(60));
      assertTrue(acceptedInJournal >= accepted[0]);

      // K rollouts per task (as RL runs them): each task's K rollouts lie next to each other in their tag's order,
      // never split, so a learner reading the tag sees whole groups
      String groups = "groups-" + System.nanoTime();
      var rollouts = new RunDriver.RunSpec(groups, 30, 8, 11, Agent.PersistMode.ALL, Duration.ofSeconds(60),
          new Agent.EpisodeSpec(Agent.Tasks.TRAIN, "teacher", 0, 4));
      var gs = RunDriver.start(system, rollouts, s -> {}).get(90, TimeUnit.SECONDS);
      assertEquals(240, gs.get("persisted"));
      var lastGroupOfTag = new java.util.HashMap<String, String>();
      var closed = new HashSet<String>();
      var sizes = new java.util.HashMap<String, Integer>();
      replay.forEach(TrajectoryReplay.Filter.ALL, Duration.ofSeconds(60), (tag, t) -> {
        if (!t.trajectoryId().startsWith(groups + "/")) return;
        String g = t.trajectoryId().substring(0, t.trajectoryId().indexOf('#'));
        String previous = lastGroupOfTag.put(tag, g);
        if (previous != null && !previous.equals(g)) assertTrue(closed.add(previous), "group " + previous + " continues after " + g);
        assertTrue(!closed.contains(g), "group " + g + " split in tag " + tag);
        sizes.merge(g, 1, Integer::sum);
      });
      assertEquals(60, sizes.size());
      sizes.forEach((g, n) -> assertEquals(4, n, g));
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  static void checkChatFormat(String line) {
    ChatExport.validate(line);
  }
}
