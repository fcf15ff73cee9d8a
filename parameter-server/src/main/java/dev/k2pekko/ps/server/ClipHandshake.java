package dev.k2pekko.ps.server;

import dev.k2pekko.optim.QkClip;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.protocol.ClipMonitorProtocol.CloseStep;
import dev.k2pekko.protocol.ClipMonitorProtocol.StepMaxLogits;
import dev.k2pekko.ps.server.PsProtocol.RescaleQK;
import java.util.ArrayList;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * The first part of a step with MuonClip on: ask the clip-monitor for the step's per-head maxima ({@link CloseStep})
 * and turn its answer into QK rescales with the optimizer's rule ({@link QkClip#rescales}); without an answer within
 * the clip timeout the step goes on without rescales.
 */
final class ClipHandshake {
  /** The monitor's answer, through an adapter. */
  record ClipArrived(StepMaxLogits maxima) implements TwoPhaseStep.Message {}

  /** The clip-monitor did not answer for this version within the clip timeout. */
  record ClipTimedOut(long version) implements TwoPhaseStep.Message {}

  private final PsSettings s;
  private final ActorContext<PsCoordinator.Command> ctx;
  private final TimerScheduler<PsCoordinator.Command> timers;
  private final ActorRef<ClipMonitorProtocol.Command> monitor;
  private final CoordinatorLedger ledger;

  ClipHandshake(PsSettings s, ActorContext<PsCoordinator.Command> ctx, TimerScheduler<PsCoordinator.Command> timers,
                ActorRef<ClipMonitorProtocol.Command> monitor, CoordinatorLedger ledger) {
    this.s = s;
    this.ctx = ctx;
    this.timers = timers;
    this.monitor = monitor;
    this.ledger = ledger;
    this.metrics = dev.k2pekko.metrics.Metrics.get(ctx.getSystem());
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

  /** The rescales of the monitor's answer: one per head over the threshold, none when no learner reported. */
  ArrayList<RescaleQK> rescales(StepMaxLogits m) {
    timers.cancel("clip");
    var rescales = new ArrayList<RescaleQK>();
    if (m.measured()) {
      for (var r : QkClip.rescales(m.maxLogit(), s.optimizer().tau())) {
        rescales.add(new RescaleQK(m.version(), r.layer(), r.head(), r.gamma()));
        countRescale(r.layer(), r.head());
      }
    }
    ledger.count("heads_clipped", rescales.size());
    return rescales;
  }

  /** No answer in time: no rescales for this step. */
  ArrayList<RescaleQK> timedOut(long version) {
    ledger.count("clip_timeouts", 1);
    ctx.getLog().warn("clip-monitor gave no decision for version {} within {}: applying without rescales", version, s.clipTimeout());
    return new ArrayList<>();
  }
}
