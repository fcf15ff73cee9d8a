package dev.k2pekko.ops;

import static dev.k2pekko.ops.Checks.*;
import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every backward of the fp64 reference against central finite differences: the loss is
 * sum(R * op(x)) for a fixed random R, so its gradient w.r.t. the output is R.
 */
class ReferenceGradientTest {
  static final double TOL = 1e-6;
  final ReferenceOps ops = ReferenceOps.INSTANCE;
  final Random rnd = new Random(42);

  private void check(String what, double[] analytic, double[] x, Function<double[], Double> loss) {
    double[] numeric = numericGradient(x, loss);
    double err = relError(analytic, numeric);
    assertTrue(err <= TOL, what + ": relative error " + err);
    assertTrue(Math.sqrt(dot(numeric, numeric)) > 1e-3, what + ": gradient is trivially zero");
  }

  private double project(Tensor out, double[] r) {
    return dot(out.toDoubles(), r);
  }

  @ParameterizedTest
  @CsvSource({"false,false", "true,false", "false,true", "true,true"})
  void matmul(boolean ta, boolean tb) {
    int m = 5, k = 4, n = 3;
    HostTensor a = ta ? randn(rnd, k, m) : randn(rnd, m, k);
    HostTensor b = tb ? randn(rnd, n, k) : randn(rnd, k, n);
    double[] r = gaussian(rnd, m * n, 1);
    var g = ops.matmulBackward(new HostTensor(m, n, r), a, ta, b, tb);
    check("dA", g.first().toDoubles(), a.data().clone(),
        x -> project(ops.matmul(new HostTensor(a.rows(), a.cols(), x), ta, b, tb), r));
    check("dB", g.second().toDoubles(), b.data().clone(),
        x -> project(ops.matmul(a, ta, new HostTensor(b.rows(), b.cols(), x), tb), r));
  }

  @Test
  void residualAddAndLinear() {
    HostTensor a = randn(rnd, 3, 4), b = randn(rnd, 3, 4);
    double[] r = gaussian(rnd, 12, 1);
    // d(alpha*a + beta*b)/da = alpha * R, /db = beta * R
    check("add", r, a.data().clone(), x -> project(ops.add(new HostTensor(3, 4, x), b), r));
    check("linear", ops.scale(new HostTensor(3, 4, r), -0.7).toDoubles(), b.data().clone(),
        x -> project(ops.linear(2.0, a, -0.7, new HostTensor(3, 4, x)), r));
  }

  @Test
  void reductions() {
    HostTensor a = randn(rnd, 3, 4);
    double[] r = gaussian(rnd, 4, 1);
    double[] twoA = ops.scale(a, 2).toDoubles();
    check("sumOfSquares", twoA, a.data().clone(), x -> ops.sumOfSquares(new HostTensor(3, 4, x)));
    // sumRows backward broadcasts R to every row
    double[] bcast = new double[12];
    for (int i = 0; i < 12; i++) bcast[i] = r[i % 4];
    check("sumRows", bcast, a.data().clone(), x -> project(ops.sumRows(new HostTensor(3, 4, x)), r));
  }

  @Test
  void rmsnorm() {
    HostTensor x = randn(rnd, 4, 6), w = new HostTensor(1, 6, gaussian(rnd, 6, 1));
    double[] r = gaussian(rnd, 24, 1);
    var norm = ops.rmsnorm(x, w, 1e-5);
    var g = ops.rmsnormBackward(new HostTensor(4, 6, r), x, w, norm.rstd());
    check("dx", g.first().toDoubles(), x.data().clone(), d -> project(ops.rmsnorm(new HostTensor(4, 6, d), w, 1e-5).out(), r));
    check("dw", g.second().toDoubles(), w.data().clone(), d -> project(ops.rmsnorm(x, new HostTensor(1, 6, d), 1e-5).out(), r));
  }

  @Test
  void gelu() {
    HostTensor x = new HostTensor(3, 5, gaussian(rnd, 15, 2));
    double[] r = gaussian(rnd, 15, 1);
    check("gelu", ops.geluBackward(new HostTensor(3, 5, r), x).toDoubles(), x.data().clone(),
        d -> project(ops.gelu(new HostTensor(3, 5, d)), r));
  }

  @Test
  void softmax() {
    HostTensor x = new HostTensor(3, 5, gaussian(rnd, 15, 2));
    double[] r = gaussian(rnd, 15, 1);
    Tensor y = ops.softmax(x);
    check("softmax", ops.softmaxBackward(new HostTensor(3, 5, r), y).toDoubles(), x.data().clone(),
        d -> project(ops.softmax(new HostTensor(3, 5, d)), r));
  }

  @Test
  void attention() {
    int b = 2, t = 4, h = 2, c = 6;
    HostTensor q = randn(rnd, b * t, c), k = randn(rnd, b * t, c), v = randn(rnd, b * t, c);
    double[] r = gaussian(rnd, b * t * c, 1);
    var att = ops.attention(q, k, v, b, t, h);
    var g = ops.attentionBackward(new HostTensor(b * t, c, r), q, k, v, att.probs(), b, t, h);
    check("dq", g.first().toDoubles(), q.data().clone(), d -> project(ops.attention(new HostTensor(b * t, c, d), k, v, b, t, h).out(), r));
    check("dk", g.second().toDoubles(), k.data().clone(), d -> project(ops.attention(q, new HostTensor(b * t, c, d), v, b, t, h).out(), r));
    check("dv", g.third().toDoubles(), v.data().clone(), d -> project(ops.attention(q, k, new HostTensor(b * t, c, d), b, t, h).out(), r));
  }

  @Test
  void attentionMaxLogitIsTheSignedCausalMaximum() {
    int b = 2, t = 5, h = 3, c = 6, hd = 2;
    HostTensor q = randn(rnd, b * t, c), k = randn(rnd, b * t, c), v = randn(rnd, b * t, c);
    double[] max = ops.attention(q, k, v, b, t, h).maxLogit();
    for (int head = 0; head < h; head++) {
      double expect = Double.NEGATIVE_INFINITY;
      for (int s = 0; s < b; s++)
        for (int i = 0; i < t; i++)
          for (int j = 0; j <= i; j++) {
            double dot = 0;
            for (int d = 0; d < hd; d++) dot += q.get(s * t + i, head * hd + d) * k.get(s * t + j, head * hd + d);
            expect = Math.max(expect, dot / Math.sqrt(hd));
          }
      assertEquals(expect, max[head], 1e-12);
    }
    // signed: when every causal logit is negative, the maximum is negative, not 0 and not |.|
    HostTensor neg = new HostTensor(1, 2, new double[] {1, 1});
    HostTensor negK = new HostTensor(1, 2, new double[] {-2, -1});
    assertEquals(-3 / Math.sqrt(2), ops.attention(neg, negK, neg, 1, 1, 1).maxLogit()[0], 1e-12);
  }

  @Test
  void crossEntropyWithMask() {
    int n = 5, vocab = 7;
    HostTensor logits = new HostTensor(n, vocab, gaussian(rnd, n * vocab, 2));
    int[] targets = {0, 3, 6, 2, 2};
    double[] mask = {1, 0, 1, 1, 0};
    double[] dnll = {0.3, 0, -1.2, 0.5, 0};
    Function<double[], Double> loss = d -> dot(ops.crossEntropy(new HostTensor(n, vocab, d), targets, mask), dnll);
    double[] grad = ops.crossEntropyBackward(logits, targets, dnll).toDoubles();
    check("dlogits", grad, logits.data().clone(), loss);
    double[] nll = ops.crossEntropy(logits, targets, mask);
    assertEquals(0.0, nll[1]);
    assertEquals(0.0, nll[4]);
    double[] p = ops.softmax(logits).toDoubles();
    assertEquals(-Math.log(p[2 * vocab + 6]), nll[2], 1e-12);
  }

  @Test
  void embedding() {
    int vocab = 6, c = 3;
    HostTensor table = randn(rnd, vocab, c);
    int[] ids = {1, 4, 1, 0};
    double[] r = gaussian(rnd, ids.length * c, 1);
    check("dtable", ops.embeddingBackward(new HostTensor(ids.length, c, r), ids, vocab).toDoubles(), table.data().clone(),
        d -> project(ops.embedding(new HostTensor(vocab, c, d), ids), r));
  }
}
