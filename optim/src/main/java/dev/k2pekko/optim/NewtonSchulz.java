package dev.k2pekko.optim;

import dev.k2pekko.ops.FusedNewtonSchulz;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;

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
    if (ops instanceof FusedNewtonSchulz f) return f.newtonSchulz(g, steps, A, B, C, EPS);
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

  /**
   * {@link #orthogonalize} of each of gs, one result per input in input order. With a fused backend the inputs are
   * grouped by shape and each group goes through one {@link FusedNewtonSchulz#newtonSchulzBatch} (on CUDA one
   * strided-batched GEMM chain instead of one chain per matrix); otherwise each is orthogonalized on its own, exactly
   * as {@link #orthogonalize} does.
   */
  public static List<Tensor> orthogonalizeAll(TensorOps ops, List<? extends Tensor> gs) {
    if (ops instanceof FusedNewtonSchulz f) return orthogonalizeGrouped(f, gs, STEPS);
    var out = new ArrayList<Tensor>(gs.size());
    for (Tensor g : gs) out.add(orthogonalize(ops, g));
    return out;
  }

  private record Shape(int rows, int cols) {}

  /** One newtonSchulzBatch per distinct shape of gs (in order of first appearance), results put back in input order. */
  static List<Tensor> orthogonalizeGrouped(FusedNewtonSchulz f, List<? extends Tensor> gs, int steps) {
    var groups = new LinkedHashMap<Shape, List<Integer>>();
    for (int i = 0; i < gs.size(); i++) groups.computeIfAbsent(new Shape(gs.get(i).rows(), gs.get(i).cols()), s -> new ArrayList<>()).add(i);
    Tensor[] out = new Tensor[gs.size()];
    for (var e : groups.entrySet()) {
      List<Integer> idx = e.getValue();
      var members = new ArrayList<Tensor>(idx.size());
      for (int i : idx) members.add(gs.get(i));
      List<Tensor> r = f.newtonSchulzBatch(members, steps, A, B, C, EPS);
      if (r.size() != idx.size()) {
        throw new IllegalStateException("newtonSchulzBatch returned " + r.size() + " results for " + idx.size() + " inputs of " + e.getKey());
      }
      for (int j = 0; j < idx.size(); j++) out[idx.get(j)] = r.get(j);
    }
    return Arrays.asList(out);
  }
}
