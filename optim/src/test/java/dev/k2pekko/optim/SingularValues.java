package dev.k2pekko.optim;

import dev.k2pekko.ops.HostTensor;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;

/** Singular values of a matrix in fp64: square roots of the eigenvalues of its smaller Gram matrix, by cyclic Jacobi. */
final class SingularValues {
  private SingularValues() {}

  static double[] of(Tensor x) {
    var ops = ReferenceOps.INSTANCE;
    // X X^T (R,R) when R <= K, else X^T X (K,K): same non-zero eigenvalues sigma^2
    Tensor gram = x.rows() <= x.cols() ? ops.matmul(x, false, x, true) : ops.matmul(x, true, x, false);
    double[] ev = symmetricEigenvalues(((HostTensor) gram).data().clone(), gram.rows());
    double[] s = new double[ev.length];
    for (int i = 0; i < s.length; i++) s[i] = Math.sqrt(Math.max(0, ev[i]));
    return s;
  }

  /** Eigenvalues of the symmetric n x n matrix a (row-major, overwritten) by cyclic Jacobi rotations. */
  static double[] symmetricEigenvalues(double[] a, int n) {
    for (int sweep = 0; sweep < 100; sweep++) {
      double off = 0, diag = 0;
      for (int i = 0; i < n; i++) {
        diag += a[i * n + i] * a[i * n + i];
        for (int j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
      }
      if (off <= 1e-30 * diag) break;
      for (int p = 0; p < n; p++) {
        for (int q = p + 1; q < n; q++) {
          double apq = a[p * n + q];
          if (Math.abs(apq) < 1e-300) continue;
          double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
          double t = Math.signum(theta) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
          if (theta == 0) t = 1;
          double c = 1 / Math.sqrt(t * t + 1), s = t * c;
          for (int k = 0; k < n; k++) { // rotate columns p, q
            double akp = a[k * n + p], akq = a[k * n + q];
            a[k * n + p] = c * akp - s * akq;
            a[k * n + q] = s * akp + c * akq;
          }
          for (int k = 0; k < n; k++) { // rotate rows p, q
            double apk = a[p * n + k], aqk = a[q * n + k];
            a[p * n + k] = c * apk - s * aqk;
            a[q * n + k] = s * apk + c * aqk;
          }
        }
      }
    }
    double[] ev = new double[n];
    for (int i = 0; i < n; i++) ev[i] = a[i * n + i];
    return ev;
  }
}
