package dev.k2pekko.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.optim.QkClip;
import dev.k2pekko.ops.Tensor;
import org.junit.jupiter.api.Test;

/** The learner's cap: no forward pass a gradient comes from keeps a head over tau, and the rescale is the optimizer's. */
class LearnerClipTest {
  private static final ReferenceOps OPS = new ReferenceOps();
  private static final int[] IDS = {1, 2, 3, 4, 5, 6, 7, 8};

  /** A two-layer model whose queries in both layers are blown up, so that heads of both layers are far over any tau here. */
  private static PolicyModel hot() {
    var model = new PolicyModel(new ModelConfig(10, 8, 2, 2, 8, 2, 1e-5), OPS, 2);
    for (int l = 0; l < 2; l++) model.setParameter(PolicyModel.queryWeight(l), OPS.scale(model.parameter(PolicyModel.queryWeight(l)), 40));
    return model;
  }

  private static double[][] maxLogit(PolicyModel m) {
    return m.forward(IDS, 1, 8).maxLogit();
  }

  private static double largest(double[][] s) {
    double x = Double.NEGATIVE_INFINITY;
    for (double[] row : s) for (double v : row) x = Math.max(x, v);
    return x;
  }

  @Test
  void aHeadOverTauIsRescaledToTheTargetBeforeTheStepIsComputedAgain() {
    var model = hot();
    double[][] served = maxLogit(model);
    double tau = 0.5 * largest(served), target = 0.85 * tau;
    Tensor wq0 = model.parameter(PolicyModel.queryWeight(0));
    var clip = new LearnerClip(tau, target, QkClip.DEFAULT_ALPHA);
    var r = clip.run(model, LearnerClipTest::maxLogit, s -> s);

    assertTrue(clip.over(r.measured()), "the served weights had a head over tau");
    assertEquals(largest(served), largest(r.measured()), 0.0);
    assertTrue(r.passes() >= 1);
    for (double[] row : r.result()) for (double v : row) assertTrue(v <= tau, "a head at " + v + " over tau " + tau + " after the re-clip");
    // layer 0's logits depend on its own W_q, W_k only: a head over tau there is now exactly at the target, the others
    // untouched, and its W_q rows moved by gamma^alpha with gamma the parameter server's for the same maxima
    var ps = QkClip.rescales(new double[][] {served[0]}, target);
    for (int h = 0; h < 2; h++) {
      if (served[0][h] > tau) assertEquals(target, r.result()[0][h], 1e-9 * target);
      else assertEquals(served[0][h], r.result()[0][h], 1e-12);
    }
    double[] before = wq0.toDoubles(), after = model.parameter(PolicyModel.queryWeight(0)).toDoubles();
    int perHead = before.length / 2; // W_q (H*D, in), row-major: head h owns a contiguous block of rows
    for (var hr : ps) {
      if (served[0][hr.head()] <= tau) continue; // over the target but under tau: the learner leaves it to the parameter server
      for (int i = hr.head() * perHead; i < (hr.head() + 1) * perHead; i++) {
        assertEquals(before[i] * Math.pow(hr.gamma(), QkClip.DEFAULT_ALPHA), after[i], 1e-12 * Math.abs(before[i]) + 1e-15);
      }
    }
  }

  @Test
  void underTauNothingChangesAndOffNeverClips() {
    var model = hot();
    double[][] served = maxLogit(model);
    Tensor wq = model.parameter(PolicyModel.queryWeight(1));
    var under = new LearnerClip(2 * largest(served), largest(served), QkClip.DEFAULT_ALPHA).run(model, LearnerClipTest::maxLogit, s -> s);
    assertEquals(0, under.passes());
    assertSame(wq, model.parameter(PolicyModel.queryWeight(1)), "no head over tau: the weights as served");
    var off = LearnerClip.OFF.run(model, LearnerClipTest::maxLogit, s -> s);
    assertEquals(0, off.passes());
    assertFalse(LearnerClip.OFF.over(served));
    assertSame(wq, model.parameter(PolicyModel.queryWeight(1)));
  }

  @Test
  void aTargetOverTauIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> new LearnerClip(10, 11, QkClip.DEFAULT_ALPHA));
    assertThrows(IllegalArgumentException.class, () -> new LearnerClip(0, 0, QkClip.DEFAULT_ALPHA));
  }
}
