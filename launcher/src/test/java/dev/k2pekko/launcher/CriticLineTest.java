package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.pipeline.Pipeline;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The summary's critic line: AUC per training, n/a for a held-out set of one verdict, and why a training is missing. */
class CriticLineTest {
  @Test void namesEachTrainingItsAucAndAnyProblem() {
    var ok = new Pipeline.CriticRound("synthesis", 1, 6000, 4860, "eval-sft", 400, 392, 0.99871, Duration.ofMillis(2100), null);
    var oneVerdict = new Pipeline.CriticRound("rl 1", 2, 1600, 1590, "eval-sft", 400, 400, Double.NaN, Duration.ofMillis(900), null);
    var failed = new Pipeline.CriticRound("rl 2", -1, 0, 0, "eval-sft", 0, 0, Double.NaN, Duration.ZERO, "critic: this node judged no episode of [r-rl2]");
    var onRl = new Pipeline.CriticRound(null, 2, 0, 0, "eval-rl", 400, 396, 0.9634, Duration.ZERO, null);
    var line = PipelineReport.criticLine(new Pipeline.CriticReport(List.of(ok, oneVerdict, failed), onRl));
    var lines = line.lines().toList();
    assertEquals(2, lines.size(), line);
    assertTrue(lines.get(0).contains("(eval-sft: 400 episodes, 8 rejected)"), line);
    assertTrue(lines.get(0).contains("synthesis 0.999; rl 1 n/a (one verdict only); rl 2 -;"), line);
    assertTrue(lines.get(0).contains("last version on eval-rl (400 episodes, 4 rejected) 0.963; 3.0 s of training in all"), line);
    assertEquals("  critic, rl 2: critic: this node judged no episode of [r-rl2]", lines.get(1));
  }
}
