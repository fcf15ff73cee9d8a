package dev.k2pekko.model;

import static org.junit.jupiter.api.Assertions.*;

import dev.k2pekko.ops.ReferenceOps;
import java.util.Random;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SamplerTest {
  static final ModelConfig CFG = new ModelConfig(13, 16, 2, 4, 16, 2, 1e-5);
  final PolicyModel model = new PolicyModel(CFG, ReferenceOps.INSTANCE, 11);

  @Test
  void greedyIsArgmaxAndTopOneIsGreedy() {
    double[] logits = {0.1, 2.0, -1, 1.9};
    assertEquals(1, Sampler.pick(logits, 0, 0, new SplittableRandom(1)));
    for (int i = 0; i < 50; i++) assertEquals(1, Sampler.pick(logits, 1.0, 1, new SplittableRandom(i)));
  }

  @Test
  void topKNeverLeavesTheTopK() {
    double[] logits = new Random(5).doubles(20, -3, 3).toArray();
    double[] sorted = logits.clone();
    java.util.Arrays.sort(sorted);
    var rng = new SplittableRandom(9);
    for (int i = 0; i < 2000; i++) assertTrue(logits[Sampler.pick(logits, 2.0, 3, rng)] >= sorted[17]);
  }

  @Test
  void samplingFrequenciesFollowTheTemperedSoftmax() {
    double[] logits = {1.0, 0.0, -1.0};
    double temp = 0.5;
    double z = 0;
    for (double l : logits) z += Math.exp(l / temp);
    var rng = new SplittableRandom(3);
    int n = 40_000;
    int[] counts = new int[3];
    for (int i = 0; i < n; i++) counts[Sampler.pick(logits, temp, 0, rng)]++;
    for (int i = 0; i < 3; i++) {
      double p = Math.exp(logits[i] / temp) / z;
      assertEquals(p, counts[i] / (double) n, 4 * Math.sqrt(p * (1 - p) / n));
    }
  }

  @Test
  void logProbOfASequenceIsTheSumOfIncrementalLogProbs() {
    int[] prompt = {1, 5, 7}, actions = {2, 9, 4, 3};
    double expect = 0;
    int[] prefix = prompt;
    for (int a : actions) {
      var f = model.forward(prefix, 1, prefix.length);
      double[] all = f.logits().toDoubles();
      double[] row = java.util.Arrays.copyOfRange(all, all.length - CFG.vocab(), all.length);
      double max = java.util.Arrays.stream(row).max().orElseThrow(), s = 0;
      for (double l : row) s += Math.exp(l - max);
      expect += row[a] - max - Math.log(s);
      prefix = java.util.Arrays.copyOf(prefix, prefix.length + 1);
      prefix[prefix.length - 1] = a;
    }
    assertEquals(expect, Sampler.logProb(model, prompt, actions), 1e-10);
  }

  @Test
  void sampleStopsAtTheStopTokenAndIsReproducible() {
    int[] prompt = {1, 2, 3};
    int[] a = Sampler.sample(model, prompt, 30, 1.0, 5, new SplittableRandom(42), 4);
    int[] b = Sampler.sample(model, prompt, 30, 1.0, 5, new SplittableRandom(42), 4);
    assertArrayEquals(a, b);
    assertTrue(a.length <= 30 && a.length >= 1);
    for (int i = 0; i < a.length - 1; i++) assertNotEquals(4, a[i]);
  }
}
