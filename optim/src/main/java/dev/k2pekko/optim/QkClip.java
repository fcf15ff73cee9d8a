package dev.k2pekko.optim;

import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import java.util.ArrayList;
import java.util.List;

/**
 * Per-head QK-Clip (K2 report): with S_max^h the signed maximum of q_i.k_j/sqrt(d) over the step's
 * forward pass, gamma_h = min(1, tau_h / S_max^h); head h's rows of W_q are scaled by gamma_h^alpha and
 * its rows of W_k by gamma_h^(1-alpha), so every logit q.k of that head is scaled by exactly gamma_h.
 * Heads at or under tau are untouched. The policy has no q/k biases; with them, q = W_q x + b_q would
 * need b_q scaled with W_q (and b_k with W_k) for the logit to scale exactly, so we left biases out.
 */
public final class QkClip {
  public static final double DEFAULT_ALPHA = 0.5;

  /** The rescaled projections and the gamma applied to each head (1 where untouched). */
  public record Result(Tensor wq, Tensor wk, double[] gamma) {
    public boolean clipped() {
      for (double g : gamma) if (g < 1) return true;
      return false;
    }
  }

  private QkClip() {}

  /**
   * How a run clips: not at all, at one threshold tau for every head, or at per-head thresholds from each head's running
   * statistics, capped by tau ({@link AdaptiveThreshold}).
   */
  public enum Mode {
    OFF, ON, ADAPTIVE;

    /** on/off (true/false, yes/no) or adaptive, as a setting spells it; anything else is refused with a one-line reason. */
    public static Mode parse(String s) {
      return switch (s.trim().toLowerCase(java.util.Locale.ROOT)) {
        case "on", "true", "yes" -> ON;
        case "off", "false", "no" -> OFF;
        case "adaptive" -> ADAPTIVE;
        default -> throw new IllegalArgumentException("QK-Clip mode must be on, off or adaptive, got '" + s + "'");
      };
    }
  }

  /** gamma = min(1, tau / sMax); 1 whenever sMax <= tau (including negative maxima). */
  public static double gamma(double sMax, double tau) {
    return sMax > tau ? tau / sMax : 1.0;
  }

  /** One head to rescale: every logit of head {@code head} of layer {@code layer} is multiplied by gamma. */
  public record HeadRescale(int layer, int head, double gamma) {}

  /** The rescales a step's maxima (layers, heads) call for: gamma = tau / S_max for every head over tau, in (layer, head) order. */
  public static List<HeadRescale> rescales(double[][] maxLogit, double tau) {
    var out = new ArrayList<HeadRescale>();
    for (int l = 0; l < maxLogit.length; l++) {
      for (int h = 0; h < maxLogit[l].length; h++) {
        double g = gamma(maxLogit[l][h], tau);
        if (g < 1) out.add(new HeadRescale(l, h, g));
      }
    }
    return out;
  }

  /** As {@link #rescales(double[][], double)} with a threshold per head (layers, heads), the adaptive ones say. */
  public static List<HeadRescale> rescales(double[][] maxLogit, double[][] tau) {
    var out = new ArrayList<HeadRescale>();
    for (int l = 0; l < maxLogit.length; l++) {
      for (int h = 0; h < maxLogit[l].length; h++) {
        double g = gamma(maxLogit[l][h], tau[l][h]);
        if (g < 1) out.add(new HeadRescale(l, h, g));
      }
    }
    return out;
  }

  /** How many of the given steps' maxima (layers, heads each) clip each head at tau. */
  public static int[][] clipCounts(List<double[][]> maxima, double tau, int layers, int heads) {
    int[][] counts = new int[layers][heads];
    for (double[][] m : maxima) for (var r : rescales(m, tau)) counts[r.layer()][r.head()]++;
    return counts;
  }

  /** How many heads a step's maxima (layers, heads) clip at tau. */
  public static int clipped(double[][] maxLogit, double tau) {
    return rescales(maxLogit, tau).size();
  }

  /**
   * Rescales one head: its rows of W_q (H*D, in) by gamma^alpha and of W_k by gamma^(1-alpha), so that every logit q.k of
   * that head is multiplied by gamma (0 &lt; gamma &lt;= 1). Returns {W_q, W_k}.
   */
  public static Result rescaleHead(TensorOps ops, Tensor wq, Tensor wk, int head, int headDim, double gamma, double alpha) {
    if (!(gamma > 0 && gamma <= 1)) throw new IllegalArgumentException("gamma must lie in (0, 1], got " + gamma);
    int from = head * headDim, to = (head + 1) * headDim;
    double[] g = new double[wq.rows() / headDim];
    java.util.Arrays.fill(g, 1.0);
    g[head] = gamma;
    return new Result(ops.scaleRows(wq, from, to, Math.pow(gamma, alpha)), ops.scaleRows(wk, from, to, Math.pow(gamma, 1 - alpha)), g);
  }

  /** wq, wk (H*D, in), sMax (H), tau (H) -> rescaled wq, wk. */
  public static Result apply(TensorOps ops, Tensor wq, Tensor wk, double[] sMax, double[] tau, double alpha) {
    int heads = sMax.length;
    if (wq.rows() % heads != 0 || wq.rows() != wk.rows()) throw new IllegalArgumentException("W_q/W_k rows do not split into " + heads + " heads");
    int d = wq.rows() / heads;
    double[] gamma = new double[heads];
    for (int h = 0; h < heads; h++) {
      gamma[h] = gamma(sMax[h], tau[h]);
      if (gamma[h] < 1) {
        wq = ops.scaleRows(wq, h * d, (h + 1) * d, Math.pow(gamma[h], alpha));
        wk = ops.scaleRows(wk, h * d, (h + 1) * d, Math.pow(gamma[h], 1 - alpha));
      }
    }
    return new Result(wq, wk, gamma);
  }

  public static Result apply(TensorOps ops, Tensor wq, Tensor wk, double[] sMax, double tau, double alpha) {
    double[] t = new double[sMax.length];
    java.util.Arrays.fill(t, tau);
    return apply(ops, wq, wk, sMax, t, alpha);
  }
}
