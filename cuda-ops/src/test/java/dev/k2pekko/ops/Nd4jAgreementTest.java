package dev.k2pekko.ops;

import static dev.k2pekko.ops.Checks.*;
import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * ND4J fp32 against the fp64 reference on random shapes. Tolerance: norm-wise relative error at most
 * 2e-5 for every op (fp32 unit round-off is 6e-8; sums over a few hundred terms and exp/tanh stay
 * well under it). Inputs are drawn in fp64 and rounded to fp32 first so both backends see equal data.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class Nd4jAgreementTest {
  static final double TOL = 2e-5;
  final ReferenceOps ref = ReferenceOps.INSTANCE;
  final Nd4jOps nd = new Nd4jOps();
  final Random rnd = new Random(7);

  /** fp32-representable Gaussian matrix. */
  HostTensor rf(int rows, int cols, double scale) {
    double[] d = gaussian(rnd, rows * cols, scale);
    for (int i = 0; i < d.length; i++) d[i] = (float) d[i];
    return new HostTensor(rows, cols, d);
  }

  int dim() {
    return 1 + rnd.nextInt(40);
  }

  void same(String what, Tensor expected, Tensor actual) {
    assertEquals(expected.rows(), actual.rows(), what + " rows");
    assertEquals(expected.cols(), actual.cols(), what + " cols");
    same(what, expected.toDoubles(), actual.toDoubles());
  }

  void same(String what, double[] expected, double[] actual) {
    double err = relError(expected, actual);
    assertTrue(err <= TOL, what + ": relative error " + err);
  }

  @Test
  void matmulAllTransposes() {
    for (int trial = 0; trial < 8; trial++) {
      int m = dim(), k = dim(), n = dim();
      boolean ta = (trial & 1) != 0, tb = (trial & 2) != 0;
      HostTensor a = ta ? rf(k, m, 1) : rf(m, k, 1), b = tb ? rf(n, k, 1) : rf(k, n, 1);
      same("matmul", ref.matmul(a, ta, b, tb), nd.matmul(a, ta, b, tb));
      HostTensor g = rf(m, n, 1);
      var r = ref.matmulBackward(g, a, ta, b, tb);
      var x = nd.matmulBackward(g, a, ta, b, tb);
      same("dA", r.first(), x.first());
      same("dB", r.second(), x.second());
    }
  }

  @Test
  void elementwiseAndReductions() {
    int r = dim(), c = dim();
    HostTensor a = rf(r, c, 1), b = rf(r, c, 1), v = rf(r, c, 1);
    same("linear", ref.linear(0.3, a, -2, b), nd.linear(0.3, a, -2, b));
    same("hadamard", ref.hadamard(a, b), nd.hadamard(a, b));
    same("transpose", ref.transpose(a), nd.transpose(a));
    same("scaleRows", ref.scaleRows(a, 0, r / 2, 0.25), nd.scaleRows(a, 0, r / 2, 0.25));
    HostTensor vv = (HostTensor) ref.hadamard(v, v);
    same("adam", ref.adamDirection(a, vv, 0.9, 0.99, 1e-8), nd.adamDirection(a, vv, 0.9, 0.99, 1e-8));
    same("sumRows", ref.sumRows(a), nd.sumRows(a));
    same("sum", new double[] {ref.sum(a)}, new double[] {nd.sum(a)});
    same("sumOfSquares", new double[] {ref.sumOfSquares(a)}, new double[] {nd.sumOfSquares(a)});
  }

  @Test
  void normGeluSoftmaxEmbedding() {
    for (int trial = 0; trial < 4; trial++) {
      int n = dim(), c = dim();
      HostTensor x = rf(n, c, 2), w = rf(1, c, 1), g = rf(n, c, 1);
      var rn = ref.rmsnorm(x, w, 1e-5);
      var xn = nd.rmsnorm(x, w, 1e-5);
      same("rmsnorm", rn.out(), xn.out());
      var rb = ref.rmsnormBackward(g, x, w, rn.rstd());
      var xb = nd.rmsnormBackward(g, x, w, xn.rstd());
      same("rmsnorm dx", rb.first(), xb.first());
      same("rmsnorm dw", rb.second(), xb.second());
      same("gelu", ref.gelu(x), nd.gelu(x));
      same("gelu dx", ref.geluBackward(g, x), nd.geluBackward(g, x));
      same("softmax", ref.softmax(x), nd.softmax(x));
      same("softmax dx", ref.softmaxBackward(g, ref.softmax(x)), nd.softmaxBackward(g, nd.softmax(x)));
      int vocab = 1 + rnd.nextInt(30);
      int[] ids = rnd.ints(n, 0, vocab).toArray();
      HostTensor table = rf(vocab, c, 1);
      same("embedding", ref.embedding(table, ids), nd.embedding(table, ids));
      same("embedding dtable", ref.embeddingBackward(g, ids, vocab), nd.embeddingBackward(g, ids, vocab));
    }
  }

  @Test
  void attention() {
    for (int trial = 0; trial < 4; trial++) {
      int b = 1 + rnd.nextInt(3), t = 1 + rnd.nextInt(12), h = 1 + rnd.nextInt(4), c = h * (1 + rnd.nextInt(8));
      HostTensor q = rf(b * t, c, 1), k = rf(b * t, c, 1), v = rf(b * t, c, 1), g = rf(b * t, c, 1);
      var ra = ref.attention(q, k, v, b, t, h);
      var xa = nd.attention(q, k, v, b, t, h);
      same("attention out", ra.out(), xa.out());
      same("attention probs", ra.probs(), xa.probs());
      same("attention maxLogit", ra.maxLogit(), xa.maxLogit());
      var rg = ref.attentionBackward(g, q, k, v, ra.probs(), b, t, h);
      var xg = nd.attentionBackward(g, q, k, v, xa.probs(), b, t, h);
      same("dq", rg.first(), xg.first());
      same("dk", rg.second(), xg.second());
      same("dv", rg.third(), xg.third());
    }
  }

  @Test
  void crossEntropy() {
    int n = dim(), vocab = 2 + rnd.nextInt(50);
    HostTensor logits = rf(n, vocab, 3);
    int[] targets = rnd.ints(n, 0, vocab).toArray();
    double[] mask = new double[n], dnll = new double[n];
    for (int i = 0; i < n; i++) {
      mask[i] = rnd.nextBoolean() ? 1 : 0;
      dnll[i] = mask[i] * rnd.nextGaussian();
    }
    same("nll", ref.crossEntropy(logits, targets, mask), nd.crossEntropy(logits, targets, mask));
    same("dlogits", ref.crossEntropyBackward(logits, targets, dnll), nd.crossEntropyBackward(logits, targets, dnll));
  }
}
