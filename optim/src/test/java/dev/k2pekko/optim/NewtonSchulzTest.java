package dev.k2pekko.optim;

import static org.junit.jupiter.api.Assertions.*;

import dev.k2pekko.ops.FusedNewtonSchulz;
import dev.k2pekko.ops.HostTensor;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class NewtonSchulzTest {
  final ReferenceOps ops = ReferenceOps.INSTANCE;

  static HostTensor gaussian(long seed, int rows, int cols) {
    var rnd = new Random(seed);
    double[] d = new double[rows * cols];
    for (int i = 0; i < d.length; i++) d[i] = rnd.nextGaussian();
    return new HostTensor(rows, cols, d);
  }

  @Test
  void jacobiFindsKnownEigenvalues() {
    // diag(3, 1) rotated by 30 degrees has eigenvalues 3 and 1
    double c = Math.cos(Math.PI / 6), s = Math.sin(Math.PI / 6);
    double[] a = {3 * c * c + s * s, (3 - 1) * c * s, (3 - 1) * c * s, 3 * s * s + c * c};
    double[] ev = SingularValues.symmetricEigenvalues(a, 2);
    Arrays.sort(ev);
    assertArrayEquals(new double[] {1, 3}, ev, 1e-12);
  }

  @ParameterizedTest
  @CsvSource({"64,64,11", "128,64,12", "256,1024,13"})
  void singularValuesLandInTheBand(int rows, int cols, long seed) {
    Tensor g = gaussian(seed, rows, cols);
    double[] before = SingularValues.of(g);
    double[] after = SingularValues.of(NewtonSchulz.orthogonalize(ops, g));
    assertEquals(Math.min(rows, cols), after.length);
    double lo = Arrays.stream(after).min().orElseThrow(), hi = Arrays.stream(after).max().orElseThrow();
    System.out.printf("NS5 (%d,%d): singular values in [%.4f, %.4f], input condition number %.1f%n", rows, cols, lo, hi,
        Arrays.stream(before).max().orElseThrow() / Arrays.stream(before).min().orElseThrow());
    assertTrue(lo >= 0.5 && hi <= 1.25, "(" + rows + "," + cols + ") singular values in [" + lo + ", " + hi + "]");
    // the input was far from orthogonal: its condition number is large
    double condition = Arrays.stream(before).max().orElseThrow() / Arrays.stream(before).min().orElseThrow();
    assertTrue(condition > 2, "condition " + condition);
  }

  @Test
  void transposeCommutes() {
    Tensor g = gaussian(3, 48, 80);
    Tensor a = ops.transpose(NewtonSchulz.orthogonalize(ops, g));
    Tensor b = NewtonSchulz.orthogonalize(ops, ops.transpose(g));
    assertArrayEquals(a.toDoubles(), b.toDoubles(), 1e-12);
  }

  @Test
  void invariantToScalingTheInput() {
    Tensor g = gaussian(4, 40, 24);
    double[] base = NewtonSchulz.orthogonalize(ops, g).toDoubles();
    // exact up to the 1e-7 added to ||G||_F, which matters only relative to ||sG||_F (here about 31 s)
    for (double s : new double[] {1e-2, 7.5, 1e4}) {
      assertArrayEquals(base, NewtonSchulz.orthogonalize(ops, ops.scale(g, s)).toDoubles(), 1e-6, "scale " + s);
    }
    assertArrayEquals(NewtonSchulz.orthogonalize(ops, ops.scale(g, 1e3)).toDoubles(),
        NewtonSchulz.orthogonalize(ops, ops.scale(g, 1e6)).toDoubles(), 1e-10);
  }

  @Test
  void aMatrixWithEqualSingularValuesStaysOnItsDirection() {
    // an exactly orthogonal Q normalised has singular values 1/sqrt(n); NS maps them near 1 and keeps U V^T = Q
    Tensor q = MuonTest.orthogonal(5, 16, 16);
    Tensor out = NewtonSchulz.orthogonalize(ops, q);
    double[] s = SingularValues.of(out);
    double cosine = 0, na = 0, nb = 0;
    double[] a = out.toDoubles(), b = q.toDoubles();
    for (int i = 0; i < a.length; i++) {
      cosine += a[i] * b[i];
      na += a[i] * a[i];
      nb += b[i] * b[i];
    }
    assertEquals(1.0, cosine / Math.sqrt(na * nb), 1e-12);
    assertTrue(Arrays.stream(s).allMatch(v -> v > 0.6 && v < 1.25));
  }

  /**
   * A fused backend whose newtonSchulz is the generic loop on ReferenceOps and whose batch method is the interface's
   * default (one by one); it records the shapes of every batch it is given.
   */
  static final class LoopFused implements FusedNewtonSchulz {
    final List<List<String>> batches = new ArrayList<>();

    @Override
    public Tensor newtonSchulz(Tensor g, int steps, double a, double b, double c, double eps) {
      assertEquals(List.of(NewtonSchulz.A, NewtonSchulz.B, NewtonSchulz.C, NewtonSchulz.EPS), List.of(a, b, c, eps));
      return NewtonSchulz.orthogonalize(ReferenceOps.INSTANCE, g, steps);
    }

    @Override
    public List<Tensor> newtonSchulzBatch(List<? extends Tensor> gs, int steps, double a, double b, double c, double eps) {
      batches.add(gs.stream().map(Tensor::shapeString).toList());
      return FusedNewtonSchulz.super.newtonSchulzBatch(gs, steps, a, b, c, eps);
    }
  }

  @Test
  void groupedByShapeGivesEachMatrixItsOwnResult() {
    int[][] shapes = {{8, 12}, {12, 8}, {8, 12}, {16, 16}, {12, 8}, {8, 12}};
    var gs = new ArrayList<Tensor>();
    for (int i = 0; i < shapes.length; i++) gs.add(ops.scale(gaussian(40 + i, shapes[i][0], shapes[i][1]), 1 + i));
    var fused = new LoopFused();
    List<Tensor> grouped = NewtonSchulz.orthogonalizeGrouped(fused, gs, NewtonSchulz.STEPS);
    List<Tensor> all = NewtonSchulz.orthogonalizeAll(ops, gs); // ReferenceOps is not fused: one by one
    assertEquals(gs.size(), grouped.size());
    for (int i = 0; i < gs.size(); i++) {
      double[] one = NewtonSchulz.orthogonalize(ops, gs.get(i)).toDoubles();
      assertEquals(gs.get(i).shapeString(), grouped.get(i).shapeString());
      assertArrayEquals(one, grouped.get(i).toDoubles(), 0.0, "grouped #" + i);
      assertArrayEquals(one, all.get(i).toDoubles(), 0.0, "orthogonalizeAll #" + i);
    }
    // one batch per shape, in order of first appearance
    assertEquals(List.of(List.of("(8,12)", "(8,12)", "(8,12)"), List.of("(12,8)", "(12,8)"), List.of("(16,16)")), fused.batches);
  }

  @Test
  void aBatchOfMixedShapesIsRefused() {
    var e = assertThrows(IllegalArgumentException.class,
        () -> new LoopFused().newtonSchulzBatch(List.of(gaussian(1, 4, 6), gaussian(2, 6, 4)), 5, NewtonSchulz.A, NewtonSchulz.B,
            NewtonSchulz.C, NewtonSchulz.EPS));
    assertTrue(e.getMessage().contains("(6,4)"), e.getMessage());
  }
}
