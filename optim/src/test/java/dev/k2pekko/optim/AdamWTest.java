package dev.k2pekko.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.k2pekko.ops.HostTensor;
import dev.k2pekko.ops.ReferenceOps;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class AdamWTest {
  /** The in-place step is the tensor step's arithmetic: the same bits over several steps, zero gradients included. */
  @Test void stepInPlaceIsBitForBitTheReferenceStep() {
    var rnd = new SplittableRandom(5);
    int rows = 37, cols = 7, n = rows * cols;
    double[] w = new double[n], m = new double[n], v = new double[n];
    for (int i = 0; i < n; i++) w[i] = rnd.nextGaussian();
    var cfg = new AdamW.Config(0.9, 0.99, 1e-8, 0.01);
    var tw = (dev.k2pekko.ops.Tensor) new HostTensor(rows, cols, w.clone());
    var tm = (dev.k2pekko.ops.Tensor) new HostTensor(rows, cols, m.clone());
    var tv = (dev.k2pekko.ops.Tensor) new HostTensor(rows, cols, v.clone());
    for (int t = 1; t <= 6; t++) {
      double[] g = new double[n];
      for (int i = 0; i < n; i++) g[i] = rnd.nextInt(3) == 0 ? 0 : rnd.nextGaussian() * Math.pow(10, rnd.nextInt(7) - 3);
      var s = AdamW.step(ReferenceOps.INSTANCE, tw, new HostTensor(rows, cols, g.clone()), tm, tv, t, 0.01, cfg);
      tw = s.weight();
      tm = s.m();
      tv = s.v();
      AdamW.stepInPlace(w, g, m, v, t, 0.01, cfg);
      for (int i = 0; i < n; i++) {
        assertEquals(Double.doubleToRawLongBits(HostTensor.of(tw).data()[i]), Double.doubleToRawLongBits(w[i]), "w[" + i + "] at step " + t);
        assertEquals(Double.doubleToRawLongBits(HostTensor.of(tm).data()[i]), Double.doubleToRawLongBits(m[i]), "m[" + i + "] at step " + t);
        assertEquals(Double.doubleToRawLongBits(HostTensor.of(tv).data()[i]), Double.doubleToRawLongBits(v[i]), "v[" + i + "] at step " + t);
      }
    }
  }

  @Test void stepInPlaceRefusesArraysOfDifferentLengths() {
    var e = assertThrows(IllegalArgumentException.class,
        () -> AdamW.stepInPlace(new double[4], new double[3], new double[4], new double[4], 1, 0.01, AdamW.Config.defaults()));
    assertEquals("AdamW: weight, gradient and moments must have one length, got 4, 3, 4, 4", e.getMessage());
  }
}
