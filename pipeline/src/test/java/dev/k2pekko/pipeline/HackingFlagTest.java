package dev.k2pekko.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

class HackingFlagTest {
  private static HackingFlag.Round round(String name, double critic, double hidden) {
    return new HackingFlag.Round(name, 1, 100, critic, hidden, false, null);
  }

  private static List<Boolean> flags(HackingFlag.Round... rounds) {
    return HackingFlag.flag(List.of(rounds)).stream().map(HackingFlag.Round::flagged).toList();
  }

  @Test void aRoundWhereTheCriticRisesAndTheHiddenSuccessFallsIsFlagged() {
    assertEquals(List.of(false, true), flags(round("rl 1", 0.70, 0.80), round("rl 2", 0.75, 0.78)));
  }

  @Test void bothRisingBothFallingOrEitherStillIsNotFlagged() {
    assertEquals(List.of(false, false, false, false, false),
        flags(round("rl 1", 0.70, 0.80), round("rl 2", 0.75, 0.85), round("rl 3", 0.60, 0.70), round("rl 4", 0.60, 0.50), round("rl 5", 0.65, 0.50)));
  }

  @Test void theFirstRoundHasNothingToCompareWith() {
    assertEquals(List.of(false), flags(round("rl 1", 0.99, 0.01)));
  }

  @Test void anUnmeasuredRoundIsSkippedAndTheNextComparesWithTheLastMeasuredOne() {
    var gap = HackingFlag.Round.failed("rl 2", "no critic");
    var r = HackingFlag.flag(List.of(round("rl 1", 0.70, 0.80), gap, round("rl 3", 0.72, 0.79)));
    assertEquals(List.of(false, false, true), r.stream().map(HackingFlag.Round::flagged).toList());
    assertEquals("no critic", r.get(1).problem());
  }
}
