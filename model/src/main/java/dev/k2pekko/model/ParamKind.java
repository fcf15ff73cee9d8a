package dev.k2pekko.model;

/** What a parameter is; the optimizer routes hidden matrices to Muon and everything else to AdamW. */
public enum ParamKind {
  /** 2-D weight inside a transformer block (W_q, W_k, W_v, W_o, MLP): Muon. */
  HIDDEN_MATRIX,
  /** Token and position embedding tables: AdamW. */
  EMBEDDING,
  /** The output projection to the vocabulary: AdamW. */
  OUTPUT_HEAD,
  /** RMSNorm gains: AdamW. */
  NORM_GAIN
}
