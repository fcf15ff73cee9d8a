package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import org.junit.jupiter.api.Test;

/** The synthesis summary's breakdown reads episodes and accepted per category and difficulty, and no other counter of theirs. */
class ReportBreakdownTest {
  @Test void aCategorysPersistedCountIsNotTakenForItsEpisodes() {
    var counters = new java.util.LinkedHashMap<String, Long>(); // persisted read after episodes: it would overwrite them
    counters.put("category/open/episodes", 10L);
    counters.put("category/open/accepted", 4L);
    counters.put("category/open/persisted", 7L);
    counters.put("difficulty/3/episodes", 5L);
    counters.put("difficulty/3/accepted", 2L);
    var b = Report.Breakdown.of(counters);
    assertArrayEquals(new long[] {10, 4}, b.category().get("open"));
    assertArrayEquals(new long[] {5, 2}, b.difficulty().get(3));
  }
}
