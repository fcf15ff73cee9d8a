package dev.k2pekko.model;

import dev.k2pekko.ops.Tensor;
import java.util.Arrays;
import java.util.random.RandomGenerator;

/** Autoregressive sampling with temperature and top-k, and the log-probability of a given continuation. */
public final class Sampler {
  private Sampler() {}

  /**
   * Draws up to maxNew tokens after prompt, stopping after stopId. temperature 0 is greedy; topK 0 keeps
   * the whole vocabulary. The window is the last {@code context} tokens (no KV cache yet: each step runs
   * the full forward over the window, which is what the small CPU policy can afford).
   */
  public static int[] sample(PolicyModel model, int[] prompt, int maxNew, double temperature, int topK, RandomGenerator rng, int stopId) {
    int context = model.config().context();
    int[] seq = Arrays.copyOf(prompt, prompt.length + maxNew);
    int len = prompt.length;
    for (int step = 0; step < maxNew; step++) {
      int from = Math.max(0, len - context);
      int[] window = Arrays.copyOfRange(seq, from, len);
      double[] logits;
      try (var scope = model.ops().scope()) {
        logits = lastRow(model.forward(window, 1, window.length).logits());
      }
      int next = pick(logits, temperature, topK, rng);
      seq[len++] = next;
      if (next == stopId) break;
    }
    return Arrays.copyOfRange(seq, prompt.length, len);
  }

  private static double[] lastRow(Tensor logits) {
    double[] all = logits.toDoubles();
    int v = logits.cols();
    return Arrays.copyOfRange(all, all.length - v, all.length);
  }

  /** Picks a token from logits (V): argmax at temperature 0, else softmax(logits/temperature) over the top k. */
  public static int pick(double[] logits, double temperature, int topK, RandomGenerator rng) {
    int v = logits.length;
    if (temperature <= 0) {
      int best = 0;
      for (int i = 1; i < v; i++) if (logits[i] > logits[best]) best = i;
      return best;
    }
    double cutoff = Double.NEGATIVE_INFINITY;
    if (topK > 0 && topK < v) {
      double[] sorted = logits.clone();
      Arrays.sort(sorted);
      cutoff = sorted[v - topK];
    }
    double max = Double.NEGATIVE_INFINITY;
    for (double l : logits) max = Math.max(max, l);
    double[] p = new double[v];
    double sum = 0;
    for (int i = 0; i < v; i++) {
      if (logits[i] >= cutoff) sum += p[i] = Math.exp((logits[i] - max) / temperature);
    }
    double u = rng.nextDouble() * sum;
    for (int i = 0; i < v; i++) {
      u -= p[i];
      if (u < 0 && p[i] > 0) return i;
    }
    for (int i = v - 1; i >= 0; i--) if (p[i] > 0) return i;
    throw new IllegalStateException("no token to pick");
  }

  /** log pi(actions | prompt): the sum of the log-probabilities of each action token given everything before it. */
  public static double logProb(PolicyModel model, int[] prompt, int[] actions) {
    var batch = TokenBatch.of(java.util.List.of(Sequence.of(prompt, actions)), 0);
    return Losses.sequenceLogProbs(model, batch)[0];
  }
}
