package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.TrajectoriesRecorded;
import dev.k2pekko.protocol.TrajectoryRecorded;
import dev.k2pekko.protocol.Verdict;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Replay reads batch events and the one-trajectory events of journals written before batches. */
class TrajectoryReplayTest {
  static Trajectory t(String id) {
    return new Trajectory(id, "t", "core", 1, 1, "s", "p", List.of(), List.of(), "1", new Verdict(true, 1, 1, List.of()), "teacher");
  }

  @Test void bothEventLayoutsYieldTheirTrajectories() {
    var a = t("r/a/0");
    var b = t("r/b/0");
    assertEquals(List.of(a, b), TrajectoryReplay.trajectories(new TrajectoriesRecorded(List.of(a, b), "collector|0", 1)));
    assertEquals(List.of(a), TrajectoryReplay.trajectories(new TrajectoryRecorded(a, "collector|0", 1)));
    assertEquals(List.of(), TrajectoryReplay.trajectories("something else"));
  }
}
