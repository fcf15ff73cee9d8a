package dev.k2pekko.ops;

import java.util.stream.IntStream;

/**
 * Plain-Java fp64 backend: loops as a reader would write them from the formulas. It is the oracle
 * every other backend is tested against, and on the 2-core CPU it is also the fastest backend for the
 * small policy (ND4J's fixed per-op cost dominates there; see docs/MODEL.md).
 */
public final class ReferenceOps implements TensorOps {
  /** Matmuls with more multiply-adds than this split their output rows over the common pool. */
  private static final long PARALLEL_FLOPS = 1L << 18;

  public static final ReferenceOps INSTANCE = new ReferenceOps();

  @Override
  public String name() {
    return "java-fp64";
  }

  private static HostTensor h(Tensor t) {
    return HostTensor.of(t);
  }

  private static void sameShape(Tensor a, Tensor b) {
    if (a.rows() != b.rows() || a.cols() != b.cols()) {
      throw new IllegalArgumentException("shape " + a.shapeString() + " != " + b.shapeString());
    }
  }

  @Override
  public Tensor tensor(int rows, int cols, double[] data) {
    return new HostTensor(rows, cols, data.clone());
  }

  @Override
  public Tensor zeros(int rows, int cols) {
    return new HostTensor(rows, cols, new double[rows * cols]);
  }

  // out (M,N) = op(a) (M,K) . op(b) (K,N)
  @Override
  public Tensor matmul(Tensor a, boolean transA, Tensor b, boolean transB) {
    HostTensor x = transA ? (HostTensor) transpose(a) : h(a);
    HostTensor y = transB ? (HostTensor) transpose(b) : h(b);
    int m = x.rows(), k = x.cols(), n = y.cols();
    if (y.rows() != k) {
      throw new IllegalArgumentException("matmul inner dims " + x.shapeString() + " . " + y.shapeString());
    }
    double[] out = new double[m * n];
    double[] xd = x.data(), yd = y.data();
    // rows in pairs (the last one alone when m is odd)
    IntStream pairs = IntStream.range(0, (m + 1) / 2);
    if ((long) m * n * k > PARALLEL_FLOPS) {
      pairs = pairs.parallel();
    }
    pairs.forEach(q -> {
      if (2 * q + 1 < m) Simd.matmulRow2(xd, yd, out, 2 * q, k, n);
      else Simd.matmulRow(xd, yd, out, 2 * q, k, n);
    });
    return new HostTensor(m, n, out);
  }

  // out (R,C) = alpha*a + beta*b
  @Override
  public Tensor linear(double alpha, Tensor a, double beta, Tensor b) {
    sameShape(a, b);
    double[] x = h(a).data(), y = h(b).data(), out = new double[x.length];
    for (int i = 0; i < out.length; i++) out[i] = alpha * x[i] + beta * y[i];
    return new HostTensor(a.rows(), a.cols(), out);
  }

  @Override
  public Tensor scale(Tensor a, double s) {
    double[] x = h(a).data(), out = new double[x.length];
    for (int i = 0; i < out.length; i++) out[i] = s * x[i];
    return new HostTensor(a.rows(), a.cols(), out);
  }

  @Override
  public Tensor hadamard(Tensor a, Tensor b) {
    sameShape(a, b);
    double[] x = h(a).data(), y = h(b).data(), out = new double[x.length];
    for (int i = 0; i < out.length; i++) out[i] = x[i] * y[i];
    return new HostTensor(a.rows(), a.cols(), out);
  }

  // out (C,R) = a^T, a (R,C)
  @Override
  public Tensor transpose(Tensor a) {
    HostTensor x = h(a);
    int r = x.rows(), c = x.cols();
    double[] d = x.data(), out = new double[d.length];
    for (int i = 0; i < r; i++) {
      for (int j = 0; j < c; j++) out[j * r + i] = d[i * c + j];
    }
    return new HostTensor(c, r, out);
  }

  @Override
  public Tensor scaleRows(Tensor a, int from, int to, double factor) {
    HostTensor x = h(a);
    double[] out = x.data().clone();
    for (int i = from * x.cols(); i < to * x.cols(); i++) out[i] *= factor;
    return new HostTensor(x.rows(), x.cols(), out);
  }

  @Override
  public Tensor adamDirection(Tensor m, Tensor v, double bc1, double bc2, double eps) {
    sameShape(m, v);
    double[] md = h(m).data(), vd = h(v).data(), out = new double[md.length];
    for (int i = 0; i < out.length; i++) out[i] = (md[i] / bc1) / (Math.sqrt(vd[i] / bc2) + eps);
    return new HostTensor(m.rows(), m.cols(), out);
  }

  @Override
  public double sum(Tensor a) {
    double s = 0;
    for (double x : h(a).data()) s += x;
    return s;
  }

  @Override
  public double sumOfSquares(Tensor a) {
    double s = 0;
    for (double x : h(a).data()) s += x * x;
    return s;
  }

  // out (1,C) = column sums of a (R,C)
  @Override
  public Tensor sumRows(Tensor a) {
    HostTensor x = h(a);
    int c = x.cols();
    double[] d = x.data(), out = new double[c];
    for (int i = 0; i < x.rows(); i++) {
      for (int j = 0; j < c; j++) out[j] += d[i * c + j];
    }
    return new HostTensor(1, c, out);
  }

  // out (N,C) = table (V,C) [ids (N)]
  @Override
  public Tensor embedding(Tensor table, int[] ids) {
    HostTensor t = h(table);
    int c = t.cols();
    double[] out = new double[ids.length * c];
    for (int n = 0; n < ids.length; n++) System.arraycopy(t.data(), ids[n] * c, out, n * c, c);
    return new HostTensor(ids.length, c, out);
  }

  // dtable (V,C) += dout (N,C) at ids (N)
  @Override
  public Tensor embeddingBackward(Tensor dout, int[] ids, int vocab) {
    HostTensor g = h(dout);
    int c = g.cols();
    double[] out = new double[vocab * c], d = g.data();
    for (int n = 0; n < ids.length; n++) {
      for (int j = 0; j < c; j++) out[ids[n] * c + j] += d[n * c + j];
    }
    return new HostTensor(vocab, c, out);
  }

  // out (N,C), rstd (N,1) <- x (N,C), w (1,C)
  @Override
  public Norm rmsnorm(Tensor x, Tensor w, double eps) {
    HostTensor xt = h(x);
    int n = xt.rows(), c = xt.cols();
    double[] xd = xt.data(), wd = h(w).data(), out = new double[n * c], rstd = new double[n];
    for (int i = 0; i < n; i++) {
      double ss = 0;
      for (int j = 0; j < c; j++) ss += xd[i * c + j] * xd[i * c + j];
      double r = 1.0 / Math.sqrt(ss / c + eps);
      rstd[i] = r;
      for (int j = 0; j < c; j++) out[i * c + j] = xd[i * c + j] * r * wd[j];
    }
    return new Norm(new HostTensor(n, c, out), new HostTensor(n, 1, rstd));
  }

  // dx (N,C), dw (1,C) <- dout (N,C), x (N,C), w (1,C), rstd (N,1)
  @Override
  public Grad2 rmsnormBackward(Tensor dout, Tensor x, Tensor w, Tensor rstd) {
    HostTensor xt = h(x);
    int n = xt.rows(), c = xt.cols();
    double[] xd = xt.data(), gd = h(dout).data(), wd = h(w).data(), rd = h(rstd).data();
    double[] dx = new double[n * c], dw = new double[c];
    for (int i = 0; i < n; i++) {
      double r = rd[i], dot = 0;
      for (int j = 0; j < c; j++) {
        double xhat = xd[i * c + j] * r;
        dw[j] += gd[i * c + j] * xhat;
        dot += gd[i * c + j] * wd[j] * xhat;
      }
      dot /= c;
      for (int j = 0; j < c; j++) {
        double xhat = xd[i * c + j] * r;
        dx[i * c + j] = r * (gd[i * c + j] * wd[j] - xhat * dot);
      }
    }
    return new Grad2(new HostTensor(n, c, dx), new HostTensor(1, c, dw));
  }

  private static final double GELU_S = Math.sqrt(2.0 / Math.PI);

  // out (R,C) = gelu(x (R,C))
  @Override
  public Tensor gelu(Tensor x) {
    double[] d = h(x).data(), out = new double[d.length];
    for (int i = 0; i < d.length; i++) {
      double v = d[i];
      out[i] = 0.5 * v * (1 + Math.tanh(GELU_S * (v + 0.044715 * v * v * v)));
    }
    return new HostTensor(x.rows(), x.cols(), out);
  }

  // dx (R,C) <- dout (R,C), x (R,C)
  @Override
  public Tensor geluBackward(Tensor dout, Tensor x) {
    sameShape(dout, x);
    double[] d = h(x).data(), g = h(dout).data(), out = new double[d.length];
    for (int i = 0; i < d.length; i++) {
      double v = d[i];
      double t = Math.tanh(GELU_S * (v + 0.044715 * v * v * v));
      double du = GELU_S * (1 + 3 * 0.044715 * v * v);
      out[i] = g[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du);
    }
    return new HostTensor(x.rows(), x.cols(), out);
  }

  // out (R,C) = row softmax of x (R,C)
  @Override
  public Tensor softmax(Tensor x) {
    HostTensor xt = h(x);
    int r = xt.rows(), c = xt.cols();
    double[] d = xt.data(), out = new double[d.length];
    for (int i = 0; i < r; i++) {
      double max = Double.NEGATIVE_INFINITY;
      for (int j = 0; j < c; j++) max = Math.max(max, d[i * c + j]);
      double s = 0;
      for (int j = 0; j < c; j++) s += out[i * c + j] = Math.exp(d[i * c + j] - max);
      for (int j = 0; j < c; j++) out[i * c + j] /= s;
    }
    return new HostTensor(r, c, out);
  }

  // dx (R,C) <- dout (R,C), y (R,C) = softmax(x)
  @Override
  public Tensor softmaxBackward(Tensor dout, Tensor y) {
    sameShape(dout, y);
    int r = y.rows(), c = y.cols();
    double[] yd = h(y).data(), g = h(dout).data(), out = new double[yd.length];
    for (int i = 0; i < r; i++) {
      double dot = 0;
      for (int j = 0; j < c; j++) dot += g[i * c + j] * yd[i * c + j];
      for (int j = 0; j < c; j++) out[i * c + j] = yd[i * c + j] * (g[i * c + j] - dot);
    }
    return new HostTensor(r, c, out);
  }

  // out (B*T,C), probs (B*H*T,T), maxLogit (H) <- q, k, v (B*T,C)
  @Override
  public Attention attention(Tensor q, Tensor k, Tensor v, int batch, int seq, int heads) {
    double[] qd = h(q).data(), kd = h(k).data(), vd = h(v).data();
    int c = q.cols(), hd = c / heads;
    TensorOps.checkAttention(q, batch, seq, heads);
    double scale = 1.0 / Math.sqrt(hd);
    double[] out = new double[batch * seq * c], probs = new double[batch * heads * seq * seq];
    double[] maxLogit = new double[heads];
    java.util.Arrays.fill(maxLogit, Double.NEGATIVE_INFINITY);
    for (int b = 0; b < batch; b++) {
      for (int hh = 0; hh < heads; hh++) {
        int off = hh * hd;
        for (int i = 0; i < seq; i++) {
          int qi = (b * seq + i) * c + off;
          int pRow = ((b * heads + hh) * seq + i) * seq;
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j <= i; j++) {
            int kj = (b * seq + j) * c + off;
            double s = 0;
            for (int d = 0; d < hd; d++) s += qd[qi + d] * kd[kj + d];
            s *= scale;
            probs[pRow + j] = s;
            max = Math.max(max, s);
          }
          maxLogit[hh] = Math.max(maxLogit[hh], max);
          double sum = 0;
          for (int j = 0; j <= i; j++) sum += probs[pRow + j] = Math.exp(probs[pRow + j] - max);
          int oi = (b * seq + i) * c + off;
          for (int j = 0; j <= i; j++) {
            double p = probs[pRow + j] /= sum;
            int vj = (b * seq + j) * c + off;
            for (int d = 0; d < hd; d++) out[oi + d] += p * vd[vj + d];
          }
        }
      }
    }
    return new Attention(new HostTensor(batch * seq, c, out), new HostTensor(batch * heads * seq, seq, probs), maxLogit);
  }

  // dq, dk, dv (B*T,C) <- dout (B*T,C), q, k, v (B*T,C), probs (B*H*T,T)
  @Override
  public Grad3 attentionBackward(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor probs, int batch, int seq, int heads) {
    double[] qd = h(q).data(), kd = h(k).data(), vd = h(v).data(), pd = h(probs).data(), gd = h(dout).data();
    int c = q.cols(), hd = c / heads;
    double scale = 1.0 / Math.sqrt(hd);
    double[] dq = new double[qd.length], dk = new double[kd.length], dv = new double[vd.length];
    double[] dp = new double[seq];
    for (int b = 0; b < batch; b++) {
      for (int hh = 0; hh < heads; hh++) {
        int off = hh * hd;
        for (int i = 0; i < seq; i++) {
          int oi = (b * seq + i) * c + off;
          int pRow = ((b * heads + hh) * seq + i) * seq;
          double dot = 0;
          for (int j = 0; j <= i; j++) {
            int vj = (b * seq + j) * c + off;
            double s = 0;
            double p = pd[pRow + j];
            for (int d = 0; d < hd; d++) {
              s += gd[oi + d] * vd[vj + d];
              dv[vj + d] += p * gd[oi + d];
            }
            dp[j] = s;
            dot += p * s;
          }
          for (int j = 0; j <= i; j++) {
            double ds = pd[pRow + j] * (dp[j] - dot) * scale;
            int kj = (b * seq + j) * c + off;
            for (int d = 0; d < hd; d++) {
              dq[oi + d] += ds * kd[kj + d];
              dk[kj + d] += ds * qd[oi + d];
            }
          }
        }
      }
    }
    return new Grad3(new HostTensor(q.rows(), c, dq), new HostTensor(k.rows(), c, dk), new HostTensor(v.rows(), c, dv));
  }

  // nll (N) <- logits (N,V), targets (N), mask (N)
  @Override
  public double[] crossEntropy(Tensor logits, int[] targets, double[] mask) {
    HostTensor l = h(logits);
    int n = l.rows(), vocab = l.cols();
    double[] d = l.data(), nll = new double[n];
    for (int i = 0; i < n; i++) {
      if (mask[i] == 0) continue;
      double max = Double.NEGATIVE_INFINITY;
      for (int j = 0; j < vocab; j++) max = Math.max(max, d[i * vocab + j]);
      double s = 0;
      for (int j = 0; j < vocab; j++) s += Math.exp(d[i * vocab + j] - max);
      nll[i] = Math.log(s) + max - d[i * vocab + targets[i]];
    }
    return nll;
  }

  // dlogits (N,V) <- logits (N,V), targets (N), dnll (N)
  @Override
  public Tensor crossEntropyBackward(Tensor logits, int[] targets, double[] dnll) {
    HostTensor l = h(logits);
    int n = l.rows(), vocab = l.cols();
    double[] d = l.data(), out = new double[d.length];
    for (int i = 0; i < n; i++) {
      if (dnll[i] == 0) continue;
      double max = Double.NEGATIVE_INFINITY;
      for (int j = 0; j < vocab; j++) max = Math.max(max, d[i * vocab + j]);
      double s = 0;
      for (int j = 0; j < vocab; j++) s += out[i * vocab + j] = Math.exp(d[i * vocab + j] - max);
      for (int j = 0; j < vocab; j++) out[i * vocab + j] *= dnll[i] / s;
      out[i * vocab + targets[i]] -= dnll[i];
    }
    return new HostTensor(n, vocab, out);
  }
}
