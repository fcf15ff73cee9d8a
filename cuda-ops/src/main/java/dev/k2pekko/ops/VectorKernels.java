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
}
