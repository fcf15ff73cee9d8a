package dev.k2pekko.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The Vector API loops give the plain loops' bits: same products, added in the same order per element. */
class SimdTest {
  private static double[] values(Random rnd, int n, double zeros) {
    double[] v = new double[n];
    for (int i = 0; i < n; i++) v[i] = rnd.nextDouble() < zeros ? (rnd.nextBoolean() ? 0.0 : -0.0) : rnd.nextGaussian() * Math.exp(rnd.nextGaussian() * 3);
    return v;
  }

  private static void assertSameBits(double[] expected, double[] actual, String what) {
    assertEquals(expected.length, actual.length, what);
    for (int i = 0; i < expected.length; i++) {
      assertEquals(Double.doubleToRawLongBits(expected[i]), Double.doubleToRawLongBits(actual[i]), what + " at " + i + ": " + expected[i] + " vs " + actual[i]);
    }
  }

  @Test
  void theVectorPathIsInUseUnderTheBuildsFlags() {
    // surefire's argLine adds the module, as the k2 script and the bundle do: the fast path is what the tests run
    assertTrue(Simd.VECTOR, "jdk.incubator.vector missing: the plain loops ran");
  }

  @Test
  void matvecTransposedIsBitForBitThePlainLoop() {
    var rnd = new Random(7);
    // sizes around the vector width and its multiples of four (the unrolled part, the single vectors, the tail)
    for (int rows : new int[] {1, 3, 7, 8, 9, 31, 32, 33, 64, 100, 256, 291}) {
      for (int cols : new int[] {1, 5, 64, 130}) {
        double[] wT = values(rnd, rows * cols, 0.1), v = values(rnd, cols + 3, 0.1), start = values(rnd, rows + 2, 0);
        for (boolean add : new boolean[] {false, true}) {
          double[] plain = start.clone(), vector = start.clone();
          Simd.plainMatvecT(wT, v, 3, plain, 2, rows, cols, add, 0);
          VectorKernels.matvecT(wT, v, 3, vector, 2, rows, cols, add);
          assertSameBits(plain, vector, rows + "x" + cols + " add " + add);
        }
      }
    }
  }

  @Test
  void matmulRowIsBitForBitThePlainLoop() {
    var rnd = new Random(11);
    for (int n : new int[] {1, 7, 8, 33, 64, 128, 291}) {
      for (int k : new int[] {1, 16, 64, 97}) {
        int m = 3;
        double[] x = values(rnd, m * k, 0.3), y = values(rnd, k * n, 0.05);
        double[] plain = new double[m * n], vector = new double[m * n];
        for (int i = 0; i < m; i++) {
          Simd.plainMatmulRow(x, y, plain, i, k, n, 0);
          VectorKernels.matmulRow(x, y, vector, i, k, n);
        }
        assertSameBits(plain, vector, m + "x" + k + "x" + n);
      }
    }
  }

  @Test
  void twoRowsAtOnceAreBitForBitThePlainLoop() {
    var rnd = new Random(13);
    for (int n : new int[] {1, 7, 8, 33, 64, 128, 291}) {
      for (int k : new int[] {1, 16, 64, 97}) {
        int m = 4;
        // zeros in x (a row skips its own), in places where the other row has none
        double[] x = values(rnd, m * k, 0.3), y = values(rnd, k * n, 0.05);
        double[] plain = new double[m * n], vector = new double[m * n], viaSimd = new double[m * n];
        for (int i = 0; i < m; i++) Simd.plainMatmulRow(x, y, plain, i, k, n, 0);
        for (int i = 0; i < m; i += 2) {
          VectorKernels.matmulRow2(x, y, vector, i, k, n);
          Simd.matmulRow2(x, y, viaSimd, i, k, n);
        }
        assertSameBits(plain, vector, m + "x" + k + "x" + n);
        assertSameBits(plain, viaSimd, m + "x" + k + "x" + n + " (Simd)");
      }
    }
  }
}
