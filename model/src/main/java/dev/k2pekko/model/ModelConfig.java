package dev.k2pekko.model;

/**
 * Shape of the decoder-only policy. Positions are learned absolute embeddings (see docs/MODEL.md):
 * the context is short and fixed, nothing needs to extrapolate past it, and q.k stays a plain bilinear
 * form in W_q and W_k, so QK-Clip's rescaling multiplies every logit of a head by exactly gamma.
 *
 * @param mlpRatio hidden width of the GELU MLP is mlpRatio * dModel
 */
public record ModelConfig(int vocab, int dModel, int layers, int heads, int context, int mlpRatio, double normEps) {
  public ModelConfig {
    if (dModel % heads != 0) throw new IllegalArgumentException("dModel " + dModel + " not divisible by heads " + heads);
    if (vocab < 2 || layers < 1 || context < 2 || mlpRatio < 1) throw new IllegalArgumentException("bad config");
  }

  /** The default policy: small enough to train in minutes on 2 CPU cores. */
  public static ModelConfig defaults(int vocab) {
    return new ModelConfig(vocab, 64, 2, 4, 128, 4, 1e-5);
  }

  public int headDim() {
    return dModel / heads;
  }

  public ModelConfig withContext(int context) {
    return new ModelConfig(vocab, dModel, layers, heads, context, mlpRatio, normEps);
  }
}
