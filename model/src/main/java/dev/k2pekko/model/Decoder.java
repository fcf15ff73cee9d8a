package dev.k2pekko.model;

import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Simd;
import java.util.Arrays;

/**
 * Incremental inference for {@link PolicyModel} with a key/value cache: each token of an episode is processed once,
 * whatever the length of what came before. A {@code Decoder} is an immutable snapshot of the weights (fp64, copied
 * out of the model's tensors), shared by any number of {@link Session}s; a session is one sequence.
 *
 * <p>The arithmetic is the model's own forward pass, row by row: the same RMSNorm, tanh-GELU, causal softmax and
 * learned positions, so a session's logits equal the last row of {@code PolicyModel.forward} over the same tokens
 * (checked in the tests to 1e-9).
 */
public final class Decoder {
  private static final double GELU_S = Math.sqrt(2.0 / Math.PI);

  private final ModelConfig cfg;
  // the projections (wq .. w2) and the head transposed (see t)
  private final double[] tokEmb, posEmb, normF, head;
  private final double[][] norm1, wq, wk, wv, wo, norm2, w1, w2;

  public Decoder(PolicyModel model) {
    this.cfg = model.config();
    int layers = cfg.layers();
    tokEmb = w(model, "tok_emb");
    posEmb = w(model, "pos_emb");
    normF = w(model, "norm_f");
    head = t(model, "head");
    norm1 = new double[layers][];
    wq = new double[layers][];
    wk = new double[layers][];
    wv = new double[layers][];
    wo = new double[layers][];
    norm2 = new double[layers][];
    w1 = new double[layers][];
    w2 = new double[layers][];
    for (int l = 0; l < layers; l++) {
      String p = "layer" + l + ".";
      norm1[l] = w(model, p + "norm1");
      wq[l] = t(model, p + "wq");
      wk[l] = t(model, p + "wk");
      wv[l] = t(model, p + "wv");
      wo[l] = t(model, p + "wo");
      norm2[l] = w(model, p + "norm2");
      w1[l] = t(model, p + "w1");
      w2[l] = t(model, p + "w2");
    }
  }

  private static double[] w(PolicyModel m, String name) {
    return m.parameter(name).toDoubles();
  }

  /** A weight matrix (rows, cols) stored transposed (cols, rows): a matrix-vector product is then one vector loop over the rows. */
  private static double[] t(PolicyModel m, String name) {
    return ReferenceOps.INSTANCE.transpose(m.parameter(name)).toDoubles();
  }

  public ModelConfig config() { return cfg; }

  public Session session() { return new Session(); }

  /** One sequence's cache. Not thread-safe; a session belongs to one episode. */
  public final class Session {
    private final double[][] keys = new double[cfg.layers()][], values = new double[cfg.layers()][];
    // scratch for one token's pass (a session is one sequence on one thread)
    private final double[] x = new double[cfg.dModel()], n = new double[cfg.dModel()], q = new double[cfg.dModel()],
        att = new double[cfg.dModel()], u = new double[cfg.mlpRatio() * cfg.dModel()], scores = new double[cfg.context()];
    private int length;

    private Session() {
      for (int l = 0; l < cfg.layers(); l++) {
        keys[l] = new double[cfg.context() * cfg.dModel()];
        values[l] = new double[cfg.context() * cfg.dModel()];
      }
    }

    /** Tokens consumed so far. */
    public int length() { return length; }

    /** Room left in the context. */
    public int remaining() { return cfg.context() - length; }

    /** Feeds tokens; returns the logits (V) after the last one. */
    public double[] feed(int[] tokens) {
      if (tokens.length == 0) throw new IllegalArgumentException("nothing to feed");
      // the logits of every token but the last are never read: the vocabulary projection is skipped for them
      for (int i = 0; i < tokens.length - 1; i++) step(tokens[i], false);
      return step(tokens[tokens.length - 1], true);
    }

    /** Feeds one token; returns the logits (V) for the next. */
    public double[] feed(int token) { return step(token, true); }

    private double[] step(int token, boolean wantLogits) {
      if (length >= cfg.context()) throw new IllegalStateException("context of " + cfg.context() + " tokens is full");
      if (token < 0 || token >= cfg.vocab()) throw new IllegalArgumentException("token " + token + " outside the vocabulary");
      int c = cfg.dModel(), pos = length, hid = cfg.mlpRatio() * c;
      double[] x = this.x, n = this.n, q = this.q, att = this.att, u = this.u;
      for (int j = 0; j < c; j++) x[j] = tokEmb[token * c + j] + posEmb[pos * c + j];
      for (int l = 0; l < cfg.layers(); l++) {
        rmsnorm(x, norm1[l], n);
        matvec(wq[l], n, q, c, c);
        matvecInto(wk[l], n, keys[l], pos * c, c, c);
        matvecInto(wv[l], n, values[l], pos * c, c, c);
        attend(q, keys[l], values[l], pos, att);
        addMatvec(wo[l], att, x, c, c);
        rmsnorm(x, norm2[l], n);
        matvec(w1[l], n, u, hid, c);
        for (int i = 0; i < hid; i++) u[i] = gelu(u[i]);
        addMatvec(w2[l], u, x, c, hid);
      }
      length++;
      return wantLogits ? logits() : null;
    }

    /** The logits (V) of the residual stream in {@code x}. */
    private double[] logits() {
      rmsnorm(x, normF, n);
      double[] logits = new double[cfg.vocab()];
      matvec(head, n, logits, cfg.vocab(), c());
      return logits;
    }

    /** att (c) = causal attention of query q at position pos over the cached keys and values 0..pos, every head. */
    private void attend(double[] q, double[] kc, double[] vc, int pos, double[] att) {
      int c = cfg.dModel(), hd = cfg.headDim();
      double scale = 1.0 / Math.sqrt(hd);
      for (int h = 0; h < cfg.heads(); h++) {
        int off = h * hd;
        scores(q, kc, off, hd, c, pos, scale, scores);
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j <= pos; j++) max = Math.max(max, scores[j]);
        double sum = 0;
        for (int j = 0; j <= pos; j++) sum += scores[j] = Math.exp(scores[j] - max);
        Arrays.fill(att, off, off + hd, 0.0);
        for (int j = 0; j <= pos; j++) {
          double p = scores[j] / sum;
          for (int d = 0; d < hd; d++) att[off + d] += p * vc[j * c + off + d];
        }
      }
    }
  }

  private int c() { return cfg.dModel(); }

  private static double gelu(double v) {
    return 0.5 * v * (1 + Math.tanh(GELU_S * (v + 0.044715 * v * v * v)));
  }

  /**
   * scores[j] = scale * (q . k_j) over one head's slice, for j = 0..pos. Four keys at a time in four independent
   * sums (each still adds its products in order d = 0, 1, ...: the same bits as one key at a time, without waiting
   * on one chain of additions).
   */
  private static void scores(double[] q, double[] kc, int off, int hd, int c, int pos, double scale, double[] scores) {
    int j = 0;
    for (; j + 3 <= pos; j += 4) {
      int k0 = j * c + off, k1 = k0 + c, k2 = k1 + c, k3 = k2 + c;
      double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int d = 0; d < hd; d++) {
        double qd = q[off + d];
        s0 += qd * kc[k0 + d];
        s1 += qd * kc[k1 + d];
        s2 += qd * kc[k2 + d];
        s3 += qd * kc[k3 + d];
      }
      scores[j] = s0 * scale;
      scores[j + 1] = s1 * scale;
      scores[j + 2] = s2 * scale;
      scores[j + 3] = s3 * scale;
    }
    for (; j <= pos; j++) {
      double s = 0;
      int k = j * c + off;
      for (int d = 0; d < hd; d++) s += q[off + d] * kc[k + d];
      scores[j] = s * scale;
    }
  }

  private void rmsnorm(double[] x, double[] w, double[] out) {
    double ss = 0;
    for (double v : x) ss += v * v;
    double r = 1.0 / Math.sqrt(ss / x.length + cfg.normEps());
    for (int j = 0; j < x.length; j++) out[j] = x[j] * r * w[j];
  }

  /** out (rows) = W (rows, cols) . v (cols), W given transposed. */
  private static void matvec(double[] wT, double[] v, double[] out, int rows, int cols) {
    Simd.matvecT(wT, v, 0, out, 0, rows, cols, false);
  }

  /** out[at + i] = W_i . v, W given transposed. */
  private static void matvecInto(double[] wT, double[] v, double[] out, int at, int rows, int cols) {
    Simd.matvecT(wT, v, 0, out, at, rows, cols, false);
  }

  /** x[i] += W_i . v (the sum formed first), W given transposed. */
  private static void addMatvec(double[] wT, double[] v, double[] x, int rows, int cols) {
    Simd.matvecT(wT, v, 0, x, 0, rows, cols, true);
  }
}
