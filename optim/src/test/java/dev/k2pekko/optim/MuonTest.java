package dev.k2pekko.optim;

import static org.junit.jupiter.api.Assertions.*;

import dev.k2pekko.ops.FusedMuon;
import dev.k2pekko.ops.HostTensor;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class MuonTest {
  final ReferenceOps ops = ReferenceOps.INSTANCE;

  /** A (rows, cols) matrix with orthonormal rows or columns, by Gram–Schmidt on Gaussian vectors. */
  static HostTensor orthogonal(long seed, int rows, int cols) {
    boolean tall = rows > cols;
    int n = Math.min(rows, cols), len = Math.max(rows, cols);
    var rnd = new Random(seed);
    double[][] v = new double[n][len];
    for (int i = 0; i < n; i++) {
      for (int k = 0; k < len; k++) v[i][k] = rnd.nextGaussian();
      for (int twice = 0; twice < 2; twice++) {
        for (int j = 0; j < i; j++) {
          double d = 0;
          for (int k = 0; k < len; k++) d += v[i][k] * v[j][k];
          for (int k = 0; k < len; k++) v[i][k] -= d * v[j][k];
        }
      }
      double norm = 0;
      for (int k = 0; k < len; k++) norm += v[i][k] * v[i][k];
      for (int k = 0; k < len; k++) v[i][k] /= Math.sqrt(norm);
    }
    double[] d = new double[rows * cols];
    for (int i = 0; i < n; i++) {
      for (int k = 0; k < len; k++) {
        if (tall) d[k * cols + i] = v[i][k];
        else d[i * cols + k] = v[i][k];
      }
    }
    return new HostTensor(rows, cols, d);
  }

  static double rms(Tensor t) {
    return Math.sqrt(ReferenceOps.INSTANCE.sumOfSquares(t) / t.size());
  }

  @ParameterizedTest
  @CsvSource({"32,32", "64,16", "16,96"})
  void fullRankOrthogonalUpdateHasRmsPointTwo(int rows, int cols) {
    Tensor o = orthogonal(rows * 31L + cols, rows, cols);
    assertEquals(0.2, rms(ops.scale(o, Muon.updateScale(rows, cols))), 1e-12);
    // and Muon's own update of a random gradient comes close to it (NS5 is not exact orthogonalization)
    Tensor update = Muon.update(ops, NewtonSchulzTest.gaussian(rows + cols, rows, cols));
    assertEquals(0.2, rms(update), 0.04);
  }

  @Test
  void weightDecayUsesTheUnscaledLearningRate() {
    Tensor w = NewtonSchulzTest.gaussian(1, 12, 20);
    double lr = 0.02, wd = 0.1;
    var cfg = new Muon.Config(0.95, true, wd);
    // zero gradient: the orthogonalized update is 0, only the decay moves W, by exactly lr*wd*W
    var s = Muon.step(ops, w, ops.zeros(12, 20), ops.zeros(12, 20), lr, cfg);
    assertArrayEquals(ops.scale(w, 1 - lr * wd).toDoubles(), s.weight().toDoubles(), 1e-15);
    // non-zero gradient: W' = W - lr*(O + wd*W) with O the scaled NS update of G + mu*M (Nesterov, M = G)
    Tensor g = NewtonSchulzTest.gaussian(2, 12, 20);
    var s2 = Muon.step(ops, w, g, ops.zeros(12, 20), lr, cfg);
    Tensor o = Muon.update(ops, ops.linear(1, g, 0.95, g));
    double[] expect = ops.linear(1, w, -lr, ops.linear(1, o, wd, w)).toDoubles();
    assertArrayEquals(expect, s2.weight().toDoubles(), 1e-14);
  }

  @Test
  void momentumAndNesterov() {
    Tensor g1 = NewtonSchulzTest.gaussian(3, 8, 8), g2 = NewtonSchulzTest.gaussian(4, 8, 8), w = ops.zeros(8, 8);
    var plain = new Muon.Config(0.9, false, 0.0);
    var s1 = Muon.step(ops, w, g1, ops.zeros(8, 8), 1.0, plain);
    var s2 = Muon.step(ops, s1.weight(), g2, s1.momentum(), 1.0, plain);
    Tensor m2 = ops.linear(0.9, g1, 1, g2);
    assertArrayEquals(m2.toDoubles(), s2.momentum().toDoubles(), 1e-15);
    assertArrayEquals(ops.linear(1, s1.weight(), -1, Muon.update(ops, m2)).toDoubles(), s2.weight().toDoubles(), 1e-14);
    var nest = new Muon.Config(0.9, true, 0.0);
    var n2 = Muon.step(ops, s1.weight(), g2, s1.momentum(), 1.0, nest);
    assertArrayEquals(ops.linear(1, s1.weight(), -1, Muon.update(ops, ops.linear(1, g2, 0.9, m2))).toDoubles(),
        n2.weight().toDoubles(), 1e-14);
  }

  @Test
  void adamWFirstStepIsSignLikeWithDecoupledDecay() {
    Tensor w = NewtonSchulzTest.gaussian(5, 4, 6), g = NewtonSchulzTest.gaussian(6, 4, 6);
    double lr = 0.01, wd = 0.1;
    var s = AdamW.step(ops, w, g, ops.zeros(4, 6), ops.zeros(4, 6), 1, lr, new AdamW.Config(0.9, 0.95, 0.0, wd));
    double[] wd0 = w.toDoubles(), gd = g.toDoubles(), out = s.weight().toDoubles();
    for (int i = 0; i < out.length; i++) assertEquals(wd0[i] - lr * (Math.signum(gd[i]) + wd * wd0[i]), out[i], 1e-14);
  }

  @Test
  void stepsOnSeveralMatricesEqualStepOnEach() {
    int[][] shapes = {{6, 10}, {10, 6}, {6, 10}, {8, 8}};
    var ws = new java.util.ArrayList<Tensor>();
    var gs = new java.util.ArrayList<Tensor>();
    var ms = new java.util.ArrayList<Tensor>();
    for (int i = 0; i < shapes.length; i++) {
      ws.add(NewtonSchulzTest.gaussian(70 + i, shapes[i][0], shapes[i][1]));
      gs.add(NewtonSchulzTest.gaussian(80 + i, shapes[i][0], shapes[i][1]));
      ms.add(NewtonSchulzTest.gaussian(90 + i, shapes[i][0], shapes[i][1]));
    }
    for (var cfg : new Muon.Config[] {Muon.Config.defaults(), new Muon.Config(0.9, false, 0.0)}) {
      var all = Muon.steps(ops, ws, gs, ms, 0.02, cfg);
      for (int i = 0; i < shapes.length; i++) {
        var one = Muon.step(ops, ws.get(i), gs.get(i), ms.get(i), 0.02, cfg);
        assertArrayEquals(one.weight().toDoubles(), all.get(i).weight().toDoubles(), 0.0, "weight #" + i);
        assertArrayEquals(one.momentum().toDoubles(), all.get(i).momentum().toDoubles(), 0.0, "momentum #" + i);
      }
    }
    assertThrows(IllegalArgumentException.class, () -> Muon.steps(ops, ws, gs.subList(0, 3), ms, 0.02, Muon.Config.defaults()));
  }

  /**
   * A fused Muon backend whose group step is Muon.step's op-by-op arithmetic on ReferenceOps, computed from the
   * parameters it is handed (so a wrong lr, momentum, Nesterov flag, decay, scale or NS setting changes the result);
   * it records the shapes of every group it is given.
   */
  static final class ComposedFusedMuon implements FusedMuon {
    final List<List<String>> groups = new ArrayList<>();

    @Override
    public GroupStep muonGroupStep(List<? extends Tensor> ws, List<? extends Tensor> gs, List<? extends Tensor> ms, double lr, double mu,
        boolean nesterov, double wd, double scale, int steps, double a, double b, double c, double eps) {
      FusedMuon.checkGroup(ws, gs, ms);
      assertEquals(List.of(NewtonSchulz.A, NewtonSchulz.B, NewtonSchulz.C, NewtonSchulz.EPS), List.of(a, b, c, eps));
      assertEquals(NewtonSchulz.STEPS, steps);
      groups.add(ws.stream().map(Tensor::shapeString).toList());
      var r = ReferenceOps.INSTANCE;
      var w1 = new ArrayList<Tensor>();
      var m1 = new ArrayList<Tensor>();
      for (int i = 0; i < ws.size(); i++) {
        Tensor m = r.linear(mu, ms.get(i), 1.0, gs.get(i));
        Tensor u = nesterov ? r.linear(1.0, gs.get(i), mu, m) : m;
        Tensor o = r.scale(NewtonSchulz.orthogonalize(r, u, steps), scale);
        w1.add(r.linear(1.0 - lr * wd, ws.get(i), -lr, o));
        m1.add(m);
      }
      return new GroupStep(w1, m1);
    }
  }

  @Test
  void fusedStepsRunOneGroupStepPerShapeAndEqualStepOnEach() {
    int[][] shapes = {{6, 10}, {10, 6}, {6, 10}, {8, 8}, {10, 6}, {6, 10}};
    var ws = new ArrayList<Tensor>();
    var gs = new ArrayList<Tensor>();
    var ms = new ArrayList<Tensor>();
    for (int i = 0; i < shapes.length; i++) {
      ws.add(NewtonSchulzTest.gaussian(170 + i, shapes[i][0], shapes[i][1]));
      gs.add(ops.scale(NewtonSchulzTest.gaussian(180 + i, shapes[i][0], shapes[i][1]), 1 + i));
      ms.add(NewtonSchulzTest.gaussian(190 + i, shapes[i][0], shapes[i][1]));
    }
    for (var cfg : new Muon.Config[] {Muon.Config.defaults(), new Muon.Config(0.9, false, 0.0)}) {
      var fused = new ComposedFusedMuon();
      var all = Muon.fusedSteps(fused, ws, gs, ms, 0.02, cfg);
      assertEquals(shapes.length, all.size());
      for (int i = 0; i < shapes.length; i++) {
        var one = Muon.step(ops, ws.get(i), gs.get(i), ms.get(i), 0.02, cfg);
        assertArrayEquals(one.weight().toDoubles(), all.get(i).weight().toDoubles(), 0.0, "weight #" + i);
        assertArrayEquals(one.momentum().toDoubles(), all.get(i).momentum().toDoubles(), 0.0, "momentum #" + i);
      }
      // one group per shape, in order of first appearance
      assertEquals(List.of(List.of("(6,10)", "(6,10)", "(6,10)"), List.of("(10,6)", "(10,6)"), List.of("(8,8)")), fused.groups);
    }
  }

  @Test
  void aGroupOfMixedShapesIsRefused() {
    var e = assertThrows(IllegalArgumentException.class, () -> new ComposedFusedMuon().muonGroupStep(
        List.of(NewtonSchulzTest.gaussian(1, 4, 6), NewtonSchulzTest.gaussian(2, 4, 6)),
        List.of(NewtonSchulzTest.gaussian(3, 4, 6), NewtonSchulzTest.gaussian(4, 6, 4)),
        List.of(NewtonSchulzTest.gaussian(5, 4, 6), NewtonSchulzTest.gaussian(6, 4, 6)), 0.02, 0.95, true, 0.1, 1,
        NewtonSchulz.STEPS, NewtonSchulz.A, NewtonSchulz.B, NewtonSchulz.C, NewtonSchulz.EPS));
    assertTrue(e.getMessage().contains("gradient 1 is (6,4)"), e.getMessage());
  }
}
