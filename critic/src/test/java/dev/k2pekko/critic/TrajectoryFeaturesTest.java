package dev.k2pekko.critic;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.Step;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.Verdict;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TrajectoryFeaturesTest {
  static final String PROMPT = "Calculate 75 + 73, then subtract 80 from it, then write it into the notes. Answer with the final value.";

  static Trajectory of(List<Step> steps, String answer) {
    return new Trajectory("run-x-synth/agent-1/0", "t1", "core", 3, 1, "sys", PROMPT, List.of("calc.add", "calc.sub", "notes.write"),
        steps, answer, new Verdict(true, 1, 1, List.of()), "teacher");
  }

  static Step ok(String tool, Map<String, Object> args, String result) {
    return new Step("c", tool, new LinkedHashMap<>(args), result, null, false);
  }

  @Test void valuesBecomeWhereTheyCameFrom() {
    var good = of(List.of(ok("calc.add", Map.of("a", 75L, "b", 73L), "148"), ok("calc.sub", Map.of("a", 148L, "b", 80L), "68"),
        ok("notes.write", Map.of("text", "68"), "ok")), "68");
    assertEquals(List.of("<bos>", "items:3", "tool:calc.add", "a=I", "b=I", "ok", "tool:calc.sub", "a=R", "b=I", "ok",
        "tool:notes.write", "text=R", "ok", "left:0", "done:all", "answer:P", "<eos>"), TrajectoryFeatures.tokens(good));
    // a mis-copied value is NEW; a failed call followed by another tool is abandoned; the answer came too early
    var bad = of(List.of(ok("calc.add", Map.of("a", 75L, "b", 73L), "148"), ok("calc.sub", Map.of("a", 149L, "b", 80L), "69"),
        new Step("c", "notes.write", Map.of("text", "69"), "flaky", "TRANSIENT_FAILURE", false), ok("calc.max", Map.of("a", 1L, "b", 2L), "2")), "69");
    var tokens = TrajectoryFeatures.tokens(bad);
    assertTrue(tokens.containsAll(List.of("a=NEW", "error:TRANSIENT_FAILURE", "abandon", "left:0")), tokens.toString());
    assertEquals("answer:P", tokens.get(tokens.size() - 2));
  }

  @Test void valuesCompareAsTheJudgeComparesThem() {
    assertTrue(TrajectoryFeatures.same("12", "12.0"));
    assertTrue(TrajectoryFeatures.same(" -3", "-3"));
    assertTrue(TrajectoryFeatures.same("standup 1", "standup 1"));
    assertTrue(!TrajectoryFeatures.same("2026-03-25", "2026"));
    assertTrue(!TrajectoryFeatures.same("12.", "12"));
    assertTrue(!TrajectoryFeatures.same("1e3", "1000"));
  }

  @Test void featureIdsAreSortedDistinctAndInRange() {
    var t = of(List.of(ok("calc.add", Map.of("a", 75L, "b", 73L), "148")), "148");
    int[] f = TrajectoryFeatures.of(t, 64);
    for (int i = 0; i < f.length; i++) {
      assertTrue(f[i] >= 0 && f[i] < 64);
      if (i > 0) assertTrue(f[i] > f[i - 1]);
    }
    assertArrayEquals(f, TrajectoryFeatures.of(t, 64), "the same trajectory gives the same features");
  }
}
