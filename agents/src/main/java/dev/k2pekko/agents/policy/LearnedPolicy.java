package dev.k2pekko.agents.policy;

import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.model.Decoder;
import dev.k2pekko.model.Sampler;
import dev.k2pekko.protocol.Step;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The trained policy, playing in-process from a weights snapshot (a {@link Decoder}): it reads the episode in
 * {@link PolicyFormat} and writes each action token by token, sampling at {@code temperature} (0 = greedy). Every
 * episode keeps its key/value cache, so each token is computed once. It also adds up log pi(action tokens) at
 * temperature 1, the {@code pi_old} of the K2 RL loss for the version that sampled the episode.
 */
public final class LearnedPolicy implements Policy {
  /** The longest action it may write before the episode is ended as a runaway. */
  public static final int MAX_ACTION_TOKENS = 48;

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

  @Override public Run start(Task task, long seed) { return new Run(task, new SplittableRandom(seed)); }

  /** One episode: its cache, its random stream and the log-probability of what it wrote. */
  public final class Run implements Episode {
    private final Decoder.Session session = decoder.session();
    private final SplittableRandom rnd;
    private double[] logits;
    private double logProb;
    private boolean full;
    private int successes;

    Run(Task task, SplittableRandom rnd) {
      this.rnd = rnd;
      int[] prompt = format.prompt(task.prompt());
      if (prompt.length >= session.remaining()) full = true;
      else logits = session.feed(prompt);
    }

    /** The weights version this episode is pinned to. */
    public long version() { return version; }

    /** log pi(every action token so far) under the sampling weights, at temperature 1. */
    public double logProb() { return logProb; }

    @Override public Action next(Step previous) {
      if (previous != null && !full) {
        if (PolicyFormat.succeeded(previous)) successes++;
        int[] r = format.result(previous, successes);
        if (r.length >= session.remaining()) full = true;
        else logits = session.feed(r);
      }
      if (full) return new Action.Answer(""); // out of context: the judge sees no answer
      int[] out = new int[MAX_ACTION_TOKENS];
      int n = 0;
      while (n < MAX_ACTION_TOKENS) {
        int t = Sampler.pick(logits, temperature, 0, rnd);
        logProb += logSoftmax(logits, t);
        out[n++] = t;
        if (session.remaining() == 0) {
          full = true;
          break;
        }
        logits = session.feed(t);
        if (t == format.eos()) break;
      }
      return format.parse(Arrays.copyOf(out, n));
    }
  }

  static double logSoftmax(double[] logits, int t) {
    double max = Double.NEGATIVE_INFINITY;
    for (double l : logits) max = Math.max(max, l);
    double sum = 0;
    for (double l : logits) sum += Math.exp(l - max);
    return logits[t] - max - Math.log(sum);
  }
}
