package dev.k2pekko.ops;

import java.util.Random;
import java.util.function.Function;

/** Finite differences and comparisons shared by the op tests. */
final class Checks {
  private Checks() {}

  static double[] gaussian(Random rnd, int n, double scale) {
    double[] d = new double[n];
    for (int i = 0; i < n; i++) d[i] = rnd.nextGaussian() * scale;
    return d;
  }

  static HostTensor randn(Random rnd, int rows, int cols) {
    return new HostTensor(rows, cols, gaussian(rnd, rows * cols, 1.0));
  }

  /** ||a-b|| / max(||a||, ||b||, tiny): the norm-wise relative error. */
  static double relError(double[] a, double[] b) {
    double diff = 0, na = 0, nb = 0;
    for (int i = 0; i < a.length; i++) {
      diff += (a[i] - b[i]) * (a[i] - b[i]);
      na += a[i] * a[i];
      nb += b[i] * b[i];
    }
    return Math.sqrt(diff) / Math.max(Math.max(Math.sqrt(na), Math.sqrt(nb)), 1e-300);
  }

  static double dot(double[] a, double[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) s += a[i] * b[i];
    return s;
  }

  /** Central differences of the scalar loss(x) at every coordinate of x. */
  static double[] numericGradient(double[] x, Function<double[], Double> loss) {
    double h = 1e-5;
    double[] g = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      double keep = x[i];
      x[i] = keep + h;
      double up = loss.apply(x);
      x[i] = keep - h;
      double down = loss.apply(x);
      x[i] = keep;
      g[i] = (up - down) / (2 * h);
    }
    return g;
  }
}
