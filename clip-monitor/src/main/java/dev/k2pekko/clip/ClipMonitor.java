package dev.k2pekko.clip;

import dev.k2pekko.protocol.KryoWire;
import dev.k2pekko.ps.server.PsProtocol.ClipDecision;
import dev.k2pekko.ps.server.PsProtocol.CloseStep;
import dev.k2pekko.ps.server.PsProtocol.MonitorCommand;
import dev.k2pekko.ps.server.PsProtocol.ReportMaxLogits;
import dev.k2pekko.ps.server.PsProtocol.RescaleQK;
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
 * waiting up to {@code reportTimeout} for a learner that has not reported, then deciding without it — and answers
 * with {@code RescaleQK(v, layer, head, tau / S_max)} for the heads over tau only. It keeps the history: the
 * per-head maxima of every step, the fraction of heads clipped, and how often each head was clipped.
 */
public final class ClipMonitor extends AbstractBehavior<MonitorCommand> {
  /** One closed step: the per-head max over learners, how many heads were clipped, and which learners reported. */
  public record StepRecord(long version, double[][] maxLogit, int clipped, int reporters, int expected) implements KryoWire {}

  public record History(double tau, List<StepRecord> steps, int[][] clipCounts) implements KryoWire {
    /** The largest S_max over every head and every step (NaN before the first step). */
    public double largest() {
      double m = Double.NaN;
      for (var s : steps) for (double[] row : s.maxLogit()) for (double v : row) m = Double.isNaN(m) ? v : Math.max(m, v);
      return m;
    }
  }

  public record GetHistory(ActorRef<History> replyTo) implements MonitorCommand, KryoWire {}

  private record Deadline(long version) implements MonitorCommand, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  public static ActorRef<MonitorCommand> init(ActorSystem<?> system, double tau, int layers, int heads, Duration reportTimeout) {
    return ClusterSingleton.get(system).init(SingletonActor.of(
            Behaviors.supervise(create(tau, layers, heads, reportTimeout)).onFailure(SupervisorStrategy.restart()), "clip-monitor")
        .withSettings(ClusterSingletonSettings.create(system).withRole("monitor")));
  }

  public static Behavior<MonitorCommand> create(double tau, int layers, int heads, Duration reportTimeout) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(t -> new ClipMonitor(ctx, t, tau, layers, heads, reportTimeout)));
  }

  private final TimerScheduler<MonitorCommand> timers;
  private final double tau;
  private final int layers, heads;
  private final Duration reportTimeout;
  private final Map<Long, Map<String, double[][]>> reports = new HashMap<>();
  private final Map<Long, CloseStep> waiting = new HashMap<>();
  private final List<StepRecord> history = new ArrayList<>();
  private final int[][] clipCounts;

  private ClipMonitor(ActorContext<MonitorCommand> ctx, TimerScheduler<MonitorCommand> timers, double tau, int layers, int heads,
                      Duration reportTimeout) {
    super(ctx);
    if (!(tau > 0)) throw new IllegalArgumentException("tau must be positive, got " + tau);
    this.timers = timers;
    this.tau = tau;
    this.layers = layers;
    this.heads = heads;
    this.reportTimeout = reportTimeout;
    this.clipCounts = new int[layers][heads];
  }

  @Override public Receive<MonitorCommand> createReceive() {
    return newReceiveBuilder()
        .onMessage(ReportMaxLogits.class, this::onReport)
        .onMessage(CloseStep.class, this::onClose)
        .onMessage(Deadline.class, d -> {
          var c = waiting.remove(d.version());
          if (c != null) decide(c);
          return this;
        })
        .onMessage(GetHistory.class, g -> {
          int[][] counts = new int[layers][];
          for (int l = 0; l < layers; l++) counts[l] = clipCounts[l].clone();
          g.replyTo().tell(new History(tau, List.copyOf(history), counts));
          return this;
        })
        .build();
  }

  private Behavior<MonitorCommand> onReport(ReportMaxLogits r) {
    if (r.maxLogit().length != layers || r.maxLogit()[0].length != heads) {
      getContext().getLog().warn("max logits of {} at version {} have shape {}x{}, expected {}x{}: ignored", r.learnerId(), r.version(),
          r.maxLogit().length, r.maxLogit().length == 0 ? 0 : r.maxLogit()[0].length, layers, heads);
      return this;
    }
    reports.computeIfAbsent(r.version(), v -> new HashMap<>()).put(r.learnerId(), r.maxLogit());
    var c = waiting.get(r.version());
    if (c != null && reports.get(r.version()).keySet().containsAll(c.contributors())) {
      waiting.remove(r.version());
      timers.cancel(r.version());
      decide(c);
    }
    return this;
  }

  private Behavior<MonitorCommand> onClose(CloseStep c) {
    var got = reports.getOrDefault(c.version(), Map.of());
    if (got.keySet().containsAll(c.contributors())) {
      decide(c);
    } else {
      waiting.put(c.version(), c);
      timers.startSingleTimer(c.version(), new Deadline(c.version()), reportTimeout);
    }
    return this;
  }

  private void decide(CloseStep c) {
    var got = reports.getOrDefault(c.version(), Map.of());
    double[][] max = new double[layers][heads];
    for (double[] row : max) java.util.Arrays.fill(row, Double.NEGATIVE_INFINITY);
    int reporters = 0;
    for (var learner : c.contributors()) {
      var m = got.get(learner);
      if (m == null) continue;
      reporters++;
      for (int l = 0; l < layers; l++) for (int h = 0; h < heads; h++) max[l][h] = Math.max(max[l][h], m[l][h]);
    }
    var rescales = new ArrayList<RescaleQK>();
    if (reporters < c.contributors().size()) {
      getContext().getLog().warn("step {}: {} of {} learners reported max logits in time", c.version(), reporters, c.contributors().size());
    }
    if (reporters > 0) {
      for (int l = 0; l < layers; l++) {
        for (int h = 0; h < heads; h++) {
          if (max[l][h] > tau) {
            rescales.add(new RescaleQK(c.version(), l, h, tau / max[l][h]));
            clipCounts[l][h]++;
          }
        }
      }
      history.add(new StepRecord(c.version(), max, rescales.size(), reporters, c.contributors().size()));
    }
    reports.keySet().removeIf(v -> v <= c.version());
    c.replyTo().tell(new ClipDecision(c.version(), rescales));
  }
}
