package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Agents as child actors of sharded cohorts: agent n lives in cohort n mod k2.agent.cohorts and is started once, and
 * when sharding stops a cohort (here: passivated after a second without a message through its shard region, while its
 * agent runs) the agent hands its run back to the run's tracker, and the next assignment starts it again.
 */
class AgentCohortTest {
  @Test void agentsLiveInTheirCohortAndAreStartedOnce(@TempDir Path dir) throws Exception {
    var system = start(dir, Map.of("k2.agent.cohorts", 10));
    try {
      var tracker = TestProbe.<RunTracker.Command>create(system);
      var run = new Agent.RunEpisodes("cohort-" + System.nanoTime(), 3, 1, Agent.PersistMode.NONE, tracker.getRef());
      for (int agent : new int[] {3, 13, 3, 4}) AgentCohort.tell(system, agent, run);
      // agent 3 confirms twice (it answers a repeat, and ignores it), 13 and 4 once
      var confirmed = new java.util.ArrayList<Integer>();
      tracker.fishForMessage(Duration.ofSeconds(30), m -> {
        if (m instanceof RunTracker.AgentAt a) confirmed.add(a.agent());
        return confirmed.size() == 4 ? FishingOutcomes.complete() : FishingOutcomes.continueAndIgnore();
      });
      assertEquals(java.util.List.of(3, 3, 4, 13), confirmed.stream().sorted().toList());
      assertEquals(2, agentsIn(system, 3), "cohort 3 runs agents 3 and 13");
      assertEquals(1, agentsIn(system, 4), "cohort 4 runs agent 4");
      assertEquals(0, agentsIn(system, 5), "cohort 5 was started by the count alone");
    } finally {
      stop(system);
    }
  }

  @Test void aStoppedCohortsAgentsHandTheirRunsBack(@TempDir Path dir) throws Exception {
    var system = start(dir, Map.of("pekko.cluster.sharding.passivation.default-idle-strategy.idle-entity.timeout", "1s"));
    try {
      var tracker = TestProbe.<RunTracker.Command>create(system);
      String runId = "moved-" + System.nanoTime();
      // far more episodes than one agent runs before the cohort is passivated (a second after this message)
      var run = new Agent.RunEpisodes(runId, 5, 1_000_000, Agent.PersistMode.NONE, tracker.getRef());
      AgentCohort.tell(system, 7, run);
      var moved = tracker.fishForMessage(Duration.ofSeconds(30), m ->
          m instanceof RunTracker.AgentMoved ? FishingOutcomes.complete() : FishingOutcomes.continueAndIgnore());
      var last = (RunTracker.AgentMoved) moved.getLast();
      assertEquals(runId, last.runId());
      assertEquals(7, last.agent());
      // as the tracker does on AgentMoved: the run again, which starts the agent again in a new incarnation of its cohort
      AgentCohort.tell(system, 7, new Agent.RunEpisodes(runId, 5, 1_000_000, Agent.PersistMode.NONE, tracker.getRef(),
          Agent.EpisodeSpec.SYNTHESIS, null, true));
      var again = tracker.fishForMessage(Duration.ofSeconds(30), m ->
          m instanceof RunTracker.AgentAt ? FishingOutcomes.complete() : FishingOutcomes.continueAndIgnore());
      assertEquals(7, ((RunTracker.AgentAt) again.getLast()).agent());
    } finally {
      stop(system);
    }
  }

  private static ActorSystem<Void> start(Path dir, Map<String, Object> extra) throws Exception {
    var config = TestNodes.h2(dir, extra);
    JournalSchema.ensure(config);
    var system = K2Node.start("k2", config);
    Cluster.get(system).manager().tell(Join.create(Cluster.get(system).selfMember().address()));
    K2Node.awaitMembersUp(system, 1, Duration.ofSeconds(30));
    return system;
  }

  private static void stop(ActorSystem<Void> system) throws Exception {
    system.terminate();
    system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
  }

  private static int agentsIn(ActorSystem<?> system, int cohort) throws Exception {
    int cohorts = NodeServices.get(system).settings().cohorts();
    var ref = ClusterSharding.get(system).entityRefFor(AgentCohort.KEY, AgentCohort.entityId(cohort, cohorts));
    return org.apache.pekko.actor.typed.javadsl.AskPattern.<AgentCohort.Command, AgentCohort.AgentCount>ask(ref, AgentCohort.CountAgents::new,
        Duration.ofSeconds(10), system.scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS).agents();
  }
}
