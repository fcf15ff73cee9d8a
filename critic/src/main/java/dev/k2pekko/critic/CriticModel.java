package dev.k2pekko.critic;

import java.util.List;
import java.util.SplittableRandom;

/**
 * The critic: a one-hidden-layer MLP over the hashed features of a trajectory ({@link TrajectoryFeatures}), whose
 * output is the log-odds that the judge accepts it.
 * <pre>
 *   z    (H)   = b + (1/sqrt(n)) * sum over the n features f of E[f]      E (buckets, H): a bag of feature embeddings
 *   h    (H)   = tanh(z)
 *   logit      = w . h + c                                                  p(accept) = sigmoid(logit)
 * </pre>
 * Immutable once built: the trainer makes a new one per step, so a model can be shared between threads (a scorer
 * holds it while the actor trains the next). The arrays are never written after construction.
 *
 * <p><b>Only trained features count.</b> A bucket no training example ever held keeps its random initial row of E, and
 * an episode with features the critic never saw (an open task's {@code notes.append}, a tool no verifiable task uses)
 * would get a random push from them: a direction RL can find and climb that says nothing about the episode. So E[f] of
 * a bucket outside {@code trained} counts as 0, its prior mean (what an ensemble of critics with different initial
 * weights would average to), while n still counts it. Training is unchanged: the trainer marks every bucket of its
 * data before its first step. The node's critic scores with the mask only under {@code k2.critic.mask-untrained} (off
 * by default: measured no better, docs/LOOP.md "Session 16"); {@link #unmasked()} is the model without it.
 *
 * @param embed E, row-major (buckets, hidden); @param bias b (hidden); @param out w (hidden); @param outBias c;
 * @param trained the buckets some training example held, one bit each ({@code buckets} bits)
 */
public record CriticModel(int buckets, int hidden, double[] embed, double[] bias, double[] out, double outBias, long[] trained) {
  public CriticModel {
    if (buckets < 2 || hidden < 1) throw new IllegalArgumentException("critic shape (" + buckets + ", " + hidden + ") too small");
    if (embed.length != buckets * hidden || bias.length != hidden || out.length != hidden) {
      throw new IllegalArgumentException("critic parameters do not match the shape (" + buckets + ", " + hidden + ")");
    }
    if (trained.length != words(buckets)) throw new IllegalArgumentException("critic's trained buckets do not match its " + buckets + " buckets");
  }

  /** A model whose every bucket counts as trained. */
  public CriticModel(int buckets, int hidden, double[] embed, double[] bias, double[] out, double outBias) {
    this(buckets, hidden, embed, bias, out, outBias, all(buckets));
  }

  /** Random initial weights: E ~ N(0, 0.5^2), w ~ N(0, 1/H), b = c = 0; no bucket trained yet. */
  public static CriticModel init(int buckets, int hidden, long seed) {
    var rnd = new SplittableRandom(seed);
    double[] e = new double[buckets * hidden], w = new double[hidden];
    for (int i = 0; i < e.length; i++) e[i] = 0.5 * gaussian(rnd);
    for (int i = 0; i < w.length; i++) w[i] = gaussian(rnd) / Math.sqrt(hidden);
    return new CriticModel(buckets, hidden, e, new double[hidden], w, 0, new long[words(buckets)]);
  }

  /** This model with the buckets of {@code examples}' features marked trained as well. */
  public CriticModel withTrained(java.util.Collection<int[]> examples) {
    long[] t = trained.clone();
    for (int[] x : examples) for (int f : x) t[f >>> 6] |= 1L << f;
    return new CriticModel(buckets, hidden, embed, bias, out, outBias, t);
  }

  /** This model with every bucket counted, trained or not: the critic as it scored before the mask (for comparisons). */
  public CriticModel unmasked() {
    return new CriticModel(buckets, hidden, embed, bias, out, outBias, all(buckets));
  }

  /** Whether some training example held bucket {@code f}. */
  public boolean isTrained(int f) {
    return (trained[f >>> 6] & (1L << f)) != 0;
  }

  private static int words(int buckets) {
    return (buckets + 63) >>> 6;
  }

  private static long[] all(int buckets) {
    long[] t = new long[words(buckets)];
    java.util.Arrays.fill(t, -1L);
    return t;
  }

  /** The hidden layer's pre-activation z (H) of one example. */
  private double[] preActivation(int[] features) {
    double[] z = bias.clone();
    if (features.length == 0) return z;
    double scale = 1.0 / Math.sqrt(features.length);
    for (int f : features) {
      if (!isTrained(f)) continue; // E[f] counts as 0 (above)
      int o = f * hidden;
      for (int j = 0; j < hidden; j++) z[j] += scale * embed[o + j];
    }
    return z;
  }

  /** The log-odds of acceptance. */
  public double logit(int[] features) {
    double[] z = preActivation(features);
    double s = outBias;
    for (int j = 0; j < hidden; j++) s += out[j] * Math.tanh(z[j]);
    return s;
  }

  /** The probability that the judge accepts the trajectory with these features. */
  public double score(int[] features) {
    return sigmoid(logit(features));
  }

  /** The mean binary cross-entropy over a batch and its gradient, in the parameters' layouts. */
  public record Gradient(double loss, double[] embed, double[] bias, double[] out, double outBias) {}

  /**
   * Forward and backward over a batch: loss = mean_i BCE(sigmoid(logit_i), y_i), computed from the logit so that it
   * stays finite. dlogit_i = (p_i - y_i)/B; dw = dlogit h; dc = dlogit; dz = dlogit w (1 - h^2); db = dz;
   * dE[f] += dz / sqrt(n) for each feature f of the example.
   */
  public Gradient lossAndGradient(List<int[]> xs, boolean[] ys) {
    if (xs.size() != ys.length || xs.isEmpty()) throw new IllegalArgumentException("a batch needs as many labels as examples, and one at least");
    double[] ge = new double[embed.length], gb = new double[hidden], gw = new double[hidden];
    double gc = 0, loss = 0;
    int batch = xs.size();
    double[] h = new double[hidden], dz = new double[hidden];
    for (int i = 0; i < batch; i++) {
      int[] x = xs.get(i);
      double[] z = preActivation(x);
      double logit = outBias;
      for (int j = 0; j < hidden; j++) {
        h[j] = Math.tanh(z[j]);
        logit += out[j] * h[j];
      }
      double y = ys[i] ? 1 : 0;
      loss += Math.max(logit, 0) - y * logit + Math.log1p(Math.exp(-Math.abs(logit)));
      double dl = (sigmoid(logit) - y) / batch;
      gc += dl;
      double scale = x.length == 0 ? 0 : 1.0 / Math.sqrt(x.length);
      for (int j = 0; j < hidden; j++) {
        gw[j] += dl * h[j];
        dz[j] = dl * out[j] * (1 - h[j] * h[j]);
        gb[j] += dz[j];
        dz[j] *= scale;
      }
      for (int f : x) {
        if (!isTrained(f)) continue; // not in the forward pass, so no gradient
        int o = f * hidden;
        for (int j = 0; j < hidden; j++) ge[o + j] += dz[j];
      }
    }
    return new Gradient(loss / batch, ge, gb, gw, gc);
  }

  static double sigmoid(double x) {
    return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
  }

  private static double gaussian(SplittableRandom rnd) {
    return rnd.nextGaussian();
  }
}
