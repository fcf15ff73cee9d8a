package dev.k2pekko.optim;

import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;

/**
 * AdamW for embeddings, the output head and norm gains: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
 * W = W - lr*(m_hat / (sqrt(v_hat) + eps) + wd*W), with the same lr and wd as Muon.
 */
public final class AdamW {
  public record Config(double beta1, double beta2, double eps, double weightDecay) {
    public static Config defaults() {
      return new Config(0.9, 0.95, 1e-8, 0.1);
    }
  }

  /** New weight and moments; t is the 1-based step count used for bias correction. */
  public record Step(Tensor weight, Tensor m, Tensor v) {}

  private AdamW() {}

  /** w, g, m, v (R,C) -> new w, m, v at step t >= 1. */
  public static Step step(TensorOps ops, Tensor w, Tensor g, Tensor m, Tensor v, int t, double lr, Config cfg) {
    Tensor m1 = ops.linear(cfg.beta1(), m, 1 - cfg.beta1(), g);
    Tensor v1 = ops.linear(cfg.beta2(), v, 1 - cfg.beta2(), ops.hadamard(g, g));
    Tensor dir = ops.adamDirection(m1, v1, 1 - Math.pow(cfg.beta1(), t), 1 - Math.pow(cfg.beta2(), t), cfg.eps());
    Tensor next = ops.linear(1.0 - lr * cfg.weightDecay(), w, -lr, dir);
    return new Step(next, m1, v1);
  }

  /**
   * {@link #step} on plain arrays, in place: w, m and v are overwritten with the new weight and moments. Each element
   * is computed with {@link dev.k2pekko.ops.ReferenceOps}'s expressions in their order, so the results are bit for bit
   * {@code step}'s on the reference backend, without its five temporaries per call (the critic's 393k-element
   * embedding table steps thousands of times a run: allocation and passes over memory were most of its training time).
   */
  public static void stepInPlace(double[] w, double[] g, double[] m, double[] v, int t, double lr, Config cfg) {
    if (g.length != w.length || m.length != w.length || v.length != w.length) {
      throw new IllegalArgumentException("AdamW: weight, gradient and moments must have one length, got " + w.length + ", " + g.length
          + ", " + m.length + ", " + v.length);
    }
    double b1 = cfg.beta1(), a1 = 1 - cfg.beta1(), b2 = cfg.beta2(), a2 = 1 - cfg.beta2();
    double bc1 = 1 - Math.pow(cfg.beta1(), t), bc2 = 1 - Math.pow(cfg.beta2(), t), eps = cfg.eps();
    double keep = 1.0 - lr * cfg.weightDecay(), rate = -lr;
    for (int i = 0; i < w.length; i++) {
      double gi = g[i];
      double m1 = b1 * m[i] + a1 * gi;
      double v1 = b2 * v[i] + a2 * (gi * gi);
      double dir = (m1 / bc1) / (Math.sqrt(v1 / bc2) + eps);
      m[i] = m1;
      v[i] = v1;
      w[i] = keep * w[i] + rate * dir;
    }
  }
}
