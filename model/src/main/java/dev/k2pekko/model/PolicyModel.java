package dev.k2pekko.model;

import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Decoder-only pre-norm transformer policy: token + learned position embeddings, L blocks of
 * {@code x += Attn(RMSNorm(x)); x += MLP(RMSNorm(x))} with causal multi-head attention and a GELU MLP,
 * a final RMSNorm and an untied output head. No biases anywhere, so QK-Clip has only W_q and W_k rows
 * to rescale. Forward returns the per-layer, per-head max pre-softmax logits that QK-Clip needs.
 */
public final class PolicyModel {
  private final ModelConfig config;
  private final TensorOps ops;
  private final List<ParamSpec> specs;
  private final Map<String, Tensor> params = new LinkedHashMap<>();

  public PolicyModel(ModelConfig config, TensorOps ops, long seed) {
    this.config = config;
    this.ops = ops;
    this.specs = specsOf(config);
    var rnd = new Random(seed);
    int c = config.dModel();
    for (ParamSpec s : specs) {
      double std = switch (s.kind()) {
        case EMBEDDING -> 0.1;
        case OUTPUT_HEAD -> 0.5 / Math.sqrt(c);
        case NORM_GAIN -> 0.0;
        // fan-in init; the projections back into the residual stream are scaled by 1/sqrt(2L)
        case HIDDEN_MATRIX -> (s.name().endsWith(".wo") || s.name().endsWith(".w2") ? 1.0 / Math.sqrt(2.0 * config.layers()) : 1.0)
            / Math.sqrt(s.cols());
      };
      double[] d = new double[s.size()];
      for (int i = 0; i < d.length; i++) d[i] = s.kind() == ParamKind.NORM_GAIN ? 1.0 : rnd.nextGaussian() * std;
      params.put(s.name(), ops.tensor(s.rows(), s.cols(), d));
    }
  }

  /** A model sharing config and specs, with the given weights (copied into ops' tensors). */
  public PolicyModel(ModelConfig config, TensorOps ops, Map<String, Tensor> weights) {
    this.config = config;
    this.ops = ops;
    this.specs = specsOf(config);
    for (ParamSpec s : specs) {
      Tensor w = weights.get(s.name());
      if (w == null || w.rows() != s.rows() || w.cols() != s.cols()) throw new IllegalArgumentException("bad weight " + s.name());
      params.put(s.name(), ops.tensor(s.rows(), s.cols(), w.toDoubles()));
    }
  }

  public static List<ParamSpec> specsOf(ModelConfig cfg) {
    int c = cfg.dModel(), v = cfg.vocab(), hid = cfg.mlpRatio() * c;
    var out = new ArrayList<ParamSpec>();
    out.add(new ParamSpec("tok_emb", v, c, ParamKind.EMBEDDING, -1, ParamSpec.Role.OTHER));
    out.add(new ParamSpec("pos_emb", cfg.context(), c, ParamKind.EMBEDDING, -1, ParamSpec.Role.OTHER));
    for (int l = 0; l < cfg.layers(); l++) {
      String p = "layer" + l + ".";
      out.add(new ParamSpec(p + "norm1", 1, c, ParamKind.NORM_GAIN, l, ParamSpec.Role.OTHER));
      out.add(new ParamSpec(p + "wq", c, c, ParamKind.HIDDEN_MATRIX, l, ParamSpec.Role.QUERY));
      out.add(new ParamSpec(p + "wk", c, c, ParamKind.HIDDEN_MATRIX, l, ParamSpec.Role.KEY));
      out.add(new ParamSpec(p + "wv", c, c, ParamKind.HIDDEN_MATRIX, l, ParamSpec.Role.OTHER));
      out.add(new ParamSpec(p + "wo", c, c, ParamKind.HIDDEN_MATRIX, l, ParamSpec.Role.OTHER));
      out.add(new ParamSpec(p + "norm2", 1, c, ParamKind.NORM_GAIN, l, ParamSpec.Role.OTHER));
      out.add(new ParamSpec(p + "w1", hid, c, ParamKind.HIDDEN_MATRIX, l, ParamSpec.Role.OTHER));
      out.add(new ParamSpec(p + "w2", c, hid, ParamKind.HIDDEN_MATRIX, l, ParamSpec.Role.OTHER));
    }
    out.add(new ParamSpec("norm_f", 1, c, ParamKind.NORM_GAIN, -1, ParamSpec.Role.OTHER));
    out.add(new ParamSpec("head", v, c, ParamKind.OUTPUT_HEAD, -1, ParamSpec.Role.OTHER));
    return List.copyOf(out);
  }

  public static String queryWeight(int layer) {
    return "layer" + layer + ".wq";
  }

  public static String keyWeight(int layer) {
    return "layer" + layer + ".wk";
  }

  public ModelConfig config() {
    return config;
  }

  public TensorOps ops() {
    return ops;
  }

  public List<ParamSpec> specs() {
    return specs;
  }

  /** Live view of the weights by name, in spec order. */
  public Map<String, Tensor> parameters() {
    return Collections.unmodifiableMap(params);
  }

  public Tensor parameter(String name) {
    return params.get(name);
  }

  public void setParameter(String name, Tensor value) {
    Tensor old = params.get(name);
    if (old == null || old.rows() != value.rows() || old.cols() != value.cols()) {
      throw new IllegalArgumentException("bad update for " + name);
    }
    params.put(name, value);
  }

  public long parameterCount() {
    return specs.stream().mapToLong(ParamSpec::size).sum();
  }

  // ---- forward ----

  record LayerCache(Tensor xIn, TensorOps.Norm n1, Tensor q, Tensor k, Tensor v, TensorOps.Attention att, Tensor x1,
      TensorOps.Norm n2, Tensor u, Tensor g) {}

  /**
   * Everything backward needs, plus the outputs: logits (B*T, V) and {@link #maxLogit()}.
   */
  public record Forward(int[] ids, int[] positions, int batch, int seq, List<LayerCache> layers, Tensor xFinal,
      TensorOps.Norm normF, Tensor logits) {
    /**
     * maxLogit[layer][head], read from the layers' attention results when asked: on a GPU backend this is
     * one copy back for all layers (none at all when the cross-entropy's sync has already read them), so
     * the forward pass itself never waits for the device.
     */
    public double[][] maxLogit() {
      double[][] m = new double[layers.size()][];
      for (int l = 0; l < m.length; l++) m[l] = layers.get(l).att().maxLogit();
      return m;
    }
  }

  /** ids (B*T), row-major by sequence; T at most the context. */
  public Forward forward(int[] ids, int batch, int seq) {
    if (ids.length != batch * seq || seq > config.context()) {
      throw new IllegalArgumentException("ids " + ids.length + " for B=" + batch + " T=" + seq + " context " + config.context());
    }
    int[] pos = new int[ids.length];
    for (int i = 0; i < pos.length; i++) pos[i] = i % seq;
    Tensor x = ops.add(ops.embedding(params.get("tok_emb"), ids), ops.embedding(params.get("pos_emb"), pos));
    var caches = new ArrayList<LayerCache>();
    for (int l = 0; l < config.layers(); l++) {
      String p = "layer" + l + ".";
      var n1 = ops.rmsnorm(x, params.get(p + "norm1"), config.normEps());
      // q, k, v go only to attention and u only to GELU (and its backward): a backend may keep them narrower
      Tensor q = ops.matmulLowPrecision(n1.out(), false, params.get(p + "wq"), true);
      Tensor k = ops.matmulLowPrecision(n1.out(), false, params.get(p + "wk"), true);
      Tensor v = ops.matmulLowPrecision(n1.out(), false, params.get(p + "wv"), true);
      var att = ops.attention(q, k, v, batch, seq, config.heads());
      Tensor x1 = ops.add(x, ops.matmul(att.out(), false, params.get(p + "wo"), true));
      var n2 = ops.rmsnorm(x1, params.get(p + "norm2"), config.normEps());
      Tensor u = ops.matmulLowPrecision(n2.out(), false, params.get(p + "w1"), true);
      Tensor g = ops.gelu(u);
      Tensor x2 = ops.add(x1, ops.matmul(g, false, params.get(p + "w2"), true));
      caches.add(new LayerCache(x, n1, q, k, v, att, x1, n2, u, g));
      x = x2;
    }
    var nf = ops.rmsnorm(x, params.get("norm_f"), config.normEps());
    Tensor logits = ops.matmul(nf.out(), false, params.get("head"), true);
    return new Forward(ids, pos, batch, seq, List.copyOf(caches), x, nf, logits);
  }

  // ---- backward ----

  /** dlogits (B*T, V) -> gradient of every parameter, by name. */
  public Map<String, Tensor> backward(Forward f, Tensor dlogits) {
    var grads = new LinkedHashMap<String, Tensor>();
    var head = ops.matmulBackward(dlogits, f.normF().out(), false, params.get("head"), true);
    grads.put("head", head.second());
    var nf = ops.rmsnormBackward(head.first(), f.xFinal(), params.get("norm_f"), f.normF().rstd());
    grads.put("norm_f", nf.second());
    Tensor dx = nf.first();
    for (int l = config.layers() - 1; l >= 0; l--) {
      String p = "layer" + l + ".";
      LayerCache c = f.layers().get(l);
      // MLP branch: x2 = x1 + gelu(n2 W1^T) W2^T
      // (the GELU and attention backwards read their incoming gradients only as operands: a backend may keep
      // them narrower; the residual adds go with the norms' backwards)
      var w2 = ops.matmulBackwardLowPrecision(dx, c.g(), false, params.get(p + "w2"), true);
      Tensor du = ops.geluBackward(w2.first(), c.u());
      var w1 = ops.matmulBackward(du, c.n2().out(), false, params.get(p + "w1"), true);
      var n2 = ops.rmsnormBackwardAdd(w1.first(), c.x1(), params.get(p + "norm2"), c.n2().rstd(), dx);
      Tensor dx1 = n2.first();
      // attention branch: x1 = x + Attn(n1 Wq^T, n1 Wk^T, n1 Wv^T) Wo^T
      var wo = ops.matmulBackwardLowPrecision(dx1, c.att().out(), false, params.get(p + "wo"), true);
      var att = ops.attentionBackward(wo.first(), c.q(), c.k(), c.v(), c.att().probs(), f.batch(), f.seq(), config.heads());
      Tensor wq = params.get(p + "wq"), wk = params.get(p + "wk"), wv = params.get(p + "wv");
      // dn1 = dq Wq + dk Wk + dv Wv (one output), the weights' gradients dq^T n1, dk^T n1, dv^T n1
      Tensor dn1 = ops.matmulSum(List.of(att.first(), att.second(), att.third()), false, List.of(wq, wk, wv), false);
      var n1 = ops.rmsnormBackwardAdd(dn1, c.xIn(), params.get(p + "norm1"), c.n1().rstd(), dx1);
      dx = n1.first();
      grads.put(p + "w2", w2.second());
      grads.put(p + "w1", w1.second());
      grads.put(p + "norm2", n2.second());
      grads.put(p + "wo", wo.second());
      grads.put(p + "wq", ops.matmul(att.first(), true, c.n1().out(), false));
      grads.put(p + "wk", ops.matmul(att.second(), true, c.n1().out(), false));
      grads.put(p + "wv", ops.matmul(att.third(), true, c.n1().out(), false));
      grads.put(p + "norm1", n1.second());
    }
    grads.put("tok_emb", ops.embeddingBackward(dx, f.ids(), config.vocab()));
    grads.put("pos_emb", ops.embeddingBackward(dx, f.positions(), config.context()));
    var ordered = new LinkedHashMap<String, Tensor>();
    for (ParamSpec s : specs) ordered.put(s.name(), grads.get(s.name()));
    return ordered;
  }
}
