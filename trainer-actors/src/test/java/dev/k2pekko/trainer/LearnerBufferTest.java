package dev.k2pekko.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.PsProtocol.StageKind;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.Verdict;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Where a learner's next batch ends ({@link LearnerBuffer#cut}): whole groups, one kind, silent groups riding along. */
class LearnerBufferTest {

  /** K rollouts of task {@code g}, in the journal's id form (TrajectoryCollector.groupOf). */
  private static List<LearnerBuffer.Item> group(String g, int k) {
    var out = new ArrayList<LearnerBuffer.Item>();
    for (int i = 0; i < k; i++) {
      var t = new Trajectory("run-rl1/" + g + "#" + i, g, "compute", 1, 1, "", "p", List.of(), List.of(), null,
          new Verdict(i == 0, 1, 1, List.of()), "learned", null);
      out.add(new LearnerBuffer.Item("trajectories-0", 1, i + 1, t, StageKind.RL));
    }
    return out;
  }

  @Test void silentGroupsRideAlongWithoutTakingAPlace() {
    var buffer = new ArrayList<LearnerBuffer.Item>();
    for (String g : List.of("a", "b", "c", "d", "e", "f")) buffer.addAll(group(g, 4));
    String a = groupOf(buffer.get(0)), b = groupOf(buffer.get(4));
    // all six groups count: the first two make the batch
    var all = LearnerBuffer.cut(buffer, 4, 2, Set.of());
    assertEquals(new LearnerBuffer.Cut(StageKind.RL, 8, true), all);
    // a and b silent: the batch runs on to c and d, a and b inside it
    var signal = LearnerBuffer.cut(buffer, 4, 2, Set.of(a, b));
    assertEquals(new LearnerBuffer.Cut(StageKind.RL, 16, true), signal);
    // every group silent: nothing is full, the idle flush takes them
    var none = LearnerBuffer.cut(buffer, 4, 2, Set.of(a, b, groupOf(buffer.get(8)), groupOf(buffer.get(12)), groupOf(buffer.get(16)), groupOf(buffer.get(20))));
    assertEquals(24, none.taken());
    assertFalse(none.full());
  }

  @Test void aBatchHoldsOneKind() {
    var buffer = new ArrayList<LearnerBuffer.Item>(group("a", 4));
    var sft = group("s", 1).getFirst();
    buffer.add(new LearnerBuffer.Item(sft.tag(), 2, 1, sft.use(), StageKind.SFT));
    var c = LearnerBuffer.cut(buffer, 4, 2, Set.of());
    assertEquals(StageKind.RL, c.kind());
    assertEquals(4, c.taken());
    assertTrue(c.full());
  }

  @Test void skippedItemsRideWithTheNextBatchAndABatchPutBackComesFirstAgain() {
    var settings = new Learner.Settings("run", 1, 4, 1, java.time.Duration.ofMillis(400), 0.5, 8, false, "java",
        Learner.RlObjective.FILTERED, Reward.Weights.DEFAULT);
    var buffer = new LearnerBuffer(settings);
    var other = group("x", 1).getFirst();
    buffer.add(new LearnerBuffer.Item(other.tag(), 0, 1, null, null)); // another run's trajectory: nothing trains on it
    assertEquals(null, buffer.take(true)); // alone, it waits to ride along
    group("a", 4).forEach(buffer::add);
    group("b", 4).forEach(buffer::add);
    var first = buffer.take(false);
    assertEquals(StageKind.RL, first.kind());
    assertEquals(5, first.items().size()); // the skipped item, then group a (rl-groups 1)
    assertEquals(null, first.items().getFirst().use());
    buffer.putBack(first);
    var again = buffer.take(false);
    assertEquals(first.items(), again.items()); // the same batch, in the same order
    assertEquals(4, buffer.size());
    assertEquals(4, buffer.usable());
  }

  private static String groupOf(LearnerBuffer.Item it) {
    return dev.k2pekko.agents.TrajectoryCollector.groupOf(it.use().trajectoryId());
  }

  /**
   * The teacher's open episodes are SFT data when they pass the public checks, whatever their hidden rubric said; a
   * verifiable one only when the judge accepted it; a rollout is RL data either way.
   */
  @Test void openTeacherEpisodesAreSftDataByThePublicChecks() {
    var wrongNote = new Verdict(false, 0.6, 1, List.of("end-state: notes:notes is 'x', expected 'y'", "wrong-answer: 'x', expected 'y'"));
    var unretried = new Verdict(false, 0.6, 1, List.of("unrecovered-error: web.search TRANSIENT_FAILURE"));
    assertEquals(StageKind.SFT, LearnerBuffer.kind(teacher(Reward.OPEN, wrongNote)));
    assertEquals(null, LearnerBuffer.kind(teacher(Reward.OPEN, unretried)));
    assertEquals(null, LearnerBuffer.kind(teacher("core", wrongNote)));
    assertEquals(StageKind.SFT, LearnerBuffer.kind(teacher("core", new Verdict(true, 1, 1, List.of()))));
    var rollout = new Trajectory("run-rl1/a#0", "a", Reward.OPEN, 4, 1, "", "p", List.of(), List.of(), null, wrongNote, "learned@v3", null);
    assertEquals(StageKind.RL, LearnerBuffer.kind(rollout));
  }

  private static Trajectory teacher(String category, Verdict v) {
    return new Trajectory("run-synth/agent-1/0", "t", category, 4, 1, "", "p", List.of(), List.of(), null, v, "teacher", null);
  }
}
