package dev.k2pekko.optim;

/**
 * Adaptive QK-Clip (off by default): a per-head threshold from running statistics of that head's max
 * logit. Each head keeps an exponential moving mean and variance of S_max^h; its threshold is
 * mean + kappa*std, clamped to [tauMin, tau]. A head whose logits jump far above its own history is
 * clipped back towards it even while under the global tau; during warm-up the threshold is tau.
 */
public final class AdaptiveThreshold {
  public record Config(double tau, double tauMin, double kappa, double decay, int warmup) {
    public static Config defaults(double tau) {
      return new Config(tau, tau / 4, 3.0, 0.98, 20);
    }
  }

  private final Config cfg;
  private final double[][] mean, var;
  private int seen;

  public AdaptiveThreshold(Config cfg, int layers, int heads) {
    this.cfg = cfg;
    this.mean = new double[layers][heads];
    this.var = new double[layers][heads];
  }

  /** Thresholds (layers, heads) for the current step, before observing it. */
  public double[][] thresholds() {
    double[][] t = new double[mean.length][mean[0].length];
    for (int l = 0; l < t.length; l++) {
      for (int h = 0; h < t[l].length; h++) {
        double adaptive = mean[l][h] + cfg.kappa() * Math.sqrt(var[l][h]);
        t[l][h] = seen < cfg.warmup() ? cfg.tau() : Math.max(cfg.tauMin(), Math.min(cfg.tau(), adaptive));
      }
    }
    return t;
  }

  /**
   * Folds one step's maxLogit (layers, heads) into the running statistics. A head without a finite maximum (a step
   * whose forward passes computed nothing reports -Infinity) is not a measurement: its statistics stay as they are,
   * where folding it in would make its mean and threshold NaN and stop its clipping for the rest of the run.
   */
  public void observe(double[][] maxLogit) {
    double a = seen == 0 ? 0.0 : cfg.decay();
    for (int l = 0; l < mean.length; l++) {
      for (int h = 0; h < mean[l].length; h++) {
        double x = maxLogit[l][h], delta = x - mean[l][h];
        if (!Double.isFinite(x)) continue;
        mean[l][h] += (1 - a) * delta;
        var[l][h] = a * (var[l][h] + (1 - a) * delta * delta);
      }
    }
    seen++;
  }
}
