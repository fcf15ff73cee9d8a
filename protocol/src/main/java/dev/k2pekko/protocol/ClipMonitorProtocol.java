package dev.k2pekko.protocol;

import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * The clip-monitor's protocol: learners report every head's S_max, the parameter-server coordinator closes a step and
 * gets the max over that step's learners back. The monitor measures; the rule that turns a maximum into a QK rescale
 * is the optimizer's ({@code dev.k2pekko.optim.QkClip}).
 */
public final class ClipMonitorProtocol {
  private ClipMonitorProtocol() {}

  /** What the clip-monitor accepts. */
  public sealed interface Command permits ReportMaxLogits, CloseStep, GetHistory, Command.Internal {
    /** The monitor's own messages (its timers), declared next to its behaviour. */
    non-sealed interface Internal extends Command {}
  }

  /**
   * Every head's S_max (layers x heads) of a learner's forward pass at {@code version}: {@code maxLogit} at the weights
   * as served, {@code trained} of the forward its gradient came from. They differ when a head was over tau and the
   * learner re-clipped its copy of the weights before computing the gradient (k2.ps.enforce-at-learners).
   */
  public record ReportMaxLogits(long version, String learnerId, double[][] maxLogit, double[][] trained) implements Command, KryoWire {
    /** A forward pass whose gradient came from the weights as served. */
    public ReportMaxLogits(long version, String learnerId, double[][] maxLogit) {
      this(version, learnerId, maxLogit, maxLogit);
    }
  }

  /**
   * Step {@code version} is about to be applied with these learners' gradients: reply with the max over their reports
   * (waiting up to the monitor's timeout for a learner that has not reported, then answering without it).
   */
  public record CloseStep(long version, ArrayList<String> contributors, ActorRef<StepMaxLogits> replyTo) implements Command, KryoWire {}

  /**
   * One closed step: the per-head max (layers x heads) over the {@code reporters} of its {@code expected} learners that
   * reported in time, at the weights as served ({@code maxLogit}, what the rescales follow) and in the forward passes
   * the step's gradients came from ({@code trained}); both null when none reported.
   */
  public record StepMaxLogits(long version, double[][] maxLogit, double[][] trained, int reporters, int expected) implements KryoWire {
    /** A step whose gradients all came from the weights as served. */
    public StepMaxLogits(long version, double[][] maxLogit, int reporters, int expected) {
      this(version, maxLogit, maxLogit, reporters, expected);
    }

    public boolean measured() {
      return reporters > 0;
    }

    /** Whether a learner re-clipped a head before its gradient: some head's trained maximum is under its served one. */
    public boolean reclipped() {
      if (maxLogit == null || trained == null) return false;
      for (int l = 0; l < maxLogit.length; l++) for (int h = 0; h < maxLogit[l].length; h++) if (trained[l][h] < maxLogit[l][h]) return true;
      return false;
    }
  }

  public record GetHistory(ActorRef<History> replyTo) implements Command, KryoWire {}

  /** Every measured step's maxima (layers x heads each), and the threshold of the run. */
  public record History(double tau, int layers, int heads, List<StepMaxLogits> steps) implements KryoWire {
    /** The largest S_max over every head and every step (NaN before the first step). */
    public double largest() {
      double m = Double.NaN;
      for (var s : steps) for (double[] row : s.maxLogit()) for (double v : row) m = Double.isNaN(m) ? v : Math.max(m, v);
      return m;
    }

    /**
     * The largest S_max over every head of the steps measured on weights that an optimizer step (and its rescales) made,
     * versions from 1 on: what QK-Clip's "every head at or under tau after every step" is checked against. NaN when none.
     */
    public double largestAfterStep() {
      double m = Double.NaN;
      for (var s : steps) {
        if (s.version() < 1) continue;
        for (double[] row : s.maxLogit()) for (double v : row) m = Double.isNaN(m) ? v : Math.max(m, v);
      }
      return m;
    }

    /**
     * The q-quantile (0 &lt;= q &lt;= 1, nearest rank) of the per-head maxima: every finite (step, layer, head) value of
     * the history, the distribution a run's tau is chosen from. NaN before the first measured step.
     */
    public double quantile(double q) {
      if (!(q >= 0 && q <= 1)) throw new IllegalArgumentException("quantile must lie in [0, 1], got " + q);
      var all = new ArrayList<Double>();
      // a step whose learners computed nothing (RL groups without signal) reports -Infinity: no measurement
      for (var s : steps) for (double[] row : s.maxLogit()) for (double v : row) if (Double.isFinite(v)) all.add(v);
      if (all.isEmpty()) return Double.NaN;
      all.sort(null);
      return all.get(Math.max(0, (int) Math.ceil(q * all.size()) - 1));
    }

    /** How many of the steps measured after a step (versions from 1 on) found a head over tau. */
    public int stepsOverTauAfterStep() {
      int n = 0;
      for (var s : steps) {
        if (s.version() < 1) continue;
        boolean over = false;
        for (double[] row : s.maxLogit()) for (double v : row) over |= v > tau;
        if (over) n++;
      }
      return n;
    }

    /**
     * The largest S_max of any forward pass a gradient came from (every step, after the learners' re-clips): with
     * k2.ps.enforce-at-learners on it is at or under tau whenever the served one is over. NaN before the first step.
     */
    public double largestTrained() {
      double m = Double.NaN;
      for (var s : steps) for (double[] row : s.trained()) for (double v : row) m = Double.isNaN(m) ? v : Math.max(m, v);
      return m;
    }

    /** How many steps had a forward pass a gradient came from with a head over tau. */
    public int stepsOverTauTrained() {
      int n = 0;
      for (var s : steps) {
        boolean over = false;
        for (double[] row : s.trained()) for (double v : row) over |= v > tau;
        if (over) n++;
      }
      return n;
    }

    /** How many steps a learner re-clipped a head in before computing its gradient. */
    public int reclippedSteps() {
      int n = 0;
      for (var s : steps) if (s.reclipped()) n++;
      return n;
    }
  }
}
