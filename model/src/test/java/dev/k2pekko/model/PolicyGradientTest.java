package dev.k2pekko.model;

import static org.junit.jupiter.api.Assertions.*;

import dev.k2pekko.ops.HostTensor;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.ToDoubleFunction;
import org.junit.jupiter.api.Test;

/** The whole policy's backward, and both losses, against central finite differences in fp64. */
class PolicyGradientTest {
  static final ModelConfig TINY = new ModelConfig(11, 8, 2, 2, 7, 2, 1e-5);
  final ReferenceOps ops = ReferenceOps.INSTANCE;

  static TokenBatch batch(Random rnd, int n, int len, int vocab) {
    var seqs = new java.util.ArrayList<Sequence>();
    for (int i = 0; i < n; i++) {
      int l = len - rnd.nextInt(2); // ragged, so padding is exercised
      int[] prompt = rnd.ints(3, 1, vocab).toArray();
      int[] actions = rnd.ints(l - 3, 1, vocab).toArray();
      seqs.add(Sequence.of(prompt, actions));
    }
    return TokenBatch.of(seqs, 0);
  }

  /** Compares the analytic gradient of every parameter with central differences of loss(model). */
  static void checkAllParameters(PolicyModel model, Map<String, Tensor> grads, ToDoubleFunction<PolicyModel> loss) {
    double h = 1e-5, numNorm = 0;
    for (var e : model.parameters().entrySet()) {
      String name = e.getKey();
      double diff = 0, norm = 0;
      HostTensor w = (HostTensor) e.getValue();
      double[] g = grads.get(name).toDoubles();
      double[] d = w.data().clone();
      for (int i = 0; i < d.length; i++) {
        double keep = d[i];
        d[i] = keep + h;
        model.setParameter(name, new HostTensor(w.rows(), w.cols(), d.clone()));
        double up = loss.applyAsDouble(model);
        d[i] = keep - h;
        model.setParameter(name, new HostTensor(w.rows(), w.cols(), d.clone()));
        double down = loss.applyAsDouble(model);
        d[i] = keep;
        double num = (up - down) / (2 * h);
        diff += (num - g[i]) * (num - g[i]);
        norm += g[i] * g[i];
        numNorm += num * num;
      }
      model.setParameter(name, w);
      double paramErr = Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-6);
      assertTrue(paramErr <= 1e-6, name + ": relative error " + paramErr);
    }
    assertTrue(Math.sqrt(numNorm) > 1e-2, "gradient trivially small");
  }

  @Test
  void nextTokenLossGradient() {
    var rnd = new Random(1);
    var model = new PolicyModel(TINY, ops, 3);
    TokenBatch b = batch(rnd, 3, 7, TINY.vocab());
    var res = Losses.nextToken(model, b);
    assertTrue(res.loss() > 0);
    checkAllParameters(model, res.grads(), m -> Losses.nextTokenLoss(m, b));
  }

  @Test
  void k2RlLossGradient() {
    var rnd = new Random(2);
    var model = new PolicyModel(TINY, ops, 4);
    TokenBatch b = batch(rnd, 4, 7, TINY.vocab());
    double[] rewards = {1.0, 0.0, 0.5, 0.25};
    double[] old = Losses.sequenceLogProbs(new PolicyModel(TINY, ops, 5), b);
    double tau = 0.3;
    var res = Losses.k2Rl(model, b, rewards, old, tau);
    checkAllParameters(model, res.grads(), m -> Losses.k2RlLoss(m, b, rewards, old, tau));
  }

  @Test
  void k2RlLossMatchesItsFormula() {
    var rnd = new Random(3);
    var model = new PolicyModel(TINY, ops, 6);
    TokenBatch b = batch(rnd, 3, 6, TINY.vocab());
    double[] rewards = {2, -1, 0.5}, old = {-7, -9, -8};
    double[] lp = Losses.sequenceLogProbs(model, b);
    double mean = (2 - 1 + 0.5) / 3, expect = 0;
    for (int i = 0; i < 3; i++) expect += Math.pow(rewards[i] - mean - 0.1 * (lp[i] - old[i]), 2) / 3;
    assertEquals(expect, Losses.k2Rl(model, b, rewards, old, 0.1).loss(), 1e-12);
  }

  @Test
  void aboveMeanSampleGainsProbabilityAfterAStep() {
    var rnd = new Random(4);
    var model = new PolicyModel(TINY, ops, 7);
    // K = 4 samples of one prompt, as in RL
    int[] prompt = {1, 2, 3};
    var samples = new java.util.ArrayList<Sequence>();
    for (int i = 0; i < 4; i++) samples.add(Sequence.of(prompt, rnd.ints(4, 1, TINY.vocab()).toArray()));
    TokenBatch b = TokenBatch.of(samples, 0);
    double[] rewards = {1, 0, 0, 0};
    double[] before = Losses.sequenceLogProbs(model, b);
    var res = Losses.k2Rl(model, b, rewards, before, 0.5);
    for (var e : res.grads().entrySet()) {
      model.setParameter(e.getKey(), ops.linear(1, model.parameter(e.getKey()), -0.01, e.getValue()));
    }
    double[] after = Losses.sequenceLogProbs(model, b);
    assertTrue(after[0] > before[0], "rewarded sample: " + before[0] + " -> " + after[0]);
    double lossAfter = Losses.k2Rl(model, b, rewards, before, 0.5).loss();
    assertTrue(lossAfter < res.loss(), res.loss() + " -> " + lossAfter);
  }

  @Test
  void maskedTokensDoNotTrain() {
    var model = new PolicyModel(TINY, ops, 8);
    // only the last token is an action: perturbing the loss target of a prompt token changes nothing
    var s1 = Sequence.of(new int[] {1, 2, 3, 4}, new int[] {5});
    var s2 = Sequence.of(new int[] {1, 2, 9, 4}, new int[] {5});
    double l1 = Losses.nextToken(model, TokenBatch.of(List.of(s1), 0)).loss();
    double l2 = Losses.nextToken(model, TokenBatch.of(List.of(s2), 0)).loss();
    assertNotEquals(l1, l2); // the prompt still conditions the action...
    var f = model.forward(new int[] {1, 2, 3, 4}, 1, 4);
    double[] nll = ops.crossEntropy(f.logits(), new int[] {2, 3, 4, 5}, new double[] {0, 0, 0, 1});
    assertEquals(nll[3], l1, 1e-12); // ...but only the action's next-token loss counts
  }
}
