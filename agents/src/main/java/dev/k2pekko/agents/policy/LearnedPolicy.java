package dev.k2pekko.agents.policy;

import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.model.Decoder;
import dev.k2pekko.model.Sampler;
import dev.k2pekko.protocol.Step;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The trained policy, playing in-process from a weights snapshot (a {@link Decoder}): it reads the episode in
 * its {@link PolicyFormat#view} before each action and writes the action token by token with a key/value cache,
 * sampling at {@code temperature} (0 = greedy). It adds up log pi(action tokens | view) at temperature 1: the
 * {@code pi_old} of the K2 RL loss for the version that sampled the episode.
 */
public final class LearnedPolicy implements Policy {
  /** The longest action it may write before the episode is ended as a runaway. */
  public static final int MAX_ACTION_TOKENS = 32;

  private final PolicyFormat format;
  private final Decoder decoder;
  private final long version;
  private final double temperature;

  public LearnedPolicy(PolicyFormat format, Decoder decoder, long version, double temperature) {
    this.format = format;
    this.decoder = decoder;
    this.version = version;
    this.temperature = temperature;
  }

  @Override public String name() { return "learned@v" + version; }

  public long version() { return version; }

  /** The same weights, sampling at another temperature. */
  public LearnedPolicy withTemperature(double t) {
    return t == temperature ? this : new LearnedPolicy(format, decoder, version, t);
  }

  @Override public Run start(Task task, long seed) { return new Run(task.prompt(), java.util.List.of(), new SplittableRandom(seed)); }

  /**
   * An episode that is already under way: its prompt and the steps taken so far (a chat conversation read back by
   * {@code k2 serve}); the next action is then {@code next(null)} or {@link Run#next(Step, Limits)}.
   */
  public Run resume(String prompt, java.util.List<Step> history, long seed) {
    return new Run(prompt, history, new SplittableRandom(seed));
  }

  /**
   * What the next action may be (a client's {@code tool_choice} and {@code tools}): a call of one of {@code tools}
   * (universe names), an answer, or either; at most {@code maxTokens} tokens. The policy's own distribution is
   * renormalised over the allowed tokens, nothing else changes.
   */
  public record Limits(boolean mayCall, boolean mayAnswer, java.util.Set<String> tools, int maxTokens) {
    public Limits {
      if (!mayCall && !mayAnswer) throw new IllegalArgumentException("an action must be allowed");
      tools = java.util.Set.copyOf(tools);
    }

    public static final Limits NONE = new Limits(true, true, java.util.Set.of(), MAX_ACTION_TOKENS);
  }

  /** One episode: its task, the steps so far, its random stream and the log-probability of what it wrote. */
  public final class Run implements Episode {
    private final String prompt;
    private final SplittableRandom rnd;
    private final java.util.List<Step> steps;
    private double logProb;
    private int[] lastAction = new int[0];
    private double[] lastLogProbs = new double[0];

    Run(String prompt, java.util.List<Step> history, SplittableRandom rnd) {
      this.prompt = prompt;
      this.steps = new java.util.ArrayList<>(history);
      this.rnd = rnd;
    }

    /** The weights version this episode is pinned to. */
    public long version() { return version; }

    /** log pi(every action token so far | its view) under the sampling weights, at temperature 1. */
    public double logProb() { return logProb; }

    /** The tokens of the last action written (empty when the view no longer fit and it answered without writing). */
    public int[] lastAction() { return lastAction; }

    /** log pi of each token of the last action (what {@code k2 serve} reports as {@code logprobs}), at temperature 1. */
    public double[] lastLogProbs() { return lastLogProbs; }

    @Override public Action next(Step previous) { return next(previous, Limits.NONE); }

    /** The next action within {@code limits}: the first token masked to the allowed kinds, a call's tool to the allowed tools. */
    public Action next(Step previous, Limits limits) {
      if (previous != null) steps.add(previous);
      int[] view = format.view(prompt, steps);
      var session = decoder.session();
      if (view.length + 2 > session.remaining()) { // out of context: the judge sees an empty answer
        lastAction = new int[0];
        lastLogProbs = new double[0];
        return new Action.Answer("");
      }
      double[] logits = session.feed(view);
      int max = Math.min(MAX_ACTION_TOKENS, Math.max(1, limits.maxTokens()));
      int[] out = new int[max];
      double[] lps = new double[max];
      int n = 0;
      boolean limited = limits != Limits.NONE;
      while (n < max) {
        if (limited && n == 0) logits = only(logits, format.actionStarts(limits.mayCall(), limits.mayAnswer()));
        else if (limited && n == 1 && out[0] == format.callToken() && !limits.tools().isEmpty()) logits = only(logits, format.toolTokens(limits.tools()));
        int t = Sampler.pick(logits, temperature, 0, rnd);
        double lp = logSoftmax(logits, t);
        logProb += lp;
        lps[n] = lp;
        out[n++] = t;
        if (t == format.eos() || session.remaining() == 0) break;
        logits = session.feed(t);
      }
      lastAction = Arrays.copyOf(out, n);
      lastLogProbs = Arrays.copyOf(lps, n);
      return format.parse(lastAction, PolicyFormat.results(steps));
    }
  }

  /** The logits with every token outside {@code allowed} at minus infinity. */
  private static double[] only(double[] logits, int[] allowed) {
    double[] out = new double[logits.length];
    java.util.Arrays.fill(out, Double.NEGATIVE_INFINITY);
    for (int t : allowed) out[t] = logits[t];
    return out;
  }

  static double logSoftmax(double[] logits, int t) {
    double max = Double.NEGATIVE_INFINITY;
    for (double l : logits) max = Math.max(max, l);
    double sum = 0;
    for (double l : logits) sum += Math.exp(l - max);
    return logits[t] - max - Math.log(sum);
  }
}
