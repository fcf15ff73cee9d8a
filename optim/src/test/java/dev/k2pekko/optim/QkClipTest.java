package dev.k2pekko.optim;

import static org.junit.jupiter.api.Assertions.*;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.ParamKind;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.ops.HostTensor;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import org.junit.jupiter.api.Test;

class QkClipTest {
  final ReferenceOps ops = ReferenceOps.INSTANCE;

  @Test
  void seedToyExample() {
    // one head, d = 2, one token x = (1, 0): q = W_q x = (4, 4), k = W_k x = (5, 5)
    Tensor x = new HostTensor(1, 2, new double[] {1, 0});
    Tensor wq = new HostTensor(2, 2, new double[] {4, 0, 4, 0});
    Tensor wk = new HostTensor(2, 2, new double[] {5, 0, 5, 0});
    double sMax = ops.attention(ops.matmul(x, false, wq, true), ops.matmul(x, false, wk, true), x, 1, 1, 1).maxLogit()[0];
    assertEquals(40 / Math.sqrt(2), sMax, 1e-12);
    assertEquals(28.28, sMax, 0.005);
    var r = QkClip.apply(ops, wq, wk, new double[] {sMax}, 10.0, 0.5);
    assertEquals(0.354, r.gamma()[0], 0.0005);
    double after = ops.attention(ops.matmul(x, false, r.wq(), true), ops.matmul(x, false, r.wk(), true), x, 1, 1, 1).maxLogit()[0];
    assertEquals(10.0, after, 1e-9);
  }

  @Test
  void headsAreClippedIndependently() {
    int heads = 3, d = 4, in = 6;
    Tensor wq = NewtonSchulzTest.gaussian(1, heads * d, in), wk = NewtonSchulzTest.gaussian(2, heads * d, in);
    var r = QkClip.apply(ops, wq, wk, new double[] {50, 150, 400}, 100.0, 0.5);
    assertArrayEquals(new double[] {1, 2.0 / 3, 0.25}, r.gamma(), 1e-12);
    double[] q0 = wq.toDoubles(), q1 = r.wq().toDoubles(), k0 = wk.toDoubles(), k1 = r.wk().toDoubles();
    for (int row = 0; row < heads * d; row++) {
      double g = r.gamma()[row / d];
      for (int c = 0; c < in; c++) {
        int i = row * in + c;
        if (row < d) { // head 0 is under tau: bit-for-bit untouched
          assertEquals(q0[i], q1[i], 0.0);
          assertEquals(k0[i], k1[i], 0.0);
        } else {
          assertEquals(q0[i] * Math.sqrt(g), q1[i], 1e-15);
          assertEquals(k0[i] * Math.sqrt(g), k1[i], 1e-15);
        }
      }
    }
  }

  @Test
  void everyLogitOfAClippedHeadScalesByExactlyGamma() {
    int heads = 2, d = 4, in = 8, t = 6;
    Tensor x = NewtonSchulzTest.gaussian(10, t, in);
    Tensor wq = ops.scale(NewtonSchulzTest.gaussian(11, heads * d, in), 3), wk = ops.scale(NewtonSchulzTest.gaussian(12, heads * d, in), 3);
    double[][] before = logits(x, wq, wk, heads, d);
    double sMax0 = max(before[0]), sMax1 = max(before[1]);
    double tau = Math.max(sMax0, sMax1) * 0.5;
    for (double alpha : new double[] {0.5, 0.2, 1.0}) {
      var r = QkClip.apply(ops, wq, wk, new double[] {sMax0, sMax1}, tau, alpha);
      double[][] after = logits(x, r.wq(), r.wk(), heads, d);
      for (int h = 0; h < heads; h++) {
        for (int i = 0; i < before[h].length; i++) {
          assertEquals(before[h][i] * r.gamma()[h], after[h][i], 1e-12 * Math.abs(before[h][i]) + 1e-14);
        }
        assertTrue(max(after[h]) <= tau * (1 + 1e-12));
      }
    }
  }

  /** q_i.k_j/sqrt(d) for every pair (i, j), per head. */
  double[][] logits(Tensor x, Tensor wq, Tensor wk, int heads, int d) {
    double[] q = ops.matmul(x, false, wq, true).toDoubles(), k = ops.matmul(x, false, wk, true).toDoubles();
    int t = x.rows(), c = heads * d;
    double[][] out = new double[heads][t * t];
    for (int h = 0; h < heads; h++)
      for (int i = 0; i < t; i++)
        for (int j = 0; j < t; j++) {
          double s = 0;
          for (int e = 0; e < d; e++) s += q[i * c + h * d + e] * k[j * c + h * d + e];
          out[h][i * t + j] = s / Math.sqrt(d);
        }
    return out;
  }

  static double max(double[] a) {
    return java.util.Arrays.stream(a).max().orElseThrow();
  }

  @Test
  void negativeOrSmallMaximaAreUntouched() {
    assertEquals(1.0, QkClip.gamma(-30, 10));
    assertEquals(1.0, QkClip.gamma(10, 10));
    assertEquals(0.5, QkClip.gamma(20, 10));
  }

  @Test
  void routerSendsHiddenMatricesToMuonAndTheRestToAdamW() {
    var model = new PolicyModel(new ModelConfig(10, 8, 2, 2, 8, 2, 1e-5), ops, 1);
    for (var s : model.specs()) {
      var expect = s.kind() == ParamKind.HIDDEN_MATRIX ? MuonClip.Rule.MUON : MuonClip.Rule.ADAMW;
      assertEquals(expect, MuonClip.route(s.kind()), s.name());
      if (s.name().startsWith("layer") && s.name().matches(".*\\.w[qkvo12]")) assertEquals(ParamKind.HIDDEN_MATRIX, s.kind());
    }
    assertEquals(ParamKind.EMBEDDING, model.specs().stream().filter(s -> s.name().equals("tok_emb")).findFirst().orElseThrow().kind());
    assertEquals(ParamKind.OUTPUT_HEAD, model.specs().stream().filter(s -> s.name().equals("head")).findFirst().orElseThrow().kind());
  }

  @Test
  void muonClipOnTheModelBringsTheFirstLayerToTau() {
    var cfg = new ModelConfig(10, 8, 2, 2, 8, 2, 1e-5);
    var model = new PolicyModel(cfg, ops, 2);
    // blow up layer 0's queries so its logits are large
    model.setParameter(PolicyModel.queryWeight(0), ops.scale(model.parameter(PolicyModel.queryWeight(0)), 40));
    int[] ids = {1, 2, 3, 4, 5, 6, 7, 8};
    double[][] s = model.forward(ids, 1, 8).maxLogit();
    double tau = 0.5 * Math.max(s[0][0], s[0][1]);
    var opt = new MuonClip(MuonClip.Config.defaults().withClip(true, tau), model);
    double[][] gamma = opt.clip(model, s);
    double[][] after = model.forward(ids, 1, 8).maxLogit();
    for (int h = 0; h < 2; h++) {
      if (s[0][h] > tau) assertEquals(tau, after[0][h], 1e-9 * tau);
      else assertEquals(s[0][h], after[0][h], 1e-12);
      assertEquals(Math.min(1, tau / s[0][h]), gamma[0][h], 1e-15);
    }
  }

  @Test
  void adaptiveThresholdFollowsEachHeadAndIsCappedByTau() {
    var a = new AdaptiveThreshold(new AdaptiveThreshold.Config(100, 10, 3, 0.9, 5), 1, 2);
    for (int i = 0; i < 50; i++) {
      for (double tau : a.thresholds()[0]) {
        if (i < 5) assertEquals(100, tau, 0.0); // warm-up: the global tau
        else assertTrue(tau >= 10 && tau <= 100, "threshold " + tau + " outside [tauMin, tau]");
      }
      a.observe(new double[][] {{20 + (i % 2), 300}});
    }
    double[] t = a.thresholds()[0];
    assertTrue(t[0] > 20.5 && t[0] < 25, "quiet head's threshold " + t[0]);
    assertEquals(100, t[1], 0.0); // the global tau caps a head that is always high
    assertFalse(MuonClip.Config.defaults().adaptive());
  }

  @Test
  void theStepsMaximaBecomeRescalesOfTheHeadsOverTauOnly() {
    // the clip-monitor's max over learners for one step: {{11, 12, 3}, {9, 40, -1}}; over tau 10: (0,0), (0,1), (1,1)
    var r = QkClip.rescales(new double[][] {{11, 12, 3}, {9, 40, -1}}, 10.0);
    assertEquals(java.util.List.of(new QkClip.HeadRescale(0, 0, 10.0 / 11), new QkClip.HeadRescale(0, 1, 10.0 / 12),
        new QkClip.HeadRescale(1, 1, 10.0 / 40)), r);
    assertEquals(3, QkClip.clipped(new double[][] {{11, 12, 3}, {9, 40, -1}}, 10.0));
    assertTrue(QkClip.rescales(new double[][] {{10, 9.99, -50}}, 10.0).isEmpty(), "at or under tau: untouched");
  }

  @Test
  void aStepThatMeasuredNothingLeavesTheAdaptiveThresholdsAsTheyWere() {
    var a = new AdaptiveThreshold(new AdaptiveThreshold.Config(100, 10, 3, 0.9, 2), 1, 2);
    for (int i = 0; i < 10; i++) a.observe(new double[][] {{20 + (i % 2), 30}});
    double[] before = a.thresholds()[0];
    a.observe(new double[][] {{Double.NEGATIVE_INFINITY, Double.NEGATIVE_INFINITY}}); // an RL step without signal
    a.observe(new double[][] {{Double.NaN, Double.POSITIVE_INFINITY}});
    assertArrayEquals(before, a.thresholds()[0], 0.0);
    assertTrue(before[0] > 20 && before[0] < 25 && before[1] == 30, java.util.Arrays.toString(before));
  }

  @Test
  void perHeadThresholdsClipEachHeadAtItsOwn() {
    // the same maxima against thresholds of their own: (0,0) 11 over 10, (0,1) 12 under 15, (1,0) 9 over 5, (1,1) 40 at 40
    var r = QkClip.rescales(new double[][] {{11, 12}, {9, 40}}, new double[][] {{10, 15}, {5, 40}});
    assertEquals(java.util.List.of(new QkClip.HeadRescale(0, 0, 10.0 / 11), new QkClip.HeadRescale(1, 0, 5.0 / 9)), r);
  }

  @Test
  void theClipModeIsOnOffOrAdaptiveAndNothingElse() {
    for (var on : new String[] {"on", "true", "YES", " on "}) assertEquals(QkClip.Mode.ON, QkClip.Mode.parse(on), on);
    for (var off : new String[] {"off", "false", "no"}) assertEquals(QkClip.Mode.OFF, QkClip.Mode.parse(off), off);
    assertEquals(QkClip.Mode.ADAPTIVE, QkClip.Mode.parse("adaptive"));
    var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> QkClip.Mode.parse("sometimes"));
    assertEquals("QK-Clip mode must be on, off or adaptive, got 'sometimes'", e.getMessage());
    for (var m : QkClip.Mode.values()) {
      var c = MuonClip.Config.defaults().withClip(m, 30);
      assertEquals(m, c.clipMode());
      assertEquals(30, c.tau(), 0.0);
    }
  }

  @Test
  void rescalingOneHeadScalesItsLogitsByGammaAndLeavesTheOthers() {
    int heads = 2, d = 3, in = 5;
    Tensor wq = NewtonSchulzTest.gaussian(3, heads * d, in), wk = NewtonSchulzTest.gaussian(4, heads * d, in);
    var one = QkClip.rescaleHead(ops, wq, wk, 1, d, 0.25, 0.5);
    var all = QkClip.apply(ops, wq, wk, new double[] {1, 400}, 100.0, 0.5);
    assertArrayEquals(all.wq().toDoubles(), one.wq().toDoubles(), 0.0);
    assertArrayEquals(all.wk().toDoubles(), one.wk().toDoubles(), 0.0);
    assertThrows(IllegalArgumentException.class, () -> QkClip.rescaleHead(ops, wq, wk, 0, d, 1.5, 0.5));
  }
}
