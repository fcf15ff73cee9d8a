package dev.k2pekko.ops;

import java.util.List;

/**
 * A backend that runs Muon's whole step for a group of same-shaped matrices as one fused routine (the CUDA backend:
 * one kernel for the momentum and Nesterov terms of the whole group, writing the batched Newton–Schulz input, the
 * strided-batched GEMM chain, one kernel for the scale and decoupled decay reading the chain's output). The arithmetic
 * is dev.k2pekko.optim.Muon.step's for each matrix:
 * <pre>
 *   m1 = mu*m + g
 *   u  = nesterov ? g + mu*m1 : m1
 *   w1 = (1 - lr*wd)*w - lr*scale*NS(u)
 * </pre>
 * with NS the quintic Newton–Schulz iteration of {@link FusedNewtonSchulz#newtonSchulz} ({@code steps} steps of
 * coefficients a, b, c, norm eps). dev.k2pekko.optim.Muon.steps uses it when the ops offer it, and its op-by-op
 * composition otherwise.
 */
public interface FusedMuon {
  /** The group's new weights and momenta, index-aligned with its inputs. */
  record GroupStep(List<Tensor> weights, List<Tensor> momenta) {}

  /**
   * One Muon step of every matrix of a group: ws, gs, ms index-aligned, all of one shape; inputs are not modified.
   *
   * @param scale the update's scale, 0.2*sqrt(max(rows, cols)) in Muon
   * @throws IllegalArgumentException when the lists differ in length or the tensors are not all of one shape
   */
  GroupStep muonGroupStep(List<? extends Tensor> ws, List<? extends Tensor> gs, List<? extends Tensor> ms, double lr, double mu,
      boolean nesterov, double wd, double scale, int steps, double a, double b, double c, double eps);

  /** Fails unless ws, gs and ms have one length and every tensor has the shape of ws' first. */
  static void checkGroup(List<? extends Tensor> ws, List<? extends Tensor> gs, List<? extends Tensor> ms) {
    if (ws.size() != gs.size() || ws.size() != ms.size()) {
      throw new IllegalArgumentException("muonGroupStep: " + ws.size() + " weights, " + gs.size() + " gradients, " + ms.size() + " momenta");
    }
    for (var list : List.of(ws, gs, ms)) {
      for (int i = 0; i < list.size(); i++) {
        Tensor t = list.get(i);
        if (t.rows() != ws.get(0).rows() || t.cols() != ws.get(0).cols()) {
          throw new IllegalArgumentException("muonGroupStep: " + (list == ws ? "weight " : list == gs ? "gradient " : "momentum ") + i
              + " is " + t.shapeString() + ", weight 0 is " + ws.get(0).shapeString() + " (one shape per group)");
        }
      }
    }
  }
}
