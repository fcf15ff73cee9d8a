package dev.k2pekko.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class ParetoFrontTest {
  private static ParetoFront.Outcome o(String l, double success, double calls, double violations) {
    return new ParetoFront.Outcome(l, success, 0.5, calls, violations);
  }

  @Test void anOutcomeIsOnTheFrontUnlessAnotherIsNoWorseOnAllThreeAndBetterOnOne() {
    var xs = List.of(o("a", 0.80, 5.0, 0.01), o("b", 0.85, 5.5, 0.01), o("c", 0.79, 5.2, 0.02), o("d", 0.70, 4.0, 0.00), o("e", 0.80, 5.0, 0.01));
    // c: a is better on every axis; a and e are equal, neither dominates the other
    assertArrayEquals(new boolean[] {true, true, false, true, true}, ParetoFront.front(xs));
  }

  @Test void theCsvMarksTheFrontAndTheSvgHasAPointPerWeightingOnEachPanel() {
    var sft = o("sft", 0.75, 6, 0.02);
    var xs = List.of(o("v=1", 0.80, 5.0, 0.01), o("v=1 cost=0.05", 0.78, 5.4, 0.02));
    var csv = ParetoFront.csv(sft, xs).lines().toList();
    assertEquals("weighting,success,open_success,calls_per_episode,violations_per_episode,on_front", csv.get(0));
    assertEquals("\"sft\",0.7500,0.5000,6.0000,0.0200,", csv.get(1));
    assertTrue(csv.get(2).endsWith(",yes"));
    assertTrue(csv.get(3).endsWith(",no"));
    var svg = ParetoFront.svg("front", sft, xs);
    assertTrue(svg.startsWith("<svg"));
    assertEquals(4, svg.split("<circle", -1).length - 1, "two weightings on two panels");
    assertTrue(svg.contains("2: v=1 cost=0.05"));
  }
}
