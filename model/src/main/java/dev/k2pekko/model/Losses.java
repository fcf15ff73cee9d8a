package dev.k2pekko.model;

import dev.k2pekko.ops.Tensor;
import java.util.Map;

/** The two training objectives of the policy, each with its gradient. */
public final class Losses {
  private Losses() {}

  /** loss, gradient by parameter name, and the forward pass's maxLogit[layer][head] for QK-Clip. */
  public record Result(double loss, Map<String, Tensor> grads, double[][] maxLogit) {}

  /** SFT: mean next-token cross-entropy over the action tokens only (mask), 0 if there are none. */
  public static Result nextToken(PolicyModel model, TokenBatch batch) {
    try (var scope = model.ops().scope()) { // activations and other temporaries are freed on return
      var f = model.forward(batch.ids(), batch.batch(), batch.seq());
      double[] nll = model.ops().crossEntropy(f.logits(), batch.targets(), batch.mask());
      double count = Math.max(1.0, batch.maskedCount());
      double[] dnll = new double[nll.length];
      for (int i = 0; i < nll.length; i++) dnll[i] = batch.mask()[i] / count;
      Tensor dlogits = model.ops().crossEntropyBackward(f.logits(), batch.targets(), dnll);
      return result(scope, meanMasked(nll, batch), model.backward(f, dlogits), f);
    }
  }

  /** The Result of a scoped loss: the gradients outlive the scope, the rest of the step does not. */
  private static Result result(dev.k2pekko.ops.TensorOps.Scope scope, double loss, Map<String, Tensor> grads, PolicyModel.Forward f) {
    scope.keepAll(grads.values());
    return new Result(loss, grads, f.maxLogit());
  }

  /** The loss of {@link #nextToken} alone: a forward pass, no backward. */
  public static double nextTokenLoss(PolicyModel model, TokenBatch batch) {
    try (var scope = model.ops().scope()) {
      var f = model.forward(batch.ids(), batch.batch(), batch.seq());
      return meanMasked(model.ops().crossEntropy(f.logits(), batch.targets(), batch.mask()), batch);
    }
  }

  private static double meanMasked(double[] nll, TokenBatch batch) {
    double loss = 0;
    for (double v : nll) loss += v;
    return loss / Math.max(1.0, batch.maskedCount());
  }

  /** log pi(y_i | x_i) of every sequence: the sum of log-probabilities of its action tokens. */
  public static double[] sequenceLogProbs(PolicyModel model, TokenBatch batch) {
    try (var scope = model.ops().scope()) {
      var f = model.forward(batch.ids(), batch.batch(), batch.seq());
      return perSequence(model.ops().crossEntropy(f.logits(), batch.targets(), batch.mask()), batch);
    }
  }

  private static double[] perSequence(double[] nll, TokenBatch batch) {
    double[] lp = new double[batch.batch()];
    for (int i = 0; i < nll.length; i++) lp[i / batch.seq()] -= nll[i];
    return lp;
  }

  /**
   * The K2 RL objective over K samples of one prompt:
   * {@code L = mean_i (r_i - mean(r) - tau * (log pi(y_i|x) - log pi_old(y_i|x)))^2}.
   * Here tau is the regulariser that keeps pi near pi_old, not the QK-Clip threshold.
   *
   * @param batch the K samples, their action tokens marked
   * @param rewards r (K)
   * @param logProbOld log pi_old(y_i|x) (K), from the policy that generated the samples
   */
  public static Result k2Rl(PolicyModel model, TokenBatch batch, double[] rewards, double[] logProbOld, double tau) {
    int[] identity = new int[batch.batch()];
    for (int i = 0; i < identity.length; i++) identity[i] = i;
    return k2Rl(model, batch, identity, rewards, logProbOld, tau);
  }

  /**
   * The K2 RL objective when each sample is several rows (one per action, each with its own context):
   * {@code log pi(y_i|x) = sum of the rows r with sampleOfRow[r] == i}. With one row per sample it is {@link #k2Rl}.
   */
  public static Result k2Rl(PolicyModel model, TokenBatch batch, int[] sampleOfRow, double[] rewards, double[] logProbOld, double tau) {
    int k = rewards.length;
    if (sampleOfRow.length != batch.batch()) throw new IllegalArgumentException("need one sample index per row");
    try (var scope = model.ops().scope()) {
      var f = model.forward(batch.ids(), batch.batch(), batch.seq());
      double[] nll = model.ops().crossEntropy(f.logits(), batch.targets(), batch.mask());
      double[] rows = perSequence(nll, batch);
      double[] logp = new double[k];
      for (int r = 0; r < rows.length; r++) logp[sampleOfRow[r]] += rows[r];
      double[] delta = k2RlDeltas(logp, rewards, logProbOld, tau);
      double loss = 0;
      double[] dLdLogp = new double[k];
      for (int i = 0; i < k; i++) {
        loss += delta[i] * delta[i] / k;
        dLdLogp[i] = -2.0 * tau * delta[i] / k;
      }
      // log pi(y_i|x) = -sum of its rows' masked nll, so dL/dnll_t = -dL/dlogp_i on the action tokens of sample i's rows
      double[] dnll = new double[nll.length];
      for (int t = 0; t < nll.length; t++) dnll[t] = -dLdLogp[sampleOfRow[t / batch.seq()]] * batch.mask()[t];
      Tensor dlogits = model.ops().crossEntropyBackward(f.logits(), batch.targets(), dnll);
      return result(scope, loss, model.backward(f, dlogits), f);
    }
  }

  /** The loss of {@link #k2Rl} alone: a forward pass, no backward. */
  public static double k2RlLoss(PolicyModel model, TokenBatch batch, double[] rewards, double[] logProbOld, double tau) {
    double[] delta = k2RlDeltas(sequenceLogProbs(model, batch), rewards, logProbOld, tau);
    double loss = 0;
    for (double d : delta) loss += d * d / delta.length;
    return loss;
  }

  /** r_i - mean(r) - tau * (log pi(y_i|x) - log pi_old(y_i|x)) for each sample. */
  private static double[] k2RlDeltas(double[] logProb, double[] rewards, double[] logProbOld, double tau) {
    int k = logProb.length;
    if (rewards.length != k || logProbOld.length != k) throw new IllegalArgumentException("need one reward and old log-prob per sample");
    double mean = 0;
    for (double r : rewards) mean += r / k;
    double[] delta = new double[k];
    for (int i = 0; i < k; i++) delta[i] = rewards[i] - mean - tau * (logProb[i] - logProbOld[i]);
    return delta;
  }
}
