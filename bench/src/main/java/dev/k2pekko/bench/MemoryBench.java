package dev.k2pekko.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.AgentCohort;
import dev.k2pekko.agents.NodeServices;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * {@code k2 bench memory}: heap per idle agent on one node. Agents are child actors of the sharded cohorts
 * ({@link AgentCohort}); each is started by an assignment with no episodes, as a run's first message starts it.
 */
public final class MemoryBench {
  private static final ObjectMapper JSON = new ObjectMapper();

  private MemoryBench() {}

  private static final Agent.RunEpisodes IDLE_RUN = new Agent.RunEpisodes("idle", 0, 0, Agent.PersistMode.NONE, null);

  /** With baseline set, sharded entities that do nothing, one per agent (what Pekko and Cluster Sharding cost per entity). */
  public static ObjectNode run(ActorSystem<?> system, int agents, boolean baseline) throws Exception {
    return baseline ? baseline(system, agents) : agents(system, agents);
  }

  /**
   * Agents idle again after a run: each ran one episode (teacher, persistence off), so it keeps what a run leaves in an
   * agent. A first run of one agent per cohort starts the cohorts, warms the run's machinery and fills the task bank
   * of the runs' seed (k2.tasks.bank-size tasks, built as episodes draw them: about 2 KB a task, the node's and not
   * the agents'; three draws per task leave 5% unbuilt); the heap is measured before and after the measured run, over
   * the agents it added.
   */
  public static ObjectNode afterRun(ActorSystem<?> system, int agents) throws Exception {
    int cohorts = NodeServices.get(system).settings().cohorts();
    if (agents <= cohorts) throw new IllegalArgumentException("--after-run needs more agents than cohorts (" + cohorts + ")");
    int bank = system.settings().config().getInt("k2.tasks.bank-size");
    long boot = usedAfterGc();
    var warm = run(system, cohorts, Math.max(1, (3 * bank + cohorts - 1) / cohorts));
    long before = usedAfterGc();
    var s = run(system, agents, 1);
    long after = usedAfterGc();
    // again once the agents' last timeout ticks, cancelled, have left the scheduler (they stay until their time)
    Thread.sleep(2 * NodeServices.get(system).settings().tickInterval().toMillis() + 1000);
    long later = usedAfterGc();
    long added = agents - cohorts;
    return JSON.createObjectNode().put("bench", "memory-after-run").put("agents", agents).put("cohorts", cohorts)
        .put("episodes", s.get("episodes")).put("complete", warm.complete() && s.complete())
        .put("heap_boot_mb", boot >> 20).put("heap_before_mb", before >> 20).put("heap_after_mb", after >> 20)
        .put("heap_max_mb", Runtime.getRuntime().maxMemory() >> 20)
        .put("bytes_per_idle_agent", Math.round((double) (after - before) / added))
        .put("heap_seconds_later_mb", later >> 20)
        .put("bytes_per_idle_agent_seconds_later", Math.round((double) (later - before) / added));
  }

  private static dev.k2pekko.agents.RunTracker.Summary run(ActorSystem<?> system, int agents, int episodes) throws Exception {
    var spec = new dev.k2pekko.agents.RunDriver.RunSpec("memory-" + System.nanoTime(), agents, episodes, 42, Agent.PersistMode.NONE,
        Duration.ofMinutes(10));
    return dev.k2pekko.agents.RunDriver.start(system, spec, x -> {}).get(11, TimeUnit.MINUTES);
  }

  /**
   * Two figures: the heap the agents add once every cohort runs (one warm agent each, numbered after the measured
   * ones), and the same counted from before any cohort started (the cohorts' and shards' own cost shared by the agents).
   */
  private static ObjectNode agents(ActorSystem<?> system, int agents) throws Exception {
    int cohorts = NodeServices.get(system).settings().cohorts();
    long boot = usedAfterGc();
    for (int i = 0; i < cohorts; i++) AgentCohort.tell(system, agents + i, IDLE_RUN);
    long warm = waitForAgents(system, cohorts, cohorts);
    long before = usedAfterGc();
    long t0 = System.nanoTime();
    for (int i = 0; i < agents; i++) {
      AgentCohort.tell(system, i, IDLE_RUN);
      // sharding buffers what it cannot deliver yet up to a limit: stay well inside it (bounded: at most 10 s a pause)
      if (i % 50_000 == 49_999) waitForAgents(system, cohorts, warm + i + 1 - 50_000);
    }
    long started = waitForAgents(system, cohorts, warm + agents) - warm;
    double seconds = (System.nanoTime() - t0) / 1e9;
    long after = usedAfterGc();
    long max = Runtime.getRuntime().maxMemory();
    return JSON.createObjectNode().put("bench", "memory").put("agents", agents).put("agents_started", started).put("cohorts", cohorts)
        .put("start_seconds", Math.round(seconds * 10) / 10.0)
        .put("heap_boot_mb", boot >> 20).put("heap_before_mb", before >> 20).put("heap_after_mb", after >> 20).put("heap_max_mb", max >> 20)
        .put("bytes_per_idle_agent", Math.round((double) (after - before) / agents))
        .put("bytes_per_idle_agent_with_cohorts", Math.round((double) (after - boot) / agents));
  }

  /** Counts the agents of every cohort until there are at least {@code n} (at most two minutes); returns the count. */
  private static long waitForAgents(ActorSystem<?> system, int cohorts, long n) throws Exception {
    var sharding = ClusterSharding.get(system);
    long count = 0;
    for (int round = 0; round < 240; round++) {
      var replies = new java.util.ArrayList<java.util.concurrent.CompletableFuture<AgentCohort.AgentCount>>();
      for (int c = 0; c < cohorts; c++) {
        var ref = sharding.entityRefFor(AgentCohort.KEY, AgentCohort.entityId(c, cohorts));
        replies.add(AskPattern.<AgentCohort.Command, AgentCohort.AgentCount>ask(ref, AgentCohort.CountAgents::new, Duration.ofSeconds(30),
            system.scheduler()).toCompletableFuture());
      }
      count = 0;
      for (var r : replies) count += r.get(40, TimeUnit.SECONDS).agents();
      if (count >= n) return count;
      Thread.sleep(500);
    }
    throw new IllegalStateException("only " + count + " of " + n + " agents started after two minutes");
  }

  /** One sharded entity per agent that does nothing: the floor of what one entity per agent would cost. */
  private static ObjectNode baseline(ActorSystem<?> system, int agents) throws Exception {
    var sharding = ClusterSharding.get(system);
    sharding.init(org.apache.pekko.cluster.sharding.typed.javadsl.Entity.of(IDLE, ctx -> Behaviors.ignore()));
    // start the shard region's shards with one entity each, so that the measured delta is the entities
    for (int i = 0; i < 200; i++) sharding.entityRefFor(IDLE, "warm-" + i).tell(IDLE_RUN);
    waitForEntities(system, IDLE, 200);
    long before = usedAfterGc();
    for (int i = 0; i < agents; i++) sharding.entityRefFor(IDLE, "agent-" + i).tell(IDLE_RUN);
    long started = waitForEntities(system, IDLE, agents + 200) - 200;
    long after = usedAfterGc();
    return JSON.createObjectNode().put("bench", "memory-baseline").put("agents", agents).put("entities_started", started)
        .put("heap_before_mb", before >> 20).put("heap_after_mb", after >> 20)
        .put("bytes_per_idle_agent", Math.round((double) (after - before) / agents));
  }

  static final EntityTypeKey<Agent.Command> IDLE = EntityTypeKey.create(Agent.Command.class, "idle-baseline");

  private static long waitForEntities(ActorSystem<?> system, EntityTypeKey<?> key, long n) throws Exception {
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
