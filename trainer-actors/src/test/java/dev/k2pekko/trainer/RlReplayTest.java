package dev.k2pekko.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.PsProtocol.StageKind;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.Verdict;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Which groups a learner replays, how many steps fall due, and that a replayed step consumes nothing. */
class RlReplayTest {
  /** Task {@code g}'s rollouts, accepted as {@code ok} says. */
  static List<LearnerBuffer.Item> group(String g, boolean... ok) {
    var out = new ArrayList<LearnerBuffer.Item>();
    for (int i = 0; i < ok.length; i++) {
      var t = new Trajectory("run-rl1/" + g + "#" + i, g, "compute", 1, 1, "", "p", List.of(), List.of(), null,
          new Verdict(ok[i], 1, 1, List.of()), "learned", null);
      out.add(new LearnerBuffer.Item("trajectories-0", 1, i + 1, t, StageKind.RL));
    }
    return out;
  }

  static LearnerBuffer.Batch batch(List<List<LearnerBuffer.Item>> groups) {
    var items = new ArrayList<LearnerBuffer.Item>();
    groups.forEach(items::addAll);
    return new LearnerBuffer.Batch(items, StageKind.RL);
  }

  static List<String> groupsOf(LearnerBuffer.Batch b) {
    return b.items().stream().map(i -> LearnerBuffer.groupOf(i.use())).distinct().toList();
  }

  @Test void groupsWithASuccessAndAFailureAreReplayedInTurnBeforeTheNextFreshStep() {
    var r = new RlReplay(new RlReplay.Settings(1, 3), 2);
    assertNull(r.next(), "nothing trained yet");
    r.applied(batch(List.of(group("a", true, false), group("b", true, true), group("c", false, false), group("d", false, true))));
    assertEquals(2, r.size(), "only a and d teach the filtered objective something");
    var first = r.next();
    assertTrue(first.replayed());
    assertEquals(List.of("run-rl1/a", "run-rl1/d"), groupsOf(first));
    assertNull(r.next(), "one replayed step per fresh step");
    r.applied(first); // a replayed step applied adds nothing and makes nothing due
    assertNull(r.next());
    r.applied(batch(List.of(group("e", true, false), group("f", false, true))));
    assertEquals(3, r.size(), "bounded: the oldest went out");
    assertEquals(List.of("run-rl1/d", "run-rl1/e"), groupsOf(r.next()), "in turn, oldest first");
  }

  @Test void offByDefaultAndOnlyForTheFilteredObjective() {
    var off = new RlReplay(RlReplay.Settings.OFF, 2);
    off.applied(batch(List.of(group("a", true, false))));
    assertNull(off.next());
    assertEquals(0, off.size());
    var e = assertThrows(IllegalArgumentException.class, () -> new Learner.Settings("run", 1, 4, 1, java.time.Duration.ofMillis(400), 0.5, 8,
        false, "java", Learner.RlObjective.K2, Reward.Weights.DEFAULT, Learner.GroupCount.ALL, Learner.SftOrder.SEALED, new RlReplay.Settings(1, 8), LearnerClip.OFF, true));
    assertTrue(e.getMessage().contains("rl-objective = filtered"), e.getMessage());
  }
}
