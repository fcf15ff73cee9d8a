package dev.k2pekko.trainer;

import dev.k2pekko.protocol.Verdict;

/**
 * The RL reward of an episode: the verifiable checks and the judge's rubric score (the self-critique), combined so
 * that the critic is kept honest by the verifiable part. The verifiable score (the fraction of end-state checks,
 * the no-side-effect check and the answer check that pass) carries 0.7 of the reward; the rubric score adds up to
 * 0.3 only when every verifiable check passes. An episode that games the rubric without doing the task gains
 * nothing from it, and among correct episodes the critic prefers the clean ones (no redundant or forbidden calls).
 */
public final class Reward {
  private Reward() {}

  public static final double VERIFIABLE_WEIGHT = 0.7;

  public static double of(Verdict v) {
    double verifiable = v.verifiableScore();
    if (verifiable >= 1.0 - 1e-12) return VERIFIABLE_WEIGHT + (1 - VERIFIABLE_WEIGHT) * v.rubricScore();
    return VERIFIABLE_WEIGHT * verifiable;
  }
}
