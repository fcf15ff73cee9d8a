package dev.k2pekko.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.agents.Agent;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;

/** {@code k2 bench memory}: heap per idle agent actor (sharded entity) on one node. */
public final class MemoryBench {
  private static final ObjectMapper JSON = new ObjectMapper();

  private MemoryBench() {}

  /** With baseline set, entities that do nothing (what Pekko and Cluster Sharding cost per entity) instead of agents. */
  public static ObjectNode run(ActorSystem<?> system, int agents, boolean baseline) throws Exception {
    var sharding = ClusterSharding.get(system);
    if (baseline) {
      sharding.init(org.apache.pekko.cluster.sharding.typed.javadsl.Entity.of(IDLE, ctx -> Behaviors.ignore()));
    }
    var key = baseline ? IDLE : Agent.KEY;
    // start the shard regions' shards with one agent each, so that the measured delta is the agents
    var idle = new Agent.RunEpisodes("idle", 0, 0, Agent.PersistMode.NONE, null);
    for (int i = 0; i < 200; i++) sharding.entityRefFor(key, "warm-" + i).tell(idle);
    Thread.sleep(2000);
    long before = usedAfterGc();
    for (int i = 0; i < agents; i++) sharding.entityRefFor(key, "agent-" + i).tell(idle);
    long started = waitForEntities(system, key, agents + 200);
    long after = usedAfterGc();
    var o = JSON.createObjectNode().put("bench", baseline ? "memory-baseline" : "memory").put("agents", agents).put("entities_started", started)
        .put("heap_before_mb", before >> 20).put("heap_after_mb", after >> 20)
        .put("bytes_per_idle_agent", Math.round((double) (after - before) / agents));
    return o;
  }

  /** An entity that does nothing: the floor of what any sharded entity costs. */
  static final org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey<Agent.Command> IDLE =
      org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey.create(Agent.Command.class, "idle-baseline");

  private static long waitForEntities(ActorSystem<?> system, org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey<?> key, long n)
      throws Exception {
    var sharding = ClusterSharding.get(system);
    long count = 0;
    for (int i = 0; i < 120; i++) {
      var stats = AskPattern.<org.apache.pekko.cluster.sharding.typed.ClusterShardingQuery, org.apache.pekko.cluster.sharding.ShardRegion.CurrentShardRegionState>ask(
          sharding.shardState(), r -> new org.apache.pekko.cluster.sharding.typed.GetShardRegionState(key, r),
          Duration.ofSeconds(10), system.scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS);
      count = stats.getShards().stream().mapToLong(s -> s.getEntityIds().size()).sum();
      if (count >= n) return count;
      Thread.sleep(500);
    }
    return count;
  }

  private static long usedAfterGc() throws InterruptedException {
    var mem = ManagementFactory.getMemoryMXBean();
    for (int i = 0; i < 4; i++) {
      System.gc();
      Thread.sleep(200);
    }
    return mem.getHeapMemoryUsage().getUsed();
  }
}
