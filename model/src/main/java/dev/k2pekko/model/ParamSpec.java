package dev.k2pekko.model;

/**
 * One named parameter of the policy: shape (rows, cols), kind, and for the attention projections the
 * layer they belong to (-1 elsewhere). Linear weights are stored (out, in), as y = x W^T, so a head's
 * slice of W_q or W_k is a block of rows: rows [h*D, (h+1)*D).
 */
public record ParamSpec(String name, int rows, int cols, ParamKind kind, int layer, Role role) {
  public enum Role { QUERY, KEY, OTHER }

  public int size() {
    return rows * cols;
  }
}
