package dev.k2pekko.optim;

import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import java.util.ArrayList;
import java.util.List;

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
    Tensor o = update(ops, direction(ops, g, m, cfg));
    return new Step(decay(ops, w, o, lr, cfg), m);
  }

  /**
   * {@link #step} on several matrices at once (ws, gs, momenta index-aligned): the same arithmetic for each, with
   * the orthogonalizations through {@link NewtonSchulz#orthogonalizeAll}, so that a fused backend runs each group
   * of same-shaped matrices in one batched call. One result per matrix, in order.
   */
  public static List<Step> steps(TensorOps ops, List<? extends Tensor> ws, List<? extends Tensor> gs, List<? extends Tensor> momenta,
      double lr, Config cfg) {
    if (ws.size() != gs.size() || ws.size() != momenta.size()) {
      throw new IllegalArgumentException("Muon.steps: " + ws.size() + " weights, " + gs.size() + " gradients, " + momenta.size() + " momenta");
    }
    var ms = new ArrayList<Tensor>(ws.size());
    var us = new ArrayList<Tensor>(ws.size());
    for (int i = 0; i < ws.size(); i++) {
      Tensor m = ops.linear(cfg.momentum(), momenta.get(i), 1.0, gs.get(i));
      ms.add(m);
      us.add(direction(ops, gs.get(i), m, cfg));
    }
    List<Tensor> os = NewtonSchulz.orthogonalizeAll(ops, us);
    var out = new ArrayList<Step>(ws.size());
    for (int i = 0; i < ws.size(); i++) {
      Tensor u = us.get(i);
      Tensor o = ops.scale(os.get(i), updateScale(u.rows(), u.cols()));
      out.add(new Step(decay(ops, ws.get(i), o, lr, cfg), ms.get(i)));
    }
    return out;
  }

  /** U = G + mu*M with Nesterov, else M. */
  private static Tensor direction(TensorOps ops, Tensor g, Tensor m, Config cfg) {
    return cfg.nesterov() ? ops.linear(1.0, g, cfg.momentum(), m) : m;
  }

  /** Decoupled decay with the unscaled lr: W - lr*O - lr*wd*W. */
  private static Tensor decay(TensorOps ops, Tensor w, Tensor o, double lr, Config cfg) {
    return ops.linear(1.0 - lr * cfg.weightDecay(), w, -lr, o);
  }
}
