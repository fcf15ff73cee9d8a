package dev.k2pekko.ops;

/**
 * The plain-Java backend's two hot loops (a profile of the default `k2 run` spends about 70% of its CPU in them: the
 * agents' decoding and the learners' fp64 matmuls), on SIMD registers where the JVM has the incubating Vector API
 * ({@code --add-modules jdk.incubator.vector}: the k2 script, the bundle and the tests pass it), else as plain loops.
 *
 * <p>Both ways give the same bits: every output element's products are formed and added one at a time in the order
 * of the plain loop (a lane is one output element; multiply, then add, never a fused multiply-add, which rounds once
 * where Java rounds twice). So a run's weights do not depend on whether the module was there.
 */
public final class Simd {
  private Simd() {}

  /** Whether the Vector API path is in use ({@code -Dk2.simd=off} turns it off). */
  public static final boolean VECTOR = detect();

  private static boolean detect() {
    if ("off".equals(System.getProperty("k2.simd"))) return false;
    if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) return false;
    try {
      return VectorKernels.lanes() > 1;
    } catch (LinkageError e) {
      return false;
    }
  }

  /**
   * out[at + i] = (add ? out[at + i] : 0) + sum over j of wT[j * rows + i] * v[vAt + j], for i &lt; rows: W (rows,
   * cols) times v with W stored transposed (cols, rows). The sum starts at 0 and adds j = 0, 1, ... in order; with
   * {@code add} it is then added to what out held.
   */
  public static void matvecT(double[] wT, double[] v, int vAt, double[] out, int at, int rows, int cols, boolean add) {
    if (VECTOR) {
      VectorKernels.matvecT(wT, v, vAt, out, at, rows, cols, add);
    } else {
      plainMatvecT(wT, v, vAt, out, at, rows, cols, add, 0);
    }
  }

  /** {@link #matvecT}'s plain loop over the outputs from {@code from} on (VectorKernels' tail too). */
  static void plainMatvecT(double[] wT, double[] v, int vAt, double[] out, int at, int rows, int cols, boolean add, int from) {
    for (int i = from; i < rows; i++) {
      double s = 0;
      for (int j = 0; j < cols; j++) s += wT[j * rows + i] * v[vAt + j];
      out[at + i] = add ? out[at + i] + s : s;
    }
  }

  /**
   * Row i of out (m, n) = x (m, k) . y (k, n), into out that holds zeros: out[i][j] += x[i][p] * y[p][j] for p = 0,
   * 1, ... in order, skipping the p where x[i][p] is zero.
   */
  public static void matmulRow(double[] x, double[] y, double[] out, int i, int k, int n) {
    if (VECTOR) {
      VectorKernels.matmulRow(x, y, out, i, k, n);
    } else {
      plainMatmulRow(x, y, out, i, k, n, 0);
    }
  }

  /** Rows i and i + 1 of out, as two {@link #matmulRow} calls give them (the vector path shares y's loads between them). */
  public static void matmulRow2(double[] x, double[] y, double[] out, int i, int k, int n) {
    if (VECTOR) {
      VectorKernels.matmulRow2(x, y, out, i, k, n);
    } else {
      plainMatmulRow(x, y, out, i, k, n, 0);
      plainMatmulRow(x, y, out, i + 1, k, n, 0);
    }
  }

  /** {@link #matmulRow}'s plain loop over the row's columns from {@code from} on (VectorKernels' tail too). */
  static void plainMatmulRow(double[] x, double[] y, double[] out, int i, int k, int n, int from) {
    int o = i * n;
    for (int p = 0; p < k; p++) {
      double s = x[i * k + p];
      if (s == 0.0) continue;
      int yo = p * n;
      for (int j = from; j < n; j++) out[o + j] += s * y[yo + j];
    }
  }
}
