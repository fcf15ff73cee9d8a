package dev.k2pekko.critic;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** ROC AUC by ranks against the definition: over all (positive, negative) pairs, 1 when the positive scores higher, 1/2 on a tie. */
class AucTest {
  static double pairwise(double[] s, boolean[] y) {
    double sum = 0;
    long pairs = 0;
    for (int i = 0; i < s.length; i++) {
      if (!y[i]) continue;
      for (int j = 0; j < s.length; j++) {
        if (y[j]) continue;
        pairs++;
        sum += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
      }
    }
    return sum / pairs;
  }

  @Test void matchesThePairwiseDefinitionWithManyTies() {
    var rnd = new SplittableRandom(9);
    for (int trial = 0; trial < 200; trial++) {
      int n = 2 + rnd.nextInt(60);
      double[] s = new double[n];
      boolean[] y = new boolean[n];
      int levels = 1 + rnd.nextInt(6); // few distinct scores: ties everywhere
      for (int i = 0; i < n; i++) {
        y[i] = rnd.nextDouble() < 0.3 + 0.4 * (trial % 2);
        s[i] = rnd.nextInt(levels) / (double) levels + (y[i] && rnd.nextBoolean() ? 0.2 : 0);
      }
      y[0] = true;
      y[1] = false;
      assertEquals(pairwise(s, y), Auc.of(s, y), 1e-12, "trial " + trial);
    }
  }

  @Test void knownValues() {
    assertEquals(1.0, Auc.of(new double[] {0.9, 0.8, 0.1}, new boolean[] {true, true, false}));
    assertEquals(0.0, Auc.of(new double[] {0.1, 0.2, 0.9}, new boolean[] {true, true, false}));
    assertEquals(0.5, Auc.of(new double[] {0.5, 0.5, 0.5, 0.5}, new boolean[] {true, false, true, false}));
    // positives 0.8, 0.4; negatives 0.4, 0.2: pairs 1, 1, 0.5, 1 -> 3.5 / 4
    assertEquals(0.875, Auc.of(new double[] {0.8, 0.4, 0.4, 0.2}, new boolean[] {true, true, false, false}));
  }

  @Test void undefinedWithOneClassAndRefusesBadInput() {
    assertTrue(Double.isNaN(Auc.of(new double[] {0.1, 0.2}, new boolean[] {true, true})));
    assertTrue(Double.isNaN(Auc.of(new double[] {}, new boolean[] {})));
    assertThrows(IllegalArgumentException.class, () -> Auc.of(new double[] {0.1}, new boolean[] {true, false}));
    assertThrows(IllegalArgumentException.class, () -> Auc.of(new double[] {Double.NaN, 0.1}, new boolean[] {true, false}));
  }
}
