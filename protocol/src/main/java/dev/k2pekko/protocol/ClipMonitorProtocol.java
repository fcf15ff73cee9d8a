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

  /** Every head's S_max (layers x heads) of a learner's forward pass at {@code version}. */
  public record ReportMaxLogits(long version, String learnerId, double[][] maxLogit) implements Command, KryoWire {}

  /**
   * Step {@code version} is about to be applied with these learners' gradients: reply with the max over their reports
   * (waiting up to the monitor's timeout for a learner that has not reported, then answering without it).
   */
  public record CloseStep(long version, ArrayList<String> contributors, ActorRef<StepMaxLogits> replyTo) implements Command, KryoWire {}

  /**
   * One closed step: the per-head max (layers x heads) over the {@code reporters} of its {@code expected} learners that
   * reported in time; {@code maxLogit} is null when none did.
   */
  public record StepMaxLogits(long version, double[][] maxLogit, int reporters, int expected) implements KryoWire {
    public boolean measured() {
      return reporters > 0;
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
  }
}
