package dev.k2pekko.trainer;

import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.optim.QkClip;
import java.util.function.Function;

/**
 * QK-Clip's cap at the learner ({@code k2.ps.enforce-at-learners}). The parameter server rescales the heads the step's
 * forward passes found over the threshold, after the update; those maxima are of the batch just trained, so the next
 * batch can still find a head over tau (in seed 42's SFT one step in about 600 does: layer 1 head 2 measured 9.7 on one
 * batch and 16.9 on the next, a batch effect no rescale of the batch before can foresee; docs/LOOP.md, "Clip-monitor").
 * A learner whose forward pass finds a head over tau therefore rescales that head in its own copy of the weights, to the
 * parameter server's target (tau x (1 - headroom)) with the optimizer's rule, and computes the step again: no gradient
 * comes from a forward pass with a head over tau. The parameter server applies the same rescale with the step, from the
 * maxima at the weights as served, which the learner reports next to the ones it trained on.
 *
 * @param tau the cap (k2.ps.tau); {@link #OFF}: infinite
 * @param target where a head over the cap is rescaled to
 * @param alpha W_q rows get gamma^alpha, W_k rows gamma^(1-alpha), as the parameter server does
 */
public record LearnerClip(double tau, double target, double alpha) {
  /** No cap: the gradient always comes from the weights as served. */
  public static final LearnerClip OFF = new LearnerClip(Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY, QkClip.DEFAULT_ALPHA);

  public LearnerClip {
    if (!(tau > 0) || !(target > 0) || target > tau) throw new IllegalArgumentException("LearnerClip needs 0 < target <= tau, got " + target + ", " + tau);
  }

  /** Whether a forward pass's maxima (layers x heads) have a head over the cap. */
  public boolean over(double[][] maxLogit) {
    for (double[] row : maxLogit) for (double v : row) if (v > tau) return true;
    return false;
  }

  /** A step's result with the maxima at the weights as served ({@code measured}) and of the pass it trained on. */
  record Clipped<R>(R result, double[][] measured, int passes) {}

  /**
   * Runs {@code step} on {@code model}; while its forward pass has a head over the cap, rescales those heads of the
   * model's W_q / W_k to the target and runs it again, at most layers + 1 times (a rescale in layer l changes what the
   * layers above it see, so a head there can rise).
   */
  <R> Clipped<R> run(PolicyModel model, Function<PolicyModel, R> step, Function<R, double[][]> maxLogit) {
    R r = step.apply(model);
    double[][] measured = maxLogit.apply(r);
    int passes = 0;
    while (over(maxLogit.apply(r)) && passes <= model.config().layers()) {
      rescale(model, maxLogit.apply(r));
      r = step.apply(model);
      passes++;
    }
    return new Clipped<>(r, measured, passes);
  }

  /** Rescales every head over the cap to the target, in place. */
  void rescale(PolicyModel model, double[][] maxLogit) {
    for (int l = 0; l < maxLogit.length; l++) {
      double[] thresholds = new double[maxLogit[l].length];
      for (int h = 0; h < thresholds.length; h++) thresholds[h] = maxLogit[l][h] > tau ? target : Double.POSITIVE_INFINITY;
      String q = PolicyModel.queryWeight(l), k = PolicyModel.keyWeight(l);
      var r = QkClip.apply(model.ops(), model.parameter(q), model.parameter(k), maxLogit[l], thresholds, alpha);
      if (!r.clipped()) continue;
      model.setParameter(q, r.wq());
      model.setParameter(k, r.wk());
    }
  }
}
