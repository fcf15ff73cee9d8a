package dev.k2pekko.ps.server;

import dev.k2pekko.optim.AdaptiveThreshold;
import dev.k2pekko.optim.QkClip;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.protocol.ClipMonitorProtocol.CloseStep;
import dev.k2pekko.protocol.ClipMonitorProtocol.StepMaxLogits;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.protocol.PsProtocol.RescaleQK;
import java.util.ArrayList;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * The first part of a step with MuonClip on: ask the clip-monitor for the step's per-head maxima ({@link CloseStep})
 * and turn its answer into QK rescales with the optimizer's rule ({@link QkClip#rescales}); without an answer within
 * the clip timeout the step goes on without rescales. With adaptive QK-Clip the thresholds are per head, from the
 * running statistics of the maxima seen so far ({@link AdaptiveThreshold}, as the single-process {@code MuonClip}
 * keeps them: the step's thresholds are taken before its maxima are folded in). Those statistics live in the
 * coordinator's memory only: a restarted coordinator starts them again, in warm-up at the cap tau.
 */
final class ClipHandshake {
  /** The monitor's answer, through an adapter. */
  record ClipArrived(StepMaxLogits maxima) implements TwoPhaseStep.Message {}

  /** The clip-monitor did not answer for this version within the clip timeout. */
  record ClipTimedOut(long version) implements TwoPhaseStep.Message {}

  private final PsSettings s;
  private final ActorContext<PsProtocol.ToCoordinator> ctx;
  private final TimerScheduler<PsProtocol.ToCoordinator> timers;
  private final ActorRef<ClipMonitorProtocol.Command> monitor;
  private final CoordinatorLedger ledger;
  /** The per-head thresholds' statistics with adaptive QK-Clip, else null (tau for every head). */
  private final AdaptiveThreshold adaptive;

  ClipHandshake(PsSettings s, ActorContext<PsProtocol.ToCoordinator> ctx, TimerScheduler<PsProtocol.ToCoordinator> timers,
                ActorRef<ClipMonitorProtocol.Command> monitor, CoordinatorLedger ledger) {
    this.s = s;
    this.ctx = ctx;
    this.timers = timers;
    this.monitor = monitor;
    this.ledger = ledger;
    this.metrics = dev.k2pekko.metrics.Metrics.get(ctx.getSystem());
    this.adaptive = s.optimizer().adaptive() ? new AdaptiveThreshold(s.adaptive(), s.model().layers(), s.model().heads()) : null;
  }

  private final dev.k2pekko.metrics.Metrics metrics;
  private final java.util.Map<Long, dev.k2pekko.metrics.Meter.Counter> perHead = new java.util.HashMap<>();

  /** Counts a rescale of one head: the dashboard marks the heads QK-Clip rescaled. */
  private void countRescale(int layer, int head) {
    perHead.computeIfAbsent(((long) layer << 32) | head, k -> metrics.counter("k2_clip_rescales",
        "QK-Clip rescales the parameter server applied to one head (its max logit was over tau)",
        "layer", Integer.toString(layer), "head", Integer.toString(head))).increment();
  }

  /** Closes step {@code version} at the monitor for these learners' reports. */
  void ask(long version, ArrayList<String> learners) {
    monitor.tell(new CloseStep(version, learners, ctx.messageAdapter(StepMaxLogits.class, ClipArrived::new)));
    timers.startSingleTimer("clip", new ClipTimedOut(version), s.clipTimeout());
  }

  /**
   * With QK-Clip off: closes step {@code version} at the monitor all the same, so that it records the step's maxima
   * (a no-clip run's distribution is what tau is chosen from), but the step does not wait for the answer, which the
   * coordinator drops when it comes.
   */
  void measureOnly(long version, ArrayList<String> learners) {
    monitor.tell(new CloseStep(version, learners, ctx.messageAdapter(StepMaxLogits.class, ClipArrived::new)));
  }

  /** The rescales of the monitor's answer: one per head over its threshold, none when no learner reported. */
  ArrayList<RescaleQK> rescales(StepMaxLogits m) {
    timers.cancel("clip");
    var rescales = new ArrayList<RescaleQK>();
    if (m.measured()) {
      var heads = QkClip.rescales(m.maxLogit(), targets());
      if (adaptive != null) adaptive.observe(m.maxLogit());
      for (var r : heads) {
        rescales.add(new RescaleQK(m.version(), r.layer(), r.head(), r.gamma()));
        countRescale(r.layer(), r.head());
      }
    }
    ledger.count("heads_clipped", rescales.size());
    return rescales;
  }

  /**
   * Each head's target: the threshold (tau, or with adaptive QK-Clip its own) lowered by the headroom. The maxima that
   * decide a step's rescales were measured before its update, which moves them again (up to 12% over tau in the
   * default runs without headroom); aiming under tau keeps the heads at or under it after all but a few steps, those
   * where a head jumps by more than the headroom at once (docs/LOOP.md, "Clip-monitor").
   */
  double[][] targets() {
    double[][] t = adaptive == null ? null : adaptive.thresholds();
    double cap = s.optimizer().tau() * (1 - s.clipHeadroom());
    double[][] out = new double[s.model().layers()][s.model().heads()];
    for (int l = 0; l < out.length; l++) for (int h = 0; h < out[l].length; h++) out[l][h] = t == null ? cap : Math.min(cap, t[l][h]);
    return out;
  }

  /** No answer in time: no rescales for this step. */
  ArrayList<RescaleQK> timedOut(long version) {
    ledger.count("clip_timeouts", 1);
    ctx.getLog().warn("clip-monitor gave no decision for version {} within {}: applying without rescales", version, s.clipTimeout());
    return new ArrayList<>();
  }
}
