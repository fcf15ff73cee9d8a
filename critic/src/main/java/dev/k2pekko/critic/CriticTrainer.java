package dev.k2pekko.critic;

import dev.k2pekko.optim.AdamW;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Trains a {@link CriticModel} by minibatch gradient descent on binary cross-entropy against the judge's verdicts,
 * with the {@code optim} module's AdamW for every parameter (on the plain-Java backend: the critic is small and
 * sparse, a few seconds on one core). A retraining starts from the weights it is given (warm start) with fresh
 * optimizer moments.
 */
public final class CriticTrainer {
  private CriticTrainer() {}

  /** One labelled example: a trajectory's features and whether the judge accepted it. */
  public record Example(int[] features, boolean accepted) {}

  /** @param epochs passes over the data; @param batchSize examples per step; @param lr, weightDecay AdamW's */
  public record Settings(int epochs, int batchSize, double lr, double weightDecay, long seed) {
    public Settings {
      if (epochs < 1 || batchSize < 1) throw new IllegalArgumentException("k2.critic.epochs and batch-size must be at least 1");
      if (!(lr > 0) || !(weightDecay >= 0)) throw new IllegalArgumentException("k2.critic.lr must be > 0 and weight-decay >= 0");
    }
  }

  /** What a training did: the model, its steps and the mean training loss of its first and last epoch. */
  public record Trained(CriticModel model, int steps, double firstEpochLoss, double lastEpochLoss) {}

  public static Trained train(CriticModel start, List<Example> data, Settings s) {
    if (data.isEmpty()) throw new IllegalArgumentException("no examples to train the critic on");
    // every bucket of the data counts from the first step on, so the steps are those of a model without the mask
    start = start.withTrained(data.stream().map(Example::features).toList());
    var cfg = new AdamW.Config(0.9, 0.99, 1e-8, s.weightDecay());
    // no weight decay on the biases: it would pull the base rate towards one half
    var noDecay = new AdamW.Config(cfg.beta1(), cfg.beta2(), cfg.eps(), 0);
    int h = start.hidden();
    // parameters E (buckets x H), b (H), w (H), c (1), stepped in place (AdamW.stepInPlace) with their moments
    double[][] w = {start.embed().clone(), start.bias().clone(), start.out().clone(), {start.outBias()}};
    double[][] m = new double[4][], v = new double[4][];
    for (int i = 0; i < 4; i++) {
      m[i] = new double[w[i].length];
      v[i] = new double[w[i].length];
    }
    var model = new CriticModel(start.buckets(), h, w[0], w[1], w[2], w[3][0], start.trained());
    var rnd = new SplittableRandom(s.seed());
    int[] order = new int[data.size()];
    for (int i = 0; i < order.length; i++) order[i] = i;
    int step = 0;
    double first = Double.NaN, last = Double.NaN;
    for (int epoch = 0; epoch < s.epochs(); epoch++) {
      for (int i = order.length - 1; i > 0; i--) { // Fisher-Yates from the seeded stream
        int j = rnd.nextInt(i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
      double lossSum = 0;
      int batches = 0;
      for (int from = 0; from < order.length; from += s.batchSize()) {
        int to = Math.min(order.length, from + s.batchSize());
        var xs = new ArrayList<int[]>(to - from);
        boolean[] ys = new boolean[to - from];
        for (int k = from; k < to; k++) {
          xs.add(data.get(order[k]).features());
          ys[k - from] = data.get(order[k]).accepted();
        }
        var g = model.lossAndGradient(xs, ys);
        lossSum += g.loss();
        batches++;
        step++;
        double[][] grads = {g.embed(), g.bias(), g.out(), {g.outBias()}};
        for (int p = 0; p < 4; p++) AdamW.stepInPlace(w[p], grads[p], m[p], v[p], step, s.lr(), p == 0 || p == 2 ? cfg : noDecay);
        // over the arrays just stepped (c is a copy: a double)
        model = new CriticModel(start.buckets(), h, w[0], w[1], w[2], w[3][0], start.trained());
      }
      double mean = lossSum / batches;
      if (epoch == 0) first = mean;
      last = mean;
    }
    return new Trained(model, step, first, last);
  }
}
