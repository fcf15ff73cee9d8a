package dev.k2pekko.ops;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * ND4J fp32 backend (nd4j-native on the CPU; nd4j-cuda-11.6 under the {@code nd4j-cuda} Maven
 * profile). ND4J types stay inside this class and {@link Nd4jTensor}. Integer gathers and scatters
 * (the embedding-gradient scatter, cross-entropy targets) run on the host buffer, where ND4J has no cheaper path.
 */
public final class Nd4jOps implements TensorOps {
  /** Added to masked (j > i) attention logits before the softmax; exp underflows to exactly 0 in fp32. */
  private static final float MASKED = -1e30f;

  public Nd4jOps() {
    Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
  }

  @Override
  public String name() {
    return "nd4j-fp32";
  }

  private static INDArray a(Tensor t) {
    if (t instanceof Nd4jTensor n) return n.array();
    return fromDoubles(t.rows(), t.cols(), t.toDoubles());
  }

  private static INDArray fromDoubles(int rows, int cols, double[] data) {
    float[] f = new float[data.length];
    for (int i = 0; i < f.length; i++) f[i] = (float) data[i];
    return fromFloats(rows, cols, f);
  }

  private static INDArray fromFloats(int rows, int cols, float[] f) {
    return Nd4j.createFromArray(f).reshape('c', rows, cols);
  }

  private static Tensor t(INDArray x) {
    return new Nd4jTensor(x);
  }

  private static float[] hostFloats(INDArray x) {
    return x.dup('c').data().asFloat();
  }

  @Override
  public Tensor tensor(int rows, int cols, double[] data) {
    return t(fromDoubles(rows, cols, data));
  }

  @Override
  public Tensor zeros(int rows, int cols) {
    return t(Nd4j.zeros(DataType.FLOAT, rows, cols));
  }

  // out (M,N) = op(a) (M,K) . op(b) (K,N)
  @Override
  public Tensor matmul(Tensor x, boolean transA, Tensor y, boolean transB) {
    return t(Nd4j.gemm(a(x), a(y), transA, transB));
  }

  @Override
  public Tensor linear(double alpha, Tensor x, double beta, Tensor y) {
    return t(a(x).mul(alpha).addi(a(y).mul(beta)));
  }

  @Override
  public Tensor scale(Tensor x, double s) {
    return t(a(x).mul(s));
  }

  @Override
  public Tensor hadamard(Tensor x, Tensor y) {
    return t(a(x).mul(a(y)));
  }

  @Override
  public Tensor transpose(Tensor x) {
    return t(a(x).transpose().dup('c'));
  }

  @Override
  public Tensor scaleRows(Tensor x, int from, int to, double factor) {
    INDArray out = a(x).dup('c');
    if (to > from) out.get(NDArrayIndex.interval(from, to), NDArrayIndex.all()).muli(factor);
    return t(out);
  }

  @Override
  public Tensor adamDirection(Tensor m, Tensor v, double bc1, double bc2, double eps) {
    INDArray denom = Transforms.sqrt(a(v).div(bc2), false).addi(eps);
    return t(a(m).div(bc1).divi(denom));
  }

  @Override
  public double sum(Tensor x) {
    return a(x).sumNumber().doubleValue();
  }

  @Override
  public double sumOfSquares(Tensor x) {
    INDArray y = a(x);
    return y.mul(y).sumNumber().doubleValue();
  }

  // out (1,C) <- a (R,C)
  @Override
  public Tensor sumRows(Tensor x) {
    return t(a(x).sum(0).reshape(1, x.cols()));
  }

  // out (N,C) = table (V,C) [ids (N)]
  @Override
  public Tensor embedding(Tensor table, int[] ids) {
    return t(a(table).getRows(ids).reshape(ids.length, table.cols()));
  }

  // dtable (V,C) <- dout (N,C), ids (N)
  @Override
  public Tensor embeddingBackward(Tensor dout, int[] ids, int vocab) {
    int c = dout.cols();
    float[] g = hostFloats(a(dout)), out = new float[vocab * c];
    for (int n = 0; n < ids.length; n++) {
      for (int j = 0; j < c; j++) out[ids[n] * c + j] += g[n * c + j];
    }
    return t(fromFloats(vocab, c, out));
  }

  // out (N,C), rstd (N,1) <- x (N,C), w (1,C)
  @Override
  public Norm rmsnorm(Tensor xt, Tensor w, double eps) {
    INDArray x = a(xt);
    int n = xt.rows();
    INDArray rstd = Transforms.pow(x.mul(x).mean(1).addi(eps), -0.5, false).reshape(n, 1);
    INDArray out = x.mulColumnVector(rstd).muliRowVector(a(w));
    return new Norm(t(out), t(rstd));
  }

  // dx (N,C), dw (1,C) <- dout (N,C), x (N,C), w (1,C), rstd (N,1)
  @Override
  public Grad2 rmsnormBackward(Tensor dout, Tensor xt, Tensor w, Tensor rstdT) {
    INDArray g = a(dout), rstd = a(rstdT);
    int n = xt.rows(), c = xt.cols();
    INDArray xhat = a(xt).mulColumnVector(rstd);
    INDArray dw = g.mul(xhat).sum(0).reshape(1, c);
    INDArray dxhat = g.mulRowVector(a(w));
    INDArray dot = dxhat.mul(xhat).mean(1).reshape(n, 1);
    INDArray dx = dxhat.subi(xhat.muliColumnVector(dot)).muliColumnVector(rstd);
    return new Grad2(t(dx), t(dw));
  }

  private static final double GELU_S = Math.sqrt(2.0 / Math.PI);

  private static INDArray geluTanh(INDArray x) {
    INDArray cube = x.mul(x).muli(x).muli(0.044715);
    return Transforms.tanh(cube.addi(x).muli(GELU_S), false);
  }

  // out (R,C) <- x (R,C)
  @Override
  public Tensor gelu(Tensor xt) {
    INDArray x = a(xt);
    return t(geluTanh(x).addi(1.0).muli(x).muli(0.5));
  }

  // dx (R,C) <- dout (R,C), x (R,C)
  @Override
  public Tensor geluBackward(Tensor dout, Tensor xt) {
    INDArray x = a(xt);
    INDArray th = geluTanh(x);
    INDArray du = x.mul(x).muli(3 * 0.044715).addi(1.0).muli(GELU_S);
    INDArray sech2 = th.mul(th).rsubi(1.0);
    INDArray d = sech2.muli(du).muli(x).muli(0.5).addi(th.addi(1.0).muli(0.5));
    return t(d.muli(a(dout)));
  }

  private static INDArray rowSoftmax(INDArray x) {
    long r = x.rows();
    INDArray e = Transforms.exp(x.subColumnVector(x.max(1).reshape(r, 1)), false);
    return e.diviColumnVector(e.sum(1).reshape(r, 1));
  }

  // out (R,C) <- x (R,C)
  @Override
  public Tensor softmax(Tensor x) {
    return t(rowSoftmax(a(x)));
  }

  // dx (R,C) <- dout (R,C), y (R,C)
  @Override
  public Tensor softmaxBackward(Tensor dout, Tensor yt) {
    INDArray g = a(dout), y = a(yt);
    INDArray dot = g.mul(y).sum(1).reshape(y.rows(), 1);
    return t(g.subColumnVector(dot).muli(y));
  }

  private static INDArray causalMask(int seq) {
    float[] m = new float[seq * seq];
    for (int i = 0; i < seq; i++) {
      for (int j = i + 1; j < seq; j++) m[i * seq + j] = MASKED;
    }
    return fromFloats(seq, seq, m);
  }

  // out (B*T,C), probs (B*H*T,T), maxLogit (H) <- q, k, v (B*T,C)
  @Override
  public Attention attention(Tensor qt, Tensor kt, Tensor vt, int batch, int seq, int heads) {
    TensorOps.checkAttention(qt, batch, seq, heads);
    INDArray q = a(qt), k = a(kt), v = a(vt);
    int c = qt.cols(), hd = c / heads;
    double scale = 1.0 / Math.sqrt(hd);
    INDArray mask = causalMask(seq);
    INDArray out = Nd4j.zeros(DataType.FLOAT, batch * seq, c);
    INDArray probs = Nd4j.zeros(DataType.FLOAT, batch * heads * seq, seq);
    double[] maxLogit = new double[heads];
    java.util.Arrays.fill(maxLogit, Double.NEGATIVE_INFINITY);
    for (int b = 0; b < batch; b++) {
      var rows = NDArrayIndex.interval(b * seq, (b + 1) * seq);
      for (int h = 0; h < heads; h++) {
        var cols = NDArrayIndex.interval(h * hd, (h + 1) * hd);
        INDArray qh = q.get(rows, cols), kh = k.get(rows, cols), vh = v.get(rows, cols);
        INDArray s = Nd4j.gemm(qh, kh, false, true).muli(scale).addi(mask);
        maxLogit[h] = Math.max(maxLogit[h], s.maxNumber().doubleValue());
        INDArray p = rowSoftmax(s);
        probs.get(NDArrayIndex.interval((b * heads + h) * seq, (b * heads + h + 1) * seq), NDArrayIndex.all()).assign(p);
        out.get(rows, cols).assign(Nd4j.gemm(p, vh, false, false));
      }
    }
    return new Attention(t(out), t(probs), maxLogit);
  }

  // dq, dk, dv (B*T,C) <- dout (B*T,C), q, k, v (B*T,C), probs (B*H*T,T)
  @Override
  public Grad3 attentionBackward(Tensor dout, Tensor qt, Tensor kt, Tensor vt, Tensor probsT, int batch, int seq, int heads) {
    INDArray g = a(dout), q = a(qt), k = a(kt), v = a(vt), probs = a(probsT);
    int c = qt.cols(), hd = c / heads;
    double scale = 1.0 / Math.sqrt(hd);
    INDArray dq = Nd4j.zeros(DataType.FLOAT, batch * seq, c);
    INDArray dk = Nd4j.zeros(DataType.FLOAT, batch * seq, c);
    INDArray dv = Nd4j.zeros(DataType.FLOAT, batch * seq, c);
    for (int b = 0; b < batch; b++) {
      var rows = NDArrayIndex.interval(b * seq, (b + 1) * seq);
      for (int h = 0; h < heads; h++) {
        var cols = NDArrayIndex.interval(h * hd, (h + 1) * hd);
        INDArray qh = q.get(rows, cols), kh = k.get(rows, cols), vh = v.get(rows, cols), gh = g.get(rows, cols);
        INDArray p = probs.get(NDArrayIndex.interval((b * heads + h) * seq, (b * heads + h + 1) * seq), NDArrayIndex.all());
        INDArray dp = Nd4j.gemm(gh, vh, false, true);
        INDArray dot = dp.mul(p).sum(1).reshape(seq, 1);
        INDArray ds = dp.subiColumnVector(dot).muli(p).muli(scale);
        dv.get(rows, cols).assign(Nd4j.gemm(p, gh, true, false));
        dq.get(rows, cols).assign(Nd4j.gemm(ds, kh, false, false));
        dk.get(rows, cols).assign(Nd4j.gemm(ds, qh, true, false));
      }
    }
    return new Grad3(t(dq), t(dk), t(dv));
  }

  // nll (N) <- logits (N,V), targets (N), mask (N)
  @Override
  public double[] crossEntropy(Tensor logits, int[] targets, double[] mask) {
    INDArray x = a(logits);
    int n = logits.rows(), vocab = logits.cols();
    INDArray max = x.max(1).reshape(n, 1);
    INDArray lse = Transforms.log(Transforms.exp(x.subColumnVector(max), false).sum(1), false).reshape(n, 1).addi(max);
    float[] l = hostFloats(lse), xs = hostFloats(x);
    double[] nll = new double[n];
    for (int i = 0; i < n; i++) {
      if (mask[i] != 0) nll[i] = (double) l[i] - xs[i * vocab + targets[i]];
    }
    return nll;
  }

  // dlogits (N,V) <- logits (N,V), targets (N), dnll (N)
  @Override
  public Tensor crossEntropyBackward(Tensor logits, int[] targets, double[] dnll) {
    int n = logits.rows(), vocab = logits.cols();
    float[] w = new float[n], onehot = new float[n * vocab];
    for (int i = 0; i < n; i++) {
      w[i] = (float) dnll[i];
      onehot[i * vocab + targets[i]] = (float) dnll[i];
    }
    INDArray p = rowSoftmax(a(logits)).muliColumnVector(fromFloats(n, 1, w));
    return t(p.subi(fromFloats(n, vocab, onehot)));
  }
}
