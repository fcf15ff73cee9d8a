package dev.k2pekko.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The statistics of {@code k2 bench sim --firewall both}: the median pair and the bootstrap interval. */
class SimulationBenchTest {
  @Test void medianOfOddAndEvenCounts() {
    assertEquals(2.0, SimulationBench.median(new double[] {3, 1, 2}));
    assertEquals(2.5, SimulationBench.median(new double[] {4, 1, 3, 2}));
  }

  @Test void identicalPairsGiveAPointInterval() {
    double[][] calls = {{1000, 900}, {1000, 900}, {1000, 900}};
    double[][] secs = {{1, 1}, {1, 1}, {1, 1}};
    var ci = SimulationBench.bootstrap(calls, secs, 500, 1);
    assertEquals(0.9, ci[0], 1e-12);
    assertEquals(0.9, ci[1], 1e-12);
  }

  @Test void intervalSpansTheSpreadOfThePairsAndHoldsTheSummedRatio() {
    // pair ratios 0.8, 1.0, 1.2, 0.9, 1.1: summed ratio 1.0
    double[][] calls = {{1000, 800}, {1000, 1000}, {1000, 1200}, {1000, 900}, {1000, 1100}};
    double[][] secs = {{1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1}};
    var ci = SimulationBench.bootstrap(calls, secs, 2000, 7);
    assertTrue(ci[0] < 1.0 && ci[1] > 1.0, "interval " + ci[0] + ".." + ci[1]);
    assertTrue(ci[0] >= 0.8 && ci[1] <= 1.2, "interval " + ci[0] + ".." + ci[1]);
    assertTrue(ci[1] - ci[0] < 0.25, "interval " + ci[0] + ".." + ci[1]);
  }
}
