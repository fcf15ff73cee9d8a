package dev.k2pekko.ops;

import java.util.ArrayList;
import java.util.List;

/**
 * A backend that runs Muon's quintic Newton–Schulz iteration as one fused routine (the CUDA backend keeps
 * it in bf16 on the device with the linear terms folded into its GEMMs). dev.k2pekko.optim.NewtonSchulz
 * uses it when the ops offer it, and the generic op-by-op loop otherwise.
 */
public interface FusedNewtonSchulz {
  /** out (R,K) ~ U V^T of g (R,K): X = g / (||g||_F + eps), transposed when R > K, steps of X <- aX + (bA + cA^2)X, A = X X^T. */
  Tensor newtonSchulz(Tensor g, int steps, double a, double b, double c, double eps);

  /**
   * {@link #newtonSchulz} of every matrix of gs, all of one shape: one result per input, in input order, each
   * normalised by its own norm. A backend may run them together (CUDA: one strided-batched GEMM chain for all);
   * this default runs them one by one.
   *
   * @throws IllegalArgumentException when the inputs are not all of one shape
   */
  default List<Tensor> newtonSchulzBatch(List<? extends Tensor> gs, int steps, double a, double b, double c, double eps) {
    checkOneShape(gs);
    var out = new ArrayList<Tensor>(gs.size());
    for (Tensor g : gs) out.add(newtonSchulz(g, steps, a, b, c, eps));
    return out;
  }

  /** Fails with the first input whose shape differs from the first's. */
  static void checkOneShape(List<? extends Tensor> gs) {
    for (int i = 1; i < gs.size(); i++) {
      Tensor g = gs.get(i);
      if (g.rows() != gs.get(0).rows() || g.cols() != gs.get(0).cols()) {
        throw new IllegalArgumentException("newtonSchulzBatch: input " + i + " is " + g.shapeString() + ", input 0 is "
            + gs.get(0).shapeString() + " (one shape per batch)");
      }
    }
  }
}
