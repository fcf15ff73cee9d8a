package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.ShardRegion;
import org.apache.pekko.cluster.sharding.typed.GetClusterShardingStats;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.Test;

/**
 * Three nodes (ActorSystems on 127.0.0.1 in one JVM) sharing a PostgreSQL journal, every message serialized:
 * agents are spread over all three, each node's tool workers serve its own agents, and every accepted
 * trajectory lands in the journal exactly once.
 */
class ThreeNodeClusterTest {
  @Test void episodesRunOnEveryNodeAndPersistExactlyOnce() throws Exception {
    var db = PostgresTestDatabase.create("k2test");
    var url = db.url();
    var systems = new ArrayList<ActorSystem<Void>>();
    try {
      var first = K2Node.start("k2", TestNodes.postgres(url, Map.of()));
      systems.add(first);
      JournalSchema.ensure(first.settings().config());
      var seed = Cluster.get(first).selfMember().address();
      for (int i = 0; i < 2; i++) systems.add(K2Node.start("k2", TestNodes.postgres(url, Map.of())));
      for (var s : systems) Cluster.get(s).manager().tell(Join.create(seed));
      K2Node.awaitMembersUp(first, 3, Duration.ofSeconds(30));
      // every node's agent-cohort shard region has registered with the coordinator: the run's agents can spread over all three
      var stats = TestProbe.<ShardRegion.ClusterShardingStats>create(first);
      stats.awaitAssert(Duration.ofSeconds(30), Duration.ofMillis(100), () -> {
        ClusterSharding.get(first).shardState().tell(new GetClusterShardingStats(AgentCohort.KEY, Duration.ofSeconds(2), stats.getRef()));
        assertEquals(3, stats.receiveMessage(Duration.ofSeconds(5)).getRegions().size());
        return null;
      });

      String runId = "cluster-" + System.nanoTime();
      var spec = new RunDriver.RunSpec(runId, 60, 4, 11, Agent.PersistMode.ACCEPTED, Duration.ofSeconds(90));
      var summary = RunDriver.start(first, spec, s -> {}).get(120, TimeUnit.SECONDS);
      assertTrue(summary.complete(), "run did not complete: " + summary.counters());
      assertEquals(240, summary.get("episodes"));

      var nodes = summary.counters().keySet().stream().filter(k -> k.startsWith("node/")).toList();
      assertEquals(3, nodes.size(), "episodes ran on " + nodes);
      for (var n : nodes) assertTrue(summary.get(n) > 0, n);

      var ids = new HashSet<String>();
      long[] rows = new long[1];
      new TrajectoryReplay(first).forEach(TrajectoryReplay.Filter.ALL, Duration.ofSeconds(60), (tag, t) -> {
        if (!t.trajectoryId().startsWith(runId + "/")) return;
        rows[0]++;
        ids.add(t.trajectoryId());
        assertTrue(t.verdict().accepted());
      });
      assertEquals(summary.get("accepted"), rows[0], "journal rows for this run");
      assertEquals(rows[0], ids.size(), "no trajectory is in the journal twice");
      assertEquals(summary.get("accepted"), summary.get("persisted"));
    } finally {
      for (var s : systems) s.terminate();
      for (var s : systems) s.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
      db.close();
    }
  }


}
