package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.EpisodeOutcome;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The tracker's queue to the run's record: a kept outcome, which comes after its journal write, goes to the record
 * before the rejections that came earlier, so that what the run counts as persisted follows the journal.
 */
class RunTrackerTest {
  private static EpisodeOutcome outcome(int agent, boolean kept) {
    return new EpisodeOutcome(agent, 0, "node", 3, 0, kept, 1, "lookup", List.of(), null, kept, agent, List.of());
  }

  @Test void keptOutcomesGoToTheRecordBeforeRejectionsThatCameEarlier() {
    var q = new RunTracker.ToRecord();
    for (int a = 0; a < 5000; a++) q.add(outcome(a, false));
    for (int a = 5000; a < 5010; a++) q.add(outcome(a, true));
    q.add(outcome(5010, false));

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

  @Test void clearEmptiesBoth() {
    var q = new RunTracker.ToRecord();
    q.add(outcome(1, true));
    q.add(outcome(2, false));
    q.clear();
    assertTrue(q.isEmpty());
    assertEquals(List.of(), q.take(10));
  }
}
