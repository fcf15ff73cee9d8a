package dev.k2pekko.ps.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A group's waiting gradients without the actor: what a step takes, what it leaves, what the horizon forgets. */
class PendingGradientsTest {
  private static HashMap<String, float[]> shard(float x) {
    var m = new HashMap<String, float[]>();
    m.put("w", new float[] {x});
    return m;
  }

  @Test void aStepTakesItsShardsAndLeavesTheOthers() {
    var p = new PendingGradients();
    var a = shard(1);
    var b = shard(2);
    p.add(10, "a", a);
    p.add(10, "b", b);
    p.add(11, "a", shard(3));
    assertSame(a, p.get("a", 10));
    assertNull(p.get("c", 10), "not arrived");
    assertNull(p.get("a", 9), "not at that version");

    p.stepped(11, List.of("a"), List.of(10L));
    assertNull(p.get("a", 10), "taken by the step");
    assertSame(b, p.get("b", 10), "not in the step: still waiting");
    assertEquals(3f, p.get("a", 11).get("w")[0]);
  }

  @Test void theHorizonForgetsOldGradientsAndRefusals() {
    var p = new PendingGradients();
    p.add(1, "a", shard(1));
    p.add(2, "a", shard(2));
    p.reject(1, "b");
    long step = 1 + PendingGradients.HORIZON;
    p.stepped(step, List.of(), List.of());
    assertNull(p.get("a", 1), "as old as the horizon: no bound in use admits it");
    assertFalse(p.rejected("b", 1), "a refusal as old as the horizon is forgotten");
    assertEquals(List.of(2L), p.versions());
    p.stepped(step + 1, List.of(), List.of());
    assertEquals(List.of(), p.versions());
  }

  @Test void refusalsAreKeptPerLearnerAndVersion() {
    var p = new PendingGradients();
    p.reject(5, "a");
    assertTrue(p.rejected("a", 5));
    assertFalse(p.rejected("a", 6));
    assertFalse(p.rejected("b", 5));
  }

  @Test void newWeightsDropTheGradientsComputedBeforeThem() {
    var p = new PendingGradients();
    p.add(3, "a", shard(1));
    p.add(5, "a", shard(2));
    p.dropBefore(5);
    assertEquals(List.of(5L), p.versions());
  }
}
