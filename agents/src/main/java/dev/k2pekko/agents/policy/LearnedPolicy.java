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

  @Override public Run start(Task task, long seed) { return new Run(task, new SplittableRandom(seed)); }

  /** One episode: its task, the steps so far, its random stream and the log-probability of what it wrote. */
  public final class Run implements Episode {
    private final Task task;
    private final SplittableRandom rnd;
    private final java.util.List<Step> steps = new java.util.ArrayList<>();
    private double logProb;
    private int[] lastAction = new int[0];

    Run(Task task, SplittableRandom rnd) {
      this.task = task;
      this.rnd = rnd;
    }

    /** The weights version this episode is pinned to. */
    public long version() { return version; }

    /** log pi(every action token so far | its view) under the sampling weights, at temperature 1. */
    public double logProb() { return logProb; }

    /** The tokens of the last action written (empty when the view no longer fit and it answered without writing). */
    public int[] lastAction() { return lastAction; }

    @Override public Action next(Step previous) {
      if (previous != null) steps.add(previous);
      int[] view = format.view(task.prompt(), steps);
      var session = decoder.session();
      if (view.length + 2 > session.remaining()) { // out of context: the judge sees an empty answer
        lastAction = new int[0];
        return new Action.Answer("");
      }
      double[] logits = session.feed(view);
      int[] out = new int[MAX_ACTION_TOKENS];
      int n = 0;
      while (n < MAX_ACTION_TOKENS) {
        int t = Sampler.pick(logits, temperature, 0, rnd);
        logProb += logSoftmax(logits, t);
        out[n++] = t;
        if (t == format.eos() || session.remaining() == 0) break;
        logits = session.feed(t);
      }
      lastAction = Arrays.copyOf(out, n);
      return format.parse(lastAction, PolicyFormat.results(steps));
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
