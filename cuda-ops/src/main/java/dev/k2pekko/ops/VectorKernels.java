package dev.k2pekko.ops;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Simd}'s loops on the Vector API: one lane per output element, so each element's additions keep the plain
 * loop's order. Loaded only when the module is present (a JVM without it never touches this class).
 */
final class VectorKernels {
  private VectorKernels() {}

  private static final VectorSpecies<Double> S = DoubleVector.SPECIES_PREFERRED;
  private static final int L = S.length();

  static int lanes() { return L; }

  static void matvecT(double[] wT, double[] v, int vAt, double[] out, int at, int rows, int cols, boolean add) {
    int i = 0;
    // four vectors of outputs at a time: four independent chains of additions
    for (; i + 4 * L <= rows; i += 4 * L) {
      var a0 = DoubleVector.zero(S);
      var a1 = DoubleVector.zero(S);
      var a2 = DoubleVector.zero(S);
      var a3 = DoubleVector.zero(S);
      for (int j = 0; j < cols; j++) {
        double vj = v[vAt + j];
        int r = j * rows + i;
        a0 = a0.add(DoubleVector.fromArray(S, wT, r).mul(vj));
        a1 = a1.add(DoubleVector.fromArray(S, wT, r + L).mul(vj));
        a2 = a2.add(DoubleVector.fromArray(S, wT, r + 2 * L).mul(vj));
        a3 = a3.add(DoubleVector.fromArray(S, wT, r + 3 * L).mul(vj));
      }
      store(a0, out, at + i, add);
      store(a1, out, at + i + L, add);
      store(a2, out, at + i + 2 * L, add);
      store(a3, out, at + i + 3 * L, add);
    }
    for (; i + L <= rows; i += L) {
      var a = DoubleVector.zero(S);
      for (int j = 0; j < cols; j++) a = a.add(DoubleVector.fromArray(S, wT, j * rows + i).mul(v[vAt + j]));
      store(a, out, at + i, add);
    }
    Simd.plainMatvecT(wT, v, vAt, out, at, rows, cols, add, i);
  }

  private static void store(DoubleVector sum, double[] out, int at, boolean add) {
    (add ? DoubleVector.fromArray(S, out, at).add(sum) : sum).intoArray(out, at);
  }

  static void matmulRow(double[] x, double[] y, double[] out, int i, int k, int n) {
    int o = i * n, xo = i * k, j = 0;
    // the row's outputs in registers, four vectors at a time, while p runs over k
    for (; j + 4 * L <= n; j += 4 * L) {
      var a0 = DoubleVector.fromArray(S, out, o + j);
      var a1 = DoubleVector.fromArray(S, out, o + j + L);
      var a2 = DoubleVector.fromArray(S, out, o + j + 2 * L);
      var a3 = DoubleVector.fromArray(S, out, o + j + 3 * L);
      for (int p = 0; p < k; p++) {
        double s = x[xo + p];
        if (s == 0.0) continue;
        int yo = p * n + j;
        a0 = a0.add(DoubleVector.fromArray(S, y, yo).mul(s));
        a1 = a1.add(DoubleVector.fromArray(S, y, yo + L).mul(s));
        a2 = a2.add(DoubleVector.fromArray(S, y, yo + 2 * L).mul(s));
        a3 = a3.add(DoubleVector.fromArray(S, y, yo + 3 * L).mul(s));
      }
      a0.intoArray(out, o + j);
      a1.intoArray(out, o + j + L);
      a2.intoArray(out, o + j + 2 * L);
      a3.intoArray(out, o + j + 3 * L);
    }
    for (; j + L <= n; j += L) {
      var a = DoubleVector.fromArray(S, out, o + j);
      for (int p = 0; p < k; p++) {
        double s = x[xo + p];
        if (s == 0.0) continue;
        a = a.add(DoubleVector.fromArray(S, y, p * n + j).mul(s));
      }
      a.intoArray(out, o + j);
    }
    Simd.plainMatmulRow(x, y, out, i, k, n, j);
  }

  /**
   * Rows i and i + 1 of out at once: each vector of y loaded serves both rows' products (a learner's matmul reads y, a
   * weight matrix, once per row of x: half the loads), eight independent chains of additions; each row's products
   * still added in p order, and a row skips the p where its own x is zero.
   */
  static void matmulRow2(double[] x, double[] y, double[] out, int i, int k, int n) {
    int o0 = i * n, o1 = o0 + n, x0 = i * k, x1 = x0 + k, j = 0;
    // a row whose x is zero at p adds nothing there (as the plain loop skips it): a mask, not a branch, so that the
    // accumulators stay in registers
    for (; j + 4 * L <= n; j += 4 * L) {
      var a0 = DoubleVector.fromArray(S, out, o0 + j);
      var a1 = DoubleVector.fromArray(S, out, o0 + j + L);
      var a2 = DoubleVector.fromArray(S, out, o0 + j + 2 * L);
      var a3 = DoubleVector.fromArray(S, out, o0 + j + 3 * L);
      var b0 = DoubleVector.fromArray(S, out, o1 + j);
      var b1 = DoubleVector.fromArray(S, out, o1 + j + L);
      var b2 = DoubleVector.fromArray(S, out, o1 + j + 2 * L);
      var b3 = DoubleVector.fromArray(S, out, o1 + j + 3 * L);
      for (int p = 0; p < k; p++) {
        double s = x[x0 + p], t = x[x1 + p];
        if (s == 0.0 && t == 0.0) continue;
        var ms = S.maskAll(s != 0.0);
        var mt = S.maskAll(t != 0.0);
        int yo = p * n + j;
        var y0 = DoubleVector.fromArray(S, y, yo);
        var y1 = DoubleVector.fromArray(S, y, yo + L);
        var y2 = DoubleVector.fromArray(S, y, yo + 2 * L);
        var y3 = DoubleVector.fromArray(S, y, yo + 3 * L);
        a0 = a0.add(y0.mul(s), ms);
        a1 = a1.add(y1.mul(s), ms);
        a2 = a2.add(y2.mul(s), ms);
        a3 = a3.add(y3.mul(s), ms);
        b0 = b0.add(y0.mul(t), mt);
        b1 = b1.add(y1.mul(t), mt);
        b2 = b2.add(y2.mul(t), mt);
        b3 = b3.add(y3.mul(t), mt);
      }
      a0.intoArray(out, o0 + j);
      a1.intoArray(out, o0 + j + L);
      a2.intoArray(out, o0 + j + 2 * L);
      a3.intoArray(out, o0 + j + 3 * L);
      b0.intoArray(out, o1 + j);
      b1.intoArray(out, o1 + j + L);
      b2.intoArray(out, o1 + j + 2 * L);
      b3.intoArray(out, o1 + j + 3 * L);
    }
    for (; j + L <= n; j += L) {
      var a = DoubleVector.fromArray(S, out, o0 + j);
      var b = DoubleVector.fromArray(S, out, o1 + j);
      for (int p = 0; p < k; p++) {
        double s = x[x0 + p], t = x[x1 + p];
        if (s == 0.0 && t == 0.0) continue;
        var yv = DoubleVector.fromArray(S, y, p * n + j);
        a = a.add(yv.mul(s), S.maskAll(s != 0.0));
        b = b.add(yv.mul(t), S.maskAll(t != 0.0));
      }
      a.intoArray(out, o0 + j);
      b.intoArray(out, o1 + j);
    }
    Simd.plainMatmulRow(x, y, out, i, k, n, j);
    Simd.plainMatmulRow(x, y, out, i + 1, k, n, j);
  }
}
