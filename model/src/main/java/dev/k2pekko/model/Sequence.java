package dev.k2pekko.model;

/**
 * One token sequence with the agent's actions marked: {@code action[i]} is true when token i was
 * produced by the policy (tool calls, answers) and false for prompt, tool results and padding. Only
 * action tokens are trained on and count towards log pi(y|x).
 */
public record Sequence(int[] tokens, boolean[] action) {
  public Sequence {
    if (tokens.length != action.length) throw new IllegalArgumentException("tokens and action marks differ in length");
    if (tokens.length < 2) throw new IllegalArgumentException("a sequence needs at least two tokens");
  }

  /** prompt tokens (not trained) followed by action tokens (trained). */
  public static Sequence of(int[] prompt, int[] actions) {
    int[] t = new int[prompt.length + actions.length];
    boolean[] a = new boolean[t.length];
    System.arraycopy(prompt, 0, t, 0, prompt.length);
    System.arraycopy(actions, 0, t, prompt.length, actions.length);
    for (int i = prompt.length; i < t.length; i++) a[i] = true;
    return new Sequence(t, a);
  }

  public int length() {
    return tokens.length;
  }
}
