package dev.k2pekko.critic;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The critic's backward pass against central finite differences of its loss, parameter by parameter. */
class CriticModelTest {
  static final int BUCKETS = 13, HIDDEN = 3;

  @Test void theGradientMatchesFiniteDifferences() {
    var rnd = new SplittableRandom(5);
    var base = CriticModel.init(BUCKETS, HIDDEN, 3);
    // non-zero biases, so that their gradients are exercised away from the symmetric point
    double[] b = {0.3, -0.2, 0.1};
    var m = new CriticModel(BUCKETS, HIDDEN, base.embed(), b, base.out(), -0.4);
    var xs = new ArrayList<int[]>();
    boolean[] ys = new boolean[6];
    for (int i = 0; i < ys.length; i++) {
      int n = 1 + rnd.nextInt(5);
      var f = new java.util.TreeSet<Integer>();
      while (f.size() < n) f.add(rnd.nextInt(BUCKETS));
      xs.add(f.stream().mapToInt(Integer::intValue).toArray());
      ys[i] = rnd.nextBoolean();
    }
    xs.add(new int[0]); // an example without features: only the biases speak
    ys = java.util.Arrays.copyOf(ys, 7);
    ys[6] = true;
    var g = m.lossAndGradient(xs, ys);
    double eps = 1e-6;
    int checked = 0;
    for (int i = 0; i < m.embed().length; i++) checked += check(g.embed()[i], m, xs, ys, eps, 0, i);
    for (int j = 0; j < HIDDEN; j++) {
      checked += check(g.bias()[j], m, xs, ys, eps, 1, j);
      checked += check(g.out()[j], m, xs, ys, eps, 2, j);
    }
    checked += check(g.outBias(), m, xs, ys, eps, 3, 0);
    assertEquals(BUCKETS * HIDDEN + 2 * HIDDEN + 1, checked);
    assertTrue(g.loss() > 0 && Double.isFinite(g.loss()));
  }

  /** Compares an analytic derivative with (L(p + eps) - L(p - eps)) / 2 eps for parameter {@code i} of group {@code which}. */
  private static int check(double analytic, CriticModel m, List<int[]> xs, boolean[] ys, double eps, int which, int i) {
    double numeric = (loss(nudged(m, which, i, eps), xs, ys) - loss(nudged(m, which, i, -eps), xs, ys)) / (2 * eps);
    assertEquals(numeric, analytic, 1e-7 + 1e-5 * Math.abs(numeric), "parameter group " + which + " index " + i);
    return 1;
  }

  private static double loss(CriticModel m, List<int[]> xs, boolean[] ys) {
    return m.lossAndGradient(xs, ys).loss();
  }

  private static CriticModel nudged(CriticModel m, int which, int i, double d) {
    double[] e = m.embed().clone(), b = m.bias().clone(), w = m.out().clone();
    double c = m.outBias();
    switch (which) {
      case 0 -> e[i] += d;
      case 1 -> b[i] += d;
      case 2 -> w[i] += d;
      default -> c += d;
    }
    return new CriticModel(m.buckets(), m.hidden(), e, b, w, c);
  }

  @Test void theScoreIsTheSigmoidOfTheLogitAndStaysFinite() {
    var m = CriticModel.init(BUCKETS, HIDDEN, 1);
    int[] x = {1, 4, 7};
    assertEquals(1 / (1 + Math.exp(-m.logit(x))), m.score(x), 1e-15);
    var big = new CriticModel(BUCKETS, HIDDEN, m.embed(), m.bias(), m.out(), 800);
    assertEquals(1.0, big.score(x));
    var g = big.lossAndGradient(List.of(x), new boolean[] {false});
    assertTrue(Double.isFinite(g.loss()) && g.loss() > 700, "the loss of a confident mistake is large and finite: " + g.loss());
  }

  /** Buckets 0-5 in both verdicts: what the two tests below train on. */
  private static List<CriticTrainer.Example> smallData() {
    var rnd = new SplittableRandom(8);
    var data = new ArrayList<CriticTrainer.Example>();
    for (int i = 0; i < 40; i++) data.add(new CriticTrainer.Example(new int[] {rnd.nextInt(6), rnd.nextInt(6)}, i % 3 == 0));
    return data;
  }

  @Test void aBucketNoExampleHeldCountsAsZero() {
    var trained = CriticTrainer.train(CriticModel.init(BUCKETS, HIDDEN, 2), smallData(), new CriticTrainer.Settings(3, 8, 0.05, 0.01, 2)).model();
    for (int f = 0; f < BUCKETS; f++) assertEquals(f < 6, trained.isTrained(f), "bucket " + f);
    int[] x = {1, 4, 9, 11}; // 9 and 11: never in the data
    double[] e = trained.embed().clone();
    for (int j = 0; j < HIDDEN; j++) {
      e[9 * HIDDEN + j] = 0;
      e[11 * HIDDEN + j] = 0;
    }
    var zeroed = new CriticModel(BUCKETS, HIDDEN, e, trained.bias(), trained.out(), trained.outBias());
    assertEquals(zeroed.logit(x), trained.logit(x), "the untrained rows count as zero; n still counts them");
    assertTrue(Math.abs(trained.unmasked().logit(x) - trained.logit(x)) > 1e-6, "without the mask their random rows push the score");
    assertEquals(trained.unmasked().logit(new int[] {1, 4}), trained.logit(new int[] {1, 4}), "trained buckets alone: the same score");
  }

  @Test void theMaskLeavesTrainingAsItWas() {
    var s = new CriticTrainer.Settings(3, 8, 0.05, 0.01, 2);
    var masked = CriticTrainer.train(CriticModel.init(BUCKETS, HIDDEN, 2), smallData(), s).model();
    var plain = CriticTrainer.train(CriticModel.init(BUCKETS, HIDDEN, 2).unmasked(), smallData(), s).model();
    assertTrue(java.util.Arrays.equals(plain.embed(), masked.embed()) && java.util.Arrays.equals(plain.bias(), masked.bias())
        && java.util.Arrays.equals(plain.out(), masked.out()) && plain.outBias() == masked.outBias(), "the same steps, bit for bit");
  }
}
