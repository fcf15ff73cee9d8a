package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.EpisodeOutcome;
import dev.k2pekko.protocol.RunEvent;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.apache.pekko.persistence.jdbc.query.javadsl.JdbcReadJournal;
import org.apache.pekko.persistence.query.PersistenceQuery;
import org.apache.pekko.stream.javadsl.Sink;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tracker's writes to the run's record: a kept episode's outcome, which comes after its journal write, goes to
 * the record before the rejections that came earlier, so that what the run counts as persisted follows the journal.
 */
class RunTrackerTest {
  private static EpisodeOutcome outcome(int agent, int episode, boolean kept) {
    return new EpisodeOutcome(agent, episode, "node", 3, 0, kept, 1, "lookup", List.of(), null, kept, agent * 1000L + episode, List.of());
  }

  /**
   * 9,000 rejections reach a tracker, then 100 kept outcomes (in one message, so that no write starts between them):
   * the record's first write takes every kept one and fills up with rejections. In one queue they were the fifth's.
   */
  @Test void keptOutcomesAreRecordedBeforeRejectionsThatCameEarlier(@TempDir Path dir) throws Exception {
    // no agent role: the tracker's assignments find no agent, and the test plays the judges
    var config = TestNodes.h2(dir, Map.of("pekko.cluster.roles", List.of("monitor")));
    JournalSchema.ensure(config);
    var system = K2Node.start("k2", config);
    try {
      var cluster = Cluster.get(system);
      cluster.manager().tell(Join.create(cluster.selfMember().address()));
      K2Node.awaitMembersUp(system, 1, Duration.ofSeconds(30));
      String runId = "kept-first-" + System.nanoTime();
      var done = new CompletableFuture<RunTracker.Summary>();
      var spec = new RunDriver.RunSpec(runId, 91, 100, 7, Agent.PersistMode.ACCEPTED, Duration.ofSeconds(120));
      var tracker = system.systemActorOf(RunTracker.create(spec, Duration.ofSeconds(1), s -> {}, done), "tracker-" + runId, Props.empty());
      var outcomes = new ArrayList<EpisodeOutcome>();
      for (int agent = 0; agent < 90; agent++) for (int e = 0; e < 100; e++) outcomes.add(outcome(agent, e, false));
      for (int e = 0; e < 100; e++) outcomes.add(outcome(90, e, true));
      tracker.tell(new RunTracker.EpisodesJudged(runId, outcomes));

      var summary = done.get(60, TimeUnit.SECONDS);
      assertTrue(summary.complete(), summary.counters().toString());
      assertEquals(100, summary.get("persisted"));
      assertEquals(9000, summary.get("rejected"));

      var journal = PersistenceQuery.get(Adapter.toClassic(system)).getReadJournalFor(JdbcReadJournal.class, JdbcReadJournal.Identifier());
      var events = journal.currentEventsByPersistenceId("run|" + runId, 0, Long.MAX_VALUE)
          .map(envelope -> envelope.event()).filter(e -> e instanceof RunEvent.EpisodesDone).map(e -> (RunEvent.EpisodesDone) e)
          .runWith(Sink.seq(), system).toCompletableFuture().get(30, TimeUnit.SECONDS);
      var keptPerWrite = events.stream().map(e -> e.outcomes().stream().filter(EpisodeOutcome::kept).count()).toList();
      assertEquals(100L, keptPerWrite.getFirst(), "the first write took every kept outcome: " + keptPerWrite);
      assertEquals(2000, events.getFirst().outcomes().size(), "and filled up with rejections: " + keptPerWrite);
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  @Test void takeGivesKeptOutcomesFirstEachInTheOrderItCame() {
    var q = new RunTracker.ToRecord();
    for (int a = 0; a < 5000; a++) q.add(outcome(a, 0, false));
    for (int a = 5000; a < 5010; a++) q.add(outcome(a, 0, true));
    q.add(outcome(5010, 0, false));

    var first = q.take(2000);
    assertEquals(2000, first.size());
    assertEquals(List.of(5000, 5001, 5002, 5003, 5004, 5005, 5006, 5007, 5008, 5009),
        first.subList(0, 10).stream().map(EpisodeOutcome::agent).toList(), "the kept ones first, in the order they came");
    assertEquals(0, first.get(10).agent(), "then the rejections, oldest first");
    assertTrue(first.subList(10, 2000).stream().noneMatch(EpisodeOutcome::kept));

    var rest = new ArrayList<EpisodeOutcome>();
    while (!q.isEmpty()) rest.addAll(q.take(2000));
    assertEquals(5011 - 2000, rest.size(), "every outcome once");
    assertEquals(5010, rest.getLast().agent());
  }
}
