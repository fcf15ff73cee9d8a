package dev.k2pekko.model;

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
  private final double[] tokEmb, posEmb, normF, head;
  private final double[][] norm1, wq, wk, wv, wo, norm2, w1, w2;

  public Decoder(PolicyModel model) {
    this.cfg = model.config();
    int layers = cfg.layers();
    tokEmb = w(model, "tok_emb");
    posEmb = w(model, "pos_emb");
    normF = w(model, "norm_f");
    head = w(model, "head");
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
      wq[l] = w(model, p + "wq");
      wk[l] = w(model, p + "wk");
      wv[l] = w(model, p + "wv");
      wo[l] = w(model, p + "wo");
      norm2[l] = w(model, p + "norm2");
      w1[l] = w(model, p + "w1");
      w2[l] = w(model, p + "w2");
    }
  }

  private static double[] w(PolicyModel m, String name) {
    return m.parameter(name).toDoubles();
  }

  public ModelConfig config() { return cfg; }

  public Session session() { return new Session(); }

  /** One sequence's cache. Not thread-safe; a session belongs to one episode. */
  public final class Session {
    private final double[][] keys = new double[cfg.layers()][], values = new double[cfg.layers()][];
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
      double[] logits = null;
      for (int t : tokens) logits = feed(t);
      return logits;
    }

    /** Feeds one token; returns the logits (V) for the next. */
    public double[] feed(int token) {
      if (length >= cfg.context()) throw new IllegalStateException("context of " + cfg.context() + " tokens is full");
      if (token < 0 || token >= cfg.vocab()) throw new IllegalArgumentException("token " + token + " outside the vocabulary");
      int c = cfg.dModel(), pos = length, hd = cfg.headDim(), hid = cfg.mlpRatio() * c;
      double[] x = new double[c];
      for (int j = 0; j < c; j++) x[j] = tokEmb[token * c + j] + posEmb[pos * c + j];
      double[] n = new double[c], q = new double[c], att = new double[c], u = new double[hid], scores = new double[pos + 1];
      double scale = 1.0 / Math.sqrt(hd);
      for (int l = 0; l < cfg.layers(); l++) {
        rmsnorm(x, norm1[l], n);
        matvec(wq[l], n, q, c, c);
        matvecInto(wk[l], n, keys[l], pos * c, c, c);
        matvecInto(wv[l], n, values[l], pos * c, c, c);
        double[] kc = keys[l], vc = values[l];
        for (int h = 0; h < cfg.heads(); h++) {
          int off = h * hd;
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j <= pos; j++) {
            double s = 0;
            for (int d = 0; d < hd; d++) s += q[off + d] * kc[j * c + off + d];
            scores[j] = s * scale;
            max = Math.max(max, scores[j]);
          }
          double sum = 0;
          for (int j = 0; j <= pos; j++) sum += scores[j] = Math.exp(scores[j] - max);
          Arrays.fill(att, off, off + hd, 0.0);
          for (int j = 0; j <= pos; j++) {
            double p = scores[j] / sum;
            for (int d = 0; d < hd; d++) att[off + d] += p * vc[j * c + off + d];
          }
        }
        addMatvec(wo[l], att, x, c, c);
        rmsnorm(x, norm2[l], n);
        matvec(w1[l], n, u, hid, c);
        for (int i = 0; i < hid; i++) {
          double v = u[i];
          u[i] = 0.5 * v * (1 + Math.tanh(GELU_S * (v + 0.044715 * v * v * v)));
        }
        addMatvec(w2[l], u, x, c, hid);
      }
      rmsnorm(x, normF, n);
      double[] logits = new double[cfg.vocab()];
      matvec(head, n, logits, cfg.vocab(), c);
      length++;
      return logits;
    }
  }

  private void rmsnorm(double[] x, double[] w, double[] out) {
    double ss = 0;
    for (double v : x) ss += v * v;
    double r = 1.0 / Math.sqrt(ss / x.length + cfg.normEps());
    for (int j = 0; j < x.length; j++) out[j] = x[j] * r * w[j];
  }

  /** out (rows) = W (rows, cols) . v (cols) */
  private static void matvec(double[] w, double[] v, double[] out, int rows, int cols) {
    matvecInto(w, v, out, 0, rows, cols);
  }

  private static void matvecInto(double[] w, double[] v, double[] out, int at, int rows, int cols) {
    for (int i = 0; i < rows; i++) {
      double s = 0;
      int o = i * cols;
      for (int j = 0; j < cols; j++) s += w[o + j] * v[j];
      out[at + i] = s;
    }
  }

  private static void addMatvec(double[] w, double[] v, double[] x, int rows, int cols) {
    for (int i = 0; i < rows; i++) {
      double s = 0;
      int o = i * cols;
      for (int j = 0; j < cols; j++) s += w[o + j] * v[j];
      x[i] += s;
    }
  }
}
