package dev.k2pekko.optim;

import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;

/**
 * The quintic Newton–Schulz iteration Muon uses to approximately orthogonalize an update: it maps
 * G = U S V^T to roughly U V^T (singular values pushed into about [0.7, 1.2], not exactly 1).
 */
public final class NewtonSchulz {
  public static final double A = 3.4445, B = -4.7750, C = 2.0315;
  public static final int STEPS = 5;
  public static final double EPS = 1e-7;

  private NewtonSchulz() {}

  /** out (R,K) ~ U V^T of g (R,K): X = G / (||G||_F + 1e-7), transposed when R > K, 5 steps of X <- aX + (bA + cA^2)X with A = X X^T. */
  public static Tensor orthogonalize(TensorOps ops, Tensor g) {
    return orthogonalize(ops, g, STEPS);
  }

  public static Tensor orthogonalize(TensorOps ops, Tensor g, int steps) {
    if (ops instanceof dev.k2pekko.ops.FusedNewtonSchulz f) return f.newtonSchulz(g, steps, A, B, C, EPS);
    Tensor x = ops.scale(g, 1.0 / (Math.sqrt(ops.sumOfSquares(g)) + EPS));
    boolean tall = g.rows() > g.cols();
    if (tall) x = ops.transpose(x); // X X^T is then the smaller Gram matrix
    for (int i = 0; i < steps; i++) {
      Tensor a = ops.matmul(x, false, x, true);
      Tensor b = ops.linear(B, a, C, ops.matmul(a, false, a, false));
      x = ops.linear(A, x, 1.0, ops.matmul(b, false, x, false));
    }
    return tall ? ops.transpose(x) : x;
  }
}
