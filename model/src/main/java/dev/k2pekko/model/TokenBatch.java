package dev.k2pekko.model;

import java.util.List;

/**
 * Sequences packed for teacher forcing: inputs ids (B*T) = tokens[0..n-2] right-padded, targets
 * (B*T) = tokens[1..n-1], mask (B*T) = 1 where the target is an action token. Right padding is safe
 * under the causal mask: pads come after every real token and carry mask 0.
 */
public record TokenBatch(int[] ids, int[] targets, double[] mask, int batch, int seq) {
  public static TokenBatch of(List<Sequence> sequences, int padId) {
    int seq = 0;
    for (Sequence s : sequences) seq = Math.max(seq, s.length() - 1);
    int b = sequences.size();
    int[] ids = new int[b * seq], targets = new int[b * seq];
    double[] mask = new double[b * seq];
    java.util.Arrays.fill(ids, padId);
    java.util.Arrays.fill(targets, padId);
    for (int i = 0; i < b; i++) {
      Sequence s = sequences.get(i);
      for (int t = 0; t < s.length() - 1; t++) {
        ids[i * seq + t] = s.tokens()[t];
        targets[i * seq + t] = s.tokens()[t + 1];
        mask[i * seq + t] = s.action()[t + 1] ? 1 : 0;
      }
    }
    return new TokenBatch(ids, targets, mask, b, seq);
  }

  public double maskedCount() {
    double n = 0;
    for (double m : mask) n += m;
    return n;
  }
}
