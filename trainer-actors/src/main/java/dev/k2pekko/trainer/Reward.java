package dev.k2pekko.trainer;

import com.typesafe.config.Config;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.Verdict;

/**
 * The RL reward of an episode, several objectives in one number (docs/LOOP.md, "RL: reward and objective"):
 * <ul>
 *   <li>the verifiable score {@link #of(Verdict)} (end-state, side-effect and answer checks, with the judge's rubric
 *   bonus once every check passes), weight {@code k2.reward.verifiable};</li>
 *   <li>the learned critic's score (its probability that the judge accepts), weight {@code k2.reward.critic};</li>
 *   <li>a cost: {@code k2.reward.cost} per tool call;</li>
 *   <li>a safety penalty: {@code k2.reward.safety} per violation, a call of a tool the task forbids or a call the
 *   firewall refused.</li>
 * </ul>
 * An open task ({@link #OPEN}: its checker is withheld from training) has no verifiable term: its verdict is never
 * read for the reward, and the critic's score carries both weights.
 */
public final class Reward {
  private Reward() {}

  public static final double VERIFIABLE_WEIGHT = 0.7;

  /** The category of the open tasks, whose checker (the hidden rubric) training never reads. */
  public static final String OPEN = "open";

  /**
   * The verifiable part: the fraction of the verifiable checks that pass carries 0.7; the rubric score adds up to 0.3
   * only when every verifiable check passes, so an episode that games the rubric without doing the task gains
   * nothing from it, and among correct episodes the clean ones (no redundant or forbidden calls) are preferred.
   */
  public static double of(Verdict v) {
    double verifiable = v.verifiableScore();
    if (verifiable >= 1.0 - 1e-12) return VERIFIABLE_WEIGHT + (1 - VERIFIABLE_WEIGHT) * v.rubricScore();
    return VERIFIABLE_WEIGHT * verifiable;
  }

  /**
   * The weights of the objectives, {@code k2.reward.*}. The default, verifiable 1 and nothing else, is the reward
   * the verifiable tasks trained with before the mix existed.
   */
  public record Weights(double verifiable, double critic, double cost, double safety) {
    public static final Weights DEFAULT = new Weights(1, 0, 0, 0);

    public Weights {
      check("verifiable", verifiable);
      check("critic", critic);
      check("cost", cost);
      check("safety", safety);
      if (verifiable + critic <= 0) {
        throw new IllegalArgumentException("k2.reward.verifiable + k2.reward.critic must be > 0: a reward of costs alone rewards doing nothing");
      }
    }

    private static void check(String name, double w) {
      if (!(w >= 0) || Double.isInfinite(w)) throw new IllegalArgumentException("k2.reward." + name + " must be a finite number >= 0, got " + w);
    }

    public static Weights fromConfig(Config config) {
      var c = config.getConfig("k2.reward");
      return new Weights(c.getDouble("verifiable"), c.getDouble("critic"), c.getDouble("cost"), c.getDouble("safety"));
    }

    /** Whether the reward reads the critic's score for verifiable tasks (open tasks always do). */
    public boolean usesCritic() {
      return critic > 0;
    }
  }

  /**
   * What the reward reads of one episode. {@code critic} is the critic's score, NaN where none was asked for (the
   * critic's weight is 0 and the task is not open); {@code violations}: forbidden-tool calls and firewall refusals.
   */
  public record Terms(boolean open, boolean accepted, double verifiable, double critic, int calls, int violations) {
    /** The terms of a judged episode; {@code critic} NaN when not scored. */
    public static Terms of(Trajectory t, double critic) {
      var v = t.verdict();
      boolean open = OPEN.equals(t.category());
      int violations = 0;
      if (v != null) for (var r : v.reasons()) if (r.startsWith("forbidden-tool:")) violations++;
      for (Step s : t.steps()) if (refused(s)) violations++;
      // an open task's verdict is the hidden rubric's: only its public part (the safety check above) is read
      return new Terms(open, !open && v != null && v.accepted(), open || v == null ? 0 : Reward.of(v), critic, t.steps().size(), violations);
    }

    private static boolean refused(Step s) {
      if (s.error() == null) return false;
      for (var k : dev.k2pekko.protocol.ToolError.values()) if (k.refusal() && k.name().equals(s.error())) return true;
      return false;
    }
  }

  /** The reward: the weighted objectives less cost and safety penalties. */
  public static double mix(Weights w, Terms t) {
    return quality(w, t) - penalty(w, t);
  }

  /** The objectives without the penalties: verifiable and critic (an open task: the critic with both weights). */
  static double quality(Weights w, Terms t) {
    if (t.open()) return (w.verifiable() + w.critic()) * critic(t);
    return w.verifiable() * t.verifiable() + (w.critic() > 0 ? w.critic() * critic(t) : 0);
  }

  /** What the episode cost: tool calls and safety violations, weighted. */
  public static double penalty(Weights w, Terms t) {
    return w.cost() * t.calls() + w.safety() * t.violations();
  }

  /**
   * Whether the episode counts as a success, what the filtered objective learns from: the weighted vote of the judge's
   * acceptance and the critic's score reaches one half. With the default weights that is the judge's acceptance. An
   * open task's successes are decided per group, by {@link #openSuccesses}; alone, its rollout counts when the critic
   * scores it at least one half.
   */
  public static boolean success(Weights w, Terms t) {
    if (t.open()) return critic(t) >= 0.5;
    if (w.critic() == 0) return t.accepted();
    double vote = (w.verifiable() * (t.accepted() ? 1 : 0) + w.critic() * critic(t)) / (w.verifiable() + w.critic());
    return vote >= 0.5;
  }

  /** How far a group's best critic score must stand above its worst for the best to count as an open task's success. */
  public static final double OPEN_MARGIN = 0.1;

  /**
   * The successes of a group of rollouts of one open task, by the critic's scores alone: the best-scored rollouts
   * (ties included) when the best stands at least {@link #OPEN_MARGIN} above the worst, else none. Relative, not a
   * threshold: a critic that never saw the family may score all its episodes low (its probabilities are calibrated on
   * the verifiable tasks) and still rank them well, and a best-of-K choice needs only the ranking.
   */
  public static boolean[] openSuccesses(double[] critic) {
    boolean[] all = new boolean[critic.length];
    java.util.Arrays.fill(all, true);
    return openSuccesses(critic, all);
  }

  /**
   * As above, where a rollout that is not {@code finished} (it answered with items of the task's checklist left, or
   * never answered: {@link #finished}) is never a success, whatever the critic says: the critic's ranking of
   * unfinished rollouts above finished ones is a hole RL found (docs/LOOP.md, "Session 16"); finishing is a public
   * check. The margin is still measured against the group's worst score, unfinished rollouts included: a finished
   * rollout the critic scores as low as the rest is no success (session 16's gate ranked unfinished rollouts at minus
   * infinity, so any finished one won, and RL learned to finish with acknowledgements the critic scored 0).
   */
  public static boolean[] openSuccesses(double[] critic, boolean[] finished) {
    if (finished.length != critic.length) throw new IllegalArgumentException("one finished flag per score: " + finished.length + " for " + critic.length);
    double best = Double.NEGATIVE_INFINITY, worst = Double.POSITIVE_INFINITY;
    for (int i = 0; i < critic.length; i++) {
      double c = critic[i];
      if (Double.isNaN(c)) throw new IllegalStateException("an open task's rollout has no critic score");
      if (finished[i]) best = Math.max(best, c);
      worst = Math.min(worst, c);
    }
    boolean[] out = new boolean[critic.length];
    if (critic.length < 2 || best == Double.NEGATIVE_INFINITY || best - worst < OPEN_MARGIN) return out;
    for (int i = 0; i < critic.length; i++) out[i] = finished[i] && critic[i] >= best - 1e-12;
    return out;
  }

  /**
   * Whether an episode finished its task as the harness sees it: it answered, and every item of the prompt's checklist
   * had a successful call before that ({@link dev.k2pekko.agents.policy.PolicyFormat#itemsLeft}). Read from the prompt
   * and the calls' outcomes alone, so it may gate an open task's rollouts, whose checker stays hidden.
   */
  public static boolean finished(Trajectory t) {
    return t.finalAnswer() != null && dev.k2pekko.agents.policy.PolicyFormat.itemsLeft(t.prompt(), t.steps()) <= 0;
  }

  private static double critic(Terms t) {
    if (Double.isNaN(t.critic())) throw new IllegalStateException("the reward needs the critic's score of this episode and has none");
    return t.critic();
  }
}
