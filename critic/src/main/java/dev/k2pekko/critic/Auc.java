package dev.k2pekko.critic;

import java.util.Arrays;

/**
 * ROC AUC: the probability that a positive example (accepted by the judge) scores higher than a negative one, a tie
 * counting one half. Computed from ranks (the Mann-Whitney U statistic): sort the scores, give each run of tied
 * scores the average of its ranks, then AUC = (sum of the positives' ranks - P(P+1)/2) / (P N). O(n log n).
 */
public final class Auc {
  private Auc() {}

  /** The AUC of {@code scores} against {@code positive}; NaN when either class is empty (it is then undefined). */
  public static double of(double[] scores, boolean[] positive) {
    if (scores.length != positive.length) throw new IllegalArgumentException(scores.length + " scores for " + positive.length + " labels");
    int n = scores.length;
    long pos = 0;
    for (boolean p : positive) if (p) pos++;
    long neg = n - pos;
    if (pos == 0 || neg == 0) return Double.NaN;
    Integer[] order = new Integer[n];
    for (int i = 0; i < n; i++) {
      if (Double.isNaN(scores[i])) throw new IllegalArgumentException("score " + i + " is NaN");
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Double.compare(scores[a], scores[b]));
    double rankSum = 0;
    for (int i = 0; i < n; ) {
      int j = i;
      while (j + 1 < n && scores[order[j + 1]] == scores[order[i]]) j++;
      double rank = (i + j) / 2.0 + 1; // ranks i+1..j+1, averaged
      for (int k = i; k <= j; k++) if (positive[order[k]]) rankSum += rank;
      i = j + 1;
    }
    return (rankSum - pos * (pos + 1) / 2.0) / ((double) pos * neg);
  }
}
