package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import dev.k2pekko.protocol.JournalEvent;
import dev.k2pekko.protocol.TrajectoriesRecorded;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.Verdict;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.pattern.StatusReply;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The collector's redelivery de-duplication, on the in-memory journal of EventSourcedBehaviorTestKit: a batch delivered
 * again (a judge that did not get the reply) persists nothing, also after the collector recovered from its events.
 * Every command, event and reply goes through the configured serializers (Kryo for the wire, Jackson CBOR for events).
 */
class TrajectoryCollectorTest {
  static final ActorTestKit kit = ActorTestKit.create(EventSourcedBehaviorTestKit.config()
      .withFallback(ConfigFactory.parseResources("serialization.conf")).withFallback(ConfigFactory.load()).resolve());

  final EventSourcedBehaviorTestKit<TrajectoryCollector.Command, JournalEvent, TrajectoryCollector.State> collector =
      EventSourcedBehaviorTestKit.create(kit.system(), new TrajectoryCollector("0", 8, 3),
          new EventSourcedBehaviorTestKit.SerializationSettings(true, false, true, true, false));

  @AfterAll static void stop() { kit.shutdownTestKit(); }

  @BeforeEach void clear() { collector.clear(); }

  static Trajectory trajectory(String id) {
    return new Trajectory(id, "t", "core", 1, 1, "s", "p", List.of(), List.of(), "1", new Verdict(true, 1, 1, List.of()), "teacher");
  }

  private EventSourcedBehaviorTestKit.CommandResultWithReply<TrajectoryCollector.Command, JournalEvent, TrajectoryCollector.State,
      StatusReply<TrajectoryCollector.BatchRecorded>> record(long batchId, String... ids) {
    var batch = new ArrayList<Trajectory>();
    for (String id : ids) batch.add(trajectory(id));
    return collector.runCommand(reply -> new TrajectoryCollector.RecordBatch(batchId, batch, reply));
  }

  private static List<String> persistedIds(List<JournalEvent> events) {
    var out = new ArrayList<String>();
    for (var e : events) for (var t : ((TrajectoriesRecorded) e).trajectories()) out.add(t.trajectoryId());
    return out;
  }

  @Test void aBatchDeliveredAgainPersistsNothing() {
    var first = record(1, "run/a1#0", "run/a1#1");
    assertEquals(List.of("run/a1#0", "run/a1#1"), persistedIds(first.events()), "one task group, one tag: one event");
    assertEquals(new TrajectoryCollector.BatchRecorded(1, 2, 0), first.reply().getValue());
    var again = record(1, "run/a1#0", "run/a1#1");
    assertTrue(again.events().isEmpty());
    assertEquals(new TrajectoryCollector.BatchRecorded(1, 0, 2), again.reply().getValue());
    assertEquals(2, again.state().recorded());
  }

  @Test void onlyTheNewTrajectoriesOfAnOverlappingBatchArePersisted() {
    record(1, "run/a1#0");
    var overlap = record(2, "run/a1#0", "run/a2#0", "run/a2#0");
    assertEquals(List.of("run/a2#0"), persistedIds(overlap.events()), "a duplicate within the batch counts once");
    assertEquals(new TrajectoryCollector.BatchRecorded(2, 1, 2), overlap.reply().getValue());
  }

  @Test void theCollectorRemembersAfterRecoveringFromItsEvents() {
    record(1, "run/a1#0", "run/a1#1");
    collector.restart();
    var again = record(1, "run/a1#0", "run/a1#1");
    assertTrue(again.events().isEmpty(), "recovered state still knows the ids");
    assertEquals(2, again.state().recorded());
  }

  /**
   * A journal write that fails restarts the collector (with backoff), and the batch sent again is written: it is not
   * taken for a duplicate. Pekko's Java DSL restarts from the one empty-state object it asked for at the start, and
   * the failed write's event had been applied to the state before the journal answered; while that object was
   * mutated, the retry was acknowledged as already recorded though the journal never held it.
   */
  @Test void aBatchWhoseWriteFailedIsWrittenWhenSentAgain() {
    var journal = org.apache.pekko.persistence.testkit.javadsl.PersistenceTestKit.create(kit.system());
    journal.clearAll();
    var ref = kit.spawn(new TrajectoryCollector("failing", 8, 100));
    var probe = kit.<StatusReply<TrajectoryCollector.BatchRecorded>>createTestProbe();
    var batch = List.of(trajectory("run/f1#0"), trajectory("run/f1#1"));
    journal.failNextPersisted();
    ref.tell(new TrajectoryCollector.RecordBatch(1, batch, probe.ref()));
    probe.expectNoMessage(java.time.Duration.ofMillis(500)); // the write failed: no confirmation; the collector restarts
    ref.tell(new TrajectoryCollector.RecordBatch(1, batch, probe.ref()));
    assertEquals(new TrajectoryCollector.BatchRecorded(1, 2, 0), probe.receiveMessage(java.time.Duration.ofSeconds(10)).getValue(),
        "both trajectories written, none skipped as a duplicate");
    var persisted = journal.persistedInStorage("collector|failing");
    assertEquals(1, persisted.size(), "the journal holds the batch once: " + persisted);
    kit.stop(ref);
  }

  @Test void theWindowKeepsOnlyTheLatestIds() {
    record(1, "run/a1#0", "run/a1#1", "run/a1#2", "run/a1#3"); // one tag, one event; window 3: run/a1#0 is forgotten
    assertEquals(List.of("run/a1#0"), persistedIds(record(2, "run/a1#0", "run/a1#3").events()));
  }
}
