package dev.k2pekko.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** Prioritized sampling of RL tasks: half uniform, half by the previous round's failure rate per difficulty. */
class PrioritiesTest {
  @Test void halfUniformHalfByFailureRate() {
    var counters = Map.of(
        "difficulty/1/episodes", 40L, "difficulty/1/accepted", 40L,
        "difficulty/2/episodes", 40L, "difficulty/2/accepted", 40L,
        "difficulty/3/episodes", 40L, "difficulty/3/accepted", 32L,   // fails 20%
        "difficulty/4/episodes", 40L, "difficulty/4/accepted", 40L,
        "difficulty/5/episodes", 40L, "difficulty/5/accepted", 36L);  // fails 10%
    double[] w = RlRounds.priorities(counters, 5);
    assertArrayEquals(new double[] {0.1, 0.1, 0.1 + 0.5 * 2 / 3.0, 0.1, 0.1 + 0.5 / 3.0}, w, 1e-12);
  }

  @Test void uniformWithoutFailuresOrData() {
    assertNull(RlRounds.priorities(Map.of("difficulty/1/episodes", 10L, "difficulty/1/accepted", 10L), 5));
    assertNull(RlRounds.priorities(Map.of(), 5));
  }
}
