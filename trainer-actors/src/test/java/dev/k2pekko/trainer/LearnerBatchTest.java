package dev.k2pekko.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.Verdict;
import dev.k2pekko.ps.server.PsProtocol.StageKind;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Where a learner's next batch ends ({@link Learner#cut}): whole groups, one kind, silent groups riding along. */
class LearnerBatchTest {

  /** K rollouts of task {@code g}, in the journal's id form (TrajectoryCollector.groupOf). */
  private static List<Learner.Item> group(String g, int k) {
    var out = new ArrayList<Learner.Item>();
    for (int i = 0; i < k; i++) {
      var t = new Trajectory("run-rl1/" + g + "#" + i, g, "compute", 1, 1, "", "p", List.of(), List.of(), null,
          new Verdict(i == 0, 1, 1, List.of()), "learned", null);
      out.add(new Learner.Item("trajectories-0", 1, i + 1, t, StageKind.RL));
    }
    return out;
  }

  @Test void silentGroupsRideAlongWithoutTakingAPlace() {
    var buffer = new ArrayList<Learner.Item>();
    for (String g : List.of("a", "b", "c", "d", "e", "f")) buffer.addAll(group(g, 4));
    String a = groupOf(buffer.get(0)), b = groupOf(buffer.get(4));
    // all six groups count: the first two make the batch
    var all = Learner.cut(buffer, 4, 2, Set.of());
    assertEquals(new Learner.Cut(StageKind.RL, 8, true), all);
    // a and b silent: the batch runs on to c and d, a and b inside it
    var signal = Learner.cut(buffer, 4, 2, Set.of(a, b));
    assertEquals(new Learner.Cut(StageKind.RL, 16, true), signal);
    // every group silent: nothing is full, the idle flush takes them
    var none = Learner.cut(buffer, 4, 2, Set.of(a, b, groupOf(buffer.get(8)), groupOf(buffer.get(12)), groupOf(buffer.get(16)), groupOf(buffer.get(20))));
    assertEquals(24, none.taken());
    assertFalse(none.full());
  }

  @Test void aBatchHoldsOneKind() {
    var buffer = new ArrayList<Learner.Item>(group("a", 4));
    var sft = group("s", 1).getFirst();
    buffer.add(new Learner.Item(sft.tag(), 2, 1, sft.use(), StageKind.SFT));
    var c = Learner.cut(buffer, 4, 2, Set.of());
    assertEquals(StageKind.RL, c.kind());
    assertEquals(4, c.taken());
    assertTrue(c.full());
  }

  private static String groupOf(Learner.Item it) {
    return dev.k2pekko.agents.TrajectoryCollector.groupOf(it.use().trajectoryId());
  }
}
