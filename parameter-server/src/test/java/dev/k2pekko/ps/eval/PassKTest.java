package dev.k2pekko.ps.eval;

import static org.junit.jupiter.api.Assertions.*;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PassKTest {
  @Test
  void fourTrialsTwoSuccesses() {
    var p = PassK.of(Map.of("t", new int[] {4, 2}), 4);
    // C(2,1)/C(4,1) = 2/4, C(2,2)/C(4,2) = 1/6, then no way to pick 3 or 4 successes out of 2
    assertEquals(0.5, p.success(), 1e-15);
    assertEquals(0.5, p.at(1), 1e-15);
    assertEquals(1.0 / 6, p.at(2), 1e-15);
    assertEquals(0.0, p.at(3));
    assertEquals(0.0, p.at(4));
    assertEquals(1, p.tasks());
  }

  @Test
  void averagedOverTasksEachWeighingTheSame() {
    var m = new LinkedHashMap<String, int[]>();
    m.put("all", new int[] {4, 4});
    m.put("half", new int[] {4, 2});
    m.put("none", new int[] {4, 0});
    m.put("many", new int[] {8, 6});
    var p = PassK.of(m, 3);
    // many: pass^1 = 6/8, pass^2 = C(6,2)/C(8,2) = 15/28, pass^3 = C(6,3)/C(8,3) = 20/56
    assertEquals((1 + 0.5 + 0 + 0.75) / 4, p.success(), 1e-15);
    assertEquals(p.success(), p.at(1), 1e-15);
    assertEquals((1 + 1.0 / 6 + 0 + 15.0 / 28) / 4, p.at(2), 1e-15);
    assertEquals((1 + 0 + 0 + 20.0 / 56) / 4, p.at(3), 1e-15);
  }

  @Test
  void outcomesAreGroupedByTask() {
    var outcomes = new ArrayList<PassK.Outcome>();
    boolean[] a = {true, false, true, false}, b = {true, true, true, false};
    for (int i = 0; i < 4; i++) {
      outcomes.add(new PassK.Outcome("a", a[i]));
      outcomes.add(new PassK.Outcome("b", b[i]));
    }
    var p = PassK.ofOutcomes(outcomes, 4);
    assertEquals(PassK.of(Map.of("a", new int[] {4, 2}, "b", new int[] {4, 3}), 4), p);
    assertEquals((1.0 / 6 + 3.0 / 6) / 2, p.at(2), 1e-15); // b: C(3,2)/C(4,2) = 3/6
    assertEquals((0 + 1.0 / 4) / 2, p.at(3), 1e-15); // b: C(3,3)/C(4,3) = 1/4
  }

  @Test
  void largeNAgainstExactRationals() {
    int[][] cases = {{1000, 500, 4}, {100_000, 99_999, 8}, {1_000_000, 3, 3}, {2_000_000_000, 1_000_000_000, 16}};
    for (int[] t : cases) {
      int n = t[0], c = t[1], k = t[2];
      double got = PassK.of(Map.of("t", new int[] {n, c}), k).at(k);
      BigInteger num = BigInteger.ONE, den = BigInteger.ONE; // C(c,k)/C(n,k) = c!(n-k)! / ((c-k)! n!) = prod (c-i)/(n-i)
      for (int i = 0; i < k; i++) {
        num = num.multiply(BigInteger.valueOf(c - i));
        den = den.multiply(BigInteger.valueOf(n - i));
      }
      double exact = new BigDecimal(num).divide(new BigDecimal(den), MathContext.DECIMAL128).doubleValue();
      assertTrue(exact > 0);
      assertEquals(exact, got, Math.ulp(exact) * 4 * k, n + "," + c + "," + k);
    }
  }

  @Test
  void badInputIsNamed() {
    var e = assertThrows(IllegalArgumentException.class, () -> PassK.of(Map.of("task-7", new int[] {3, 1}), 4));
    assertTrue(e.getMessage().contains("task task-7 has n = 3 trials, fewer than k = 4"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> PassK.of(Map.of("x", new int[] {3, 5}), 1));
    assertTrue(e.getMessage().contains("c = 5"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> PassK.of(Map.of(), 1));
    assertThrows(IllegalArgumentException.class, () -> PassK.of(Map.of("x", new int[] {3, 1}), 0));
    assertThrows(IllegalArgumentException.class, () -> PassK.ofOutcomes(List.of(new PassK.Outcome("x", true)), 2));
    assertThrows(IllegalArgumentException.class, () -> PassK.of(Map.of("x", new int[] {3, 1}), 2).at(3));
  }
}
