package dev.k2pekko.clip;

import dev.k2pekko.protocol.ClipMonitorProtocol.CloseStep;
import dev.k2pekko.protocol.ClipMonitorProtocol.Command;
import dev.k2pekko.protocol.ClipMonitorProtocol.GetHistory;
import dev.k2pekko.protocol.ClipMonitorProtocol.History;
import dev.k2pekko.protocol.ClipMonitorProtocol.ReportMaxLogits;
import dev.k2pekko.protocol.ClipMonitorProtocol.StepMaxLogits;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.typed.ClusterSingleton;
import org.apache.pekko.cluster.typed.ClusterSingletonSettings;
import org.apache.pekko.cluster.typed.SingletonActor;

/**
 * The clip-monitor, a cluster singleton on {@code monitor} nodes. Learners report every head's S_max (the largest
 * pre-softmax logit q.k/sqrt(d) of their forward pass) at the version they computed at. When the coordinator
 * closes step v with its contributing learners, the monitor takes the max over their reports per (layer, head) —
 * waiting up to {@code reportTimeout} for a learner that has not reported, then answering without it — and replies
 * with those maxima ({@link StepMaxLogits}); the parameter server turns them into rescales with the optimizer's rule.
 * It keeps the history of every measured step for the run's report.
 */
public final class ClipMonitor extends AbstractBehavior<Command> {
  private record Deadline(long version) implements Command.Internal, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  public static ActorRef<Command> init(ActorSystem<?> system, double tau, int layers, int heads, Duration reportTimeout) {
    return ClusterSingleton.get(system).init(SingletonActor.of(
            Behaviors.supervise(create(tau, layers, heads, reportTimeout)).onFailure(SupervisorStrategy.restart()), "clip-monitor")
        .withSettings(ClusterSingletonSettings.create(system).withRole("monitor")));
  }

  /** tau is the run's QK-Clip threshold, kept for the history's readers. */
  public static Behavior<Command> create(double tau, int layers, int heads, Duration reportTimeout) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(t -> new ClipMonitor(ctx, t, tau, layers, heads, reportTimeout)));
  }

  private final TimerScheduler<Command> timers;
  private final double tau;
  private final int layers, heads;
  private final Duration reportTimeout;
  private final Map<Long, Map<String, ReportMaxLogits>> reports = new HashMap<>();
  private final Map<Long, CloseStep> waiting = new HashMap<>();
  private final List<StepMaxLogits> history = new ArrayList<>();

  private ClipMonitor(ActorContext<Command> ctx, TimerScheduler<Command> timers, double tau, int layers, int heads,
                      Duration reportTimeout) {
    super(ctx);
    if (!(tau > 0)) throw new IllegalArgumentException("tau must be positive, got " + tau);
    this.timers = timers;
    this.tau = tau;
    this.layers = layers;
    this.heads = heads;
    this.reportTimeout = reportTimeout;
    // every head's gauge from the start (NaN until measured): the dashboard draws a cell per head
    var metrics = dev.k2pekko.metrics.Metrics.get(ctx.getSystem());
    metrics.gauge("k2_clip_tau", "the QK-Clip threshold tau of this run").set(tau);
    this.maxLogitGauges = new dev.k2pekko.metrics.Meter.Gauge[layers][heads];
    for (int l = 0; l < layers; l++) {
      for (int h = 0; h < heads; h++) {
        maxLogitGauges[l][h] = metrics.gauge("k2_clip_max_logit", "a head's max pre-softmax attention logit S_max at the last measured step "
            + "(the max over that step's learners)", "layer", Integer.toString(l), "head", Integer.toString(h));
      }
    }
    this.measuredVersion = metrics.gauge("k2_clip_measured_version", "the version of the last step whose max logits the clip-monitor measured");
  }

  private final dev.k2pekko.metrics.Meter.Gauge[][] maxLogitGauges;
  private final dev.k2pekko.metrics.Meter.Gauge measuredVersion;

  @Override public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(ReportMaxLogits.class, this::onReport)
        .onMessage(CloseStep.class, this::onClose)
        .onMessage(Deadline.class, d -> {
          var c = waiting.remove(d.version());
          if (c != null) answer(c);
          return this;
        })
        .onMessage(GetHistory.class, g -> {
          g.replyTo().tell(new History(tau, layers, heads, List.copyOf(history)));
          return this;
        })
        .build();
  }

  private Behavior<Command> onReport(ReportMaxLogits r) {
    if (!shaped(r.maxLogit()) || !shaped(r.trained())) {
      getContext().getLog().warn("max logits of {} at version {} have shape {}x{} (trained {}x{}), expected {}x{}: ignored", r.learnerId(), r.version(),
          rows(r.maxLogit()), cols(r.maxLogit()), rows(r.trained()), cols(r.trained()), layers, heads);
      return this;
    }
    reports.computeIfAbsent(r.version(), v -> new HashMap<>()).put(r.learnerId(), r);
    var c = waiting.get(r.version());
    if (c != null && reports.get(r.version()).keySet().containsAll(c.contributors())) {
      waiting.remove(r.version());
      timers.cancel(r.version());
      answer(c);
    }
    return this;
  }

  private boolean shaped(double[][] m) {
    if (m == null || m.length != layers) return false;
    for (double[] row : m) if (row == null || row.length != heads) return false;
    return true;
  }

  private static int rows(double[][] m) {
    return m == null ? 0 : m.length;
  }

  private static int cols(double[][] m) {
    return m == null || m.length == 0 || m[0] == null ? 0 : m[0].length;
  }

  private Behavior<Command> onClose(CloseStep c) {
    var got = reports.getOrDefault(c.version(), Map.of());
    if (got.keySet().containsAll(c.contributors())) {
      answer(c);
    } else {
      waiting.put(c.version(), c);
      timers.startSingleTimer(c.version(), new Deadline(c.version()), reportTimeout);
    }
    return this;
  }

  private void answer(CloseStep c) {
    var got = reports.getOrDefault(c.version(), Map.of());
    double[][] max = new double[layers][heads], trained = new double[layers][heads];
    for (double[] row : max) java.util.Arrays.fill(row, Double.NEGATIVE_INFINITY);
    for (double[] row : trained) java.util.Arrays.fill(row, Double.NEGATIVE_INFINITY);
    int reporters = 0;
    for (var learner : c.contributors()) {
      var m = got.get(learner);
      if (m == null) continue;
      reporters++;
      for (int l = 0; l < layers; l++) {
        for (int h = 0; h < heads; h++) {
          max[l][h] = Math.max(max[l][h], m.maxLogit()[l][h]);
          trained[l][h] = Math.max(trained[l][h], m.trained()[l][h]);
        }
      }
    }
    if (reporters < c.contributors().size()) {
      getContext().getLog().warn("step {}: {} of {} learners reported max logits in time", c.version(), reporters, c.contributors().size());
    }
    var step = new StepMaxLogits(c.version(), reporters > 0 ? max : null, reporters > 0 ? trained : null, reporters, c.contributors().size());
    if (step.measured()) {
      history.add(step);
      for (int l = 0; l < layers; l++) for (int h = 0; h < heads; h++) maxLogitGauges[l][h].set(max[l][h]);
      measuredVersion.set(c.version());
    }
    reports.keySet().removeIf(v -> v <= c.version());
    c.replyTo().tell(step);
  }
}
