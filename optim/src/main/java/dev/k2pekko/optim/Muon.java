package dev.k2pekko.optim;

import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;

/**
 * Muon for one hidden 2-D matrix W (A,B), as in Moonlight and the K2 report:
 * <pre>
 *   M = mu*M + G
 *   U = nesterov ? G + mu*M : M
 *   O = NS5(U) * 0.2*sqrt(max(A,B))
 *   W = W - lr*(O + wd*W)
 * </pre>
 * The 0.2*sqrt(max(A,B)) factor gives a full-rank orthogonal update an element RMS of 0.2, close to
 * AdamW's, so both groups share one learning rate and weight decay.
 */
public final class Muon {
  public record Config(double momentum, boolean nesterov, double weightDecay) {
    public static Config defaults() {
      return new Config(0.95, true, 0.1);
    }
  }

  /** The new weight and momentum buffer. */
  public record Step(Tensor weight, Tensor momentum) {}

  private Muon() {}

  /** 0.2 * sqrt(max(A, B)) for a matrix (A,B). */
  public static double updateScale(int rows, int cols) {
    return 0.2 * Math.sqrt(Math.max(rows, cols));
  }

  /** O (A,B) = NS5(u) * 0.2*sqrt(max(A,B)), u (A,B). */
  public static Tensor update(TensorOps ops, Tensor u) {
    return ops.scale(NewtonSchulz.orthogonalize(ops, u), updateScale(u.rows(), u.cols()));
  }

  /** w, g, momentum (A,B) -> new w, new momentum; momentum starts at zeros. */
  public static Step step(TensorOps ops, Tensor w, Tensor g, Tensor momentum, double lr, Config cfg) {
    Tensor m = ops.linear(cfg.momentum(), momentum, 1.0, g);
    Tensor u = cfg.nesterov() ? ops.linear(1.0, g, cfg.momentum(), m) : m;
    Tensor o = update(ops, u);
    // decoupled decay with the unscaled lr: W - lr*O - lr*wd*W
    Tensor next = ops.linear(1.0 - lr * cfg.weightDecay(), w, -lr, o);
    return new Step(next, m);
  }
}
