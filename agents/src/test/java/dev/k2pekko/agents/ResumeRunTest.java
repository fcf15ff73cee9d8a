package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A run whose node stops mid-run (the judge's buffers, the tracker and the agents gone with it) continues from its
 * run record when started again with the same id: only the episodes not done run, and the summary counts the whole
 * run, equal to the journal and to the same run undisturbed (accepted, fingerprint), with no trajectory twice.
 */
class ResumeRunTest {
  @Test void aRunStoppedMidwayContinuesFromItsRecord(@TempDir Path dir) throws Exception {
    int agents = 100, episodes = 40;
    var reference = run(dir.resolve("reference"), "ref", agents, episodes);

    // a small judge backlog keeps the agents near what is durable: in a warm JVM they would otherwise run the whole
    // plan in the time the record takes to show a fifth of it, and the stop below would come too late to interrupt it
    var config = TestNodes.h2(dir.resolve("crashed"), Map.of("k2.judge.max-backlog", 100));
    JournalSchema.ensure(config);
    var first = node(config);
    var fifth = new CompletableFuture<Long>();
    try {
      RunDriver.start(first, spec("run", agents, episodes), s -> {
        if (s.get("episodes") >= agents * episodes / 5) fifth.complete(s.get("episodes"));
      });
      fifth.get(120, TimeUnit.SECONDS);
    } finally {
      first.terminate();
      first.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
    var second = node(config);
    try {
      var before = RunRecord.read(second, "run", Duration.ofSeconds(30)).get(40, TimeUnit.SECONDS);
      assertTrue(before.done().size() >= agents * episodes / 5 && before.done().size() < agents * episodes,
          "the record should hold part of the run: " + before.done().size());
      var summary = RunDriver.start(second, spec("run", agents, episodes), s -> {}).get(150, TimeUnit.SECONDS);
      assertTrue(summary.complete(), summary.counters().toString());
      assertEquals(agents * episodes, summary.get("episodes"));
      assertEquals(reference.get("accepted"), summary.get("accepted"), "accepted vs the same run undisturbed");
      assertEquals(reference.get("fingerprint"), summary.get("fingerprint"), "trajectories vs the same run undisturbed");
      var ids = new HashSet<String>();
      long[] rows = new long[1];
      new TrajectoryReplay(second).forEach(TrajectoryReplay.Filter.ALL, Duration.ofSeconds(60), (tag, t) -> {
        rows[0]++;
        ids.add(t.trajectoryId());
      });
      assertEquals(rows[0], ids.size(), "a trajectory is in the journal twice");
      assertEquals(summary.get("accepted"), rows[0], "accepted in the summary vs the journal");

      // a different plan under the same id is refused, not mixed in
      var refused = RunDriver.start(second, spec("run", agents + 1, episodes), s -> {});
      var e = org.junit.jupiter.api.Assertions.assertThrows(java.util.concurrent.ExecutionException.class, () -> refused.get(60, TimeUnit.SECONDS));
      assertTrue(e.getCause().getMessage().contains("was planned with"), e.getCause().getMessage());
    } finally {
      second.terminate();
      second.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  private static RunDriver.RunSpec spec(String runId, int agents, int episodes) {
    return new RunDriver.RunSpec(runId, agents, episodes, 9, Agent.PersistMode.ACCEPTED, Duration.ofSeconds(120));
  }

  private static ActorSystem<Void> node(com.typesafe.config.Config config) throws Exception {
    var system = K2Node.start("k2", config);
    var cluster = Cluster.get(system);
    cluster.manager().tell(Join.create(cluster.selfMember().address()));
    K2Node.awaitMembersUp(system, 1, Duration.ofSeconds(30));
    return system;
  }

  private static RunTracker.Summary run(Path dir, String runId, int agents, int episodes) throws Exception {
    var config = TestNodes.h2(dir, Map.of());
    JournalSchema.ensure(config);
    var system = node(config);
    try {
      var s = RunDriver.start(system, spec(runId, agents, episodes), x -> {}).get(150, TimeUnit.SECONDS);
      assertTrue(s.complete(), s.counters().toString());
      return s;
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }
}
