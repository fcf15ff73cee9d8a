package dev.k2pekko.ops;

/**
 * A backend that runs Muon's quintic Newton–Schulz iteration as one fused routine (the CUDA backend keeps
 * it in bf16 on the device with the linear terms folded into its GEMMs). dev.k2pekko.optim.NewtonSchulz
 * uses it when the ops offer it, and the generic op-by-op loop otherwise.
 */
public interface FusedNewtonSchulz {
  /** out (R,K) ~ U V^T of g (R,K): X = g / (||g||_F + eps), transposed when R > K, steps of X <- aX + (bA + cA^2)X, A = X X^T. */
  Tensor newtonSchulz(Tensor g, int steps, double a, double b, double c, double eps);
}
