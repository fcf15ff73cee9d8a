package dev.k2pekko.optim;

import dev.k2pekko.ops.FusedMuon;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
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
   * {@link #step} on several matrices at once (ws, gs, momenta index-aligned): the same arithmetic for each. On a
   * {@link FusedMuon} backend each group of same-shaped matrices is one {@link FusedMuon#muonGroupStep} call (on CUDA
   * a few kernels and one batched Newton–Schulz chain for the whole group); otherwise the op-by-op step of each
   * matrix, with the orthogonalizations through {@link NewtonSchulz#orthogonalizeAll} (one batched call per group on
   * a backend with only a fused Newton–Schulz). One result per matrix, in order.
   */
  public static List<Step> steps(TensorOps ops, List<? extends Tensor> ws, List<? extends Tensor> gs, List<? extends Tensor> momenta,
      double lr, Config cfg) {
    if (ws.size() != gs.size() || ws.size() != momenta.size()) {
      throw new IllegalArgumentException("Muon.steps: " + ws.size() + " weights, " + gs.size() + " gradients, " + momenta.size() + " momenta");
    }
    if (ops instanceof FusedMuon f) return fusedSteps(f, ws, gs, momenta, lr, cfg);
    return composedSteps(ops, ws, gs, momenta, lr, cfg);
  }

  /**
   * {@link #steps} without the fused group step: each matrix's step op by op, the orthogonalizations through
   * {@link NewtonSchulz#orthogonalizeAll}. What steps computes on a backend that is not {@link FusedMuon}; on one that
   * is, the reference its fused step is measured against (GpuBench optim).
   */
  public static List<Step> composedSteps(TensorOps ops, List<? extends Tensor> ws, List<? extends Tensor> gs, List<? extends Tensor> momenta,
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

  private record Shape(int rows, int cols) {}

  /** One muonGroupStep per distinct shape of ws (in order of first appearance), results put back in input order. */
  static List<Step> fusedSteps(FusedMuon f, List<? extends Tensor> ws, List<? extends Tensor> gs, List<? extends Tensor> momenta,
      double lr, Config cfg) {
    var groups = new LinkedHashMap<Shape, List<Integer>>();
    for (int i = 0; i < ws.size(); i++) groups.computeIfAbsent(new Shape(ws.get(i).rows(), ws.get(i).cols()), s -> new ArrayList<>()).add(i);
    Step[] out = new Step[ws.size()];
    for (var e : groups.entrySet()) {
      List<Integer> idx = e.getValue();
      var gw = new ArrayList<Tensor>(idx.size());
      var gg = new ArrayList<Tensor>(idx.size());
      var gm = new ArrayList<Tensor>(idx.size());
      for (int i : idx) {
        gw.add(ws.get(i));
        gg.add(gs.get(i));
        gm.add(momenta.get(i));
      }
      Shape s = e.getKey();
      FusedMuon.GroupStep r = f.muonGroupStep(gw, gg, gm, lr, cfg.momentum(), cfg.nesterov(), cfg.weightDecay(), updateScale(s.rows(), s.cols()),
          NewtonSchulz.STEPS, NewtonSchulz.A, NewtonSchulz.B, NewtonSchulz.C, NewtonSchulz.EPS);
      if (r.weights().size() != idx.size() || r.momenta().size() != idx.size()) {
        throw new IllegalStateException("muonGroupStep returned " + r.weights().size() + " weights and " + r.momenta().size() + " momenta for "
            + idx.size() + " matrices of " + s);
      }
      for (int j = 0; j < idx.size(); j++) out[idx.get(j)] = new Step(r.weights().get(j), r.momenta().get(j));
    }
    return Arrays.asList(out);
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
