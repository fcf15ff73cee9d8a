package dev.k2pekko.ps.server;

import dev.k2pekko.optim.QkClip;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.protocol.ClipMonitorProtocol.CloseStep;
import dev.k2pekko.protocol.ClipMonitorProtocol.StepMaxLogits;
import dev.k2pekko.ps.server.PsProtocol.GroupApplied;
import dev.k2pekko.ps.server.PsProtocol.Outcome;
import dev.k2pekko.ps.server.PsProtocol.PushOutcome;
import dev.k2pekko.ps.server.PsProtocol.Pushed;
import dev.k2pekko.ps.server.PsProtocol.RescaleQK;
import dev.k2pekko.ps.server.PsProtocol.StageKind;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;

/**
 * The step in flight, from the clip handshake to the groups' new weights, run inside the coordinator:
 * <ol>
 *   <li>with MuonClip on, ask the clip-monitor for the step's per-head maxima ({@link CloseStep}) and turn them into
 *   rescales with {@link QkClip#rescales}; without an answer within the clip timeout the step goes on without;</li>
 *   <li><b>prepare</b>: every group must hold valid gradients of every contributor; a contributor a group rejected
 *   (non-finite) is answered and left out, shards still on their way are asked for again shortly, shards that do not
 *   come within a quarter of the sync timeout leave their learner out;</li>
 *   <li><b>apply</b>: every group applies the optimizer and the rescales; one that lacks a shard changed nothing and is
 *   asked again; groups that do not all answer within the apply timeout fail the coordinator, which restarts from its
 *   last checkpoint.</li>
 * </ol>
 * When every group has applied, the coordinator publishes the new version.
 */
final class TwoPhaseStep {
  /** What the coordinator does when step {@code version} is applied; {@code weights} are every parameter's values in spec order. */
  interface Applied {
    void applied(long version, List<Pushed> contributors, List<String> names, List<float[]> weights);
  }

  /** The coordinator's messages about the step in flight: its own timers and its partners' answers, through adapters. */
  sealed interface Message extends PsCoordinator.Command, NoSerializationVerificationNeeded {}
  record ClipArrived(StepMaxLogits maxima) implements Message {}
  /** The clip-monitor did not answer for this version within the clip timeout. */
  record ClipTimedOut(long version) implements Message {}
  record PreparedArrived(PsGroup.Prepared p) implements Message {}
  record AppliedArrived(GroupApplied a) implements Message {}
  /** Ask every group again whether it holds the step's gradients (phase one). */
  record RetryPrepare(long version) implements Message {}
  /** Ask one group again to apply the step (phase two). */
  record RetryApply(long version, String group) implements Message {}
  record ApplyTimeout(long version) implements Message {}

  private final PsSettings s;
  private final ActorContext<PsCoordinator.Command> ctx;
  private final TimerScheduler<PsCoordinator.Command> timers;
  private final ClusterSharding sharding;
  private final ActorRef<ClipMonitorProtocol.Command> monitor;
  private final List<String> groups;
  private final LrSchedule schedule;
  private final CoordinatorLedger ledger;
  private final DurableOffsets offsets;
  private final Applied applied;
  /** Looks for the next step when this one ended without applying (nobody was left in it). */
  private final Runnable next;
  private StepInFlight applying;

  TwoPhaseStep(PsSettings s, ActorContext<PsCoordinator.Command> ctx, TimerScheduler<PsCoordinator.Command> timers,
               ActorRef<ClipMonitorProtocol.Command> monitor, CoordinatorLedger ledger, DurableOffsets offsets, Applied applied, Runnable next) {
    this.s = s;
    this.ctx = ctx;
    this.timers = timers;
    this.sharding = ClusterSharding.get(ctx.getSystem());
    this.monitor = monitor;
    this.groups = PsProtocol.groups(s.model());
    this.schedule = new LrSchedule(s.lrSft(), s.lrRl(), s.warmup(), s.decaySteps());
    this.ledger = ledger;
    this.offsets = offsets;
    this.applied = applied;
    this.next = next;
  }

  boolean inFlight() {
    return applying != null;
  }

  /** The version of the step in flight, -1 for none. */
  long version() {
    return applying == null ? -1 : applying.version;
  }

  void on(Message m) {
    switch (m) {
      case ClipArrived a -> onClip(a.maxima());
      case ClipTimedOut t -> onClipTimeout(t);
      case PreparedArrived p -> onPrepared(p.p());
      case AppliedArrived a -> onApplied(a.a());
      case RetryPrepare r -> { if (applying != null && applying.version == r.version() && !applying.applied) sendPrepare(); }
      case RetryApply r -> { if (applying != null && applying.version == r.version() && !applying.replies.containsKey(r.group())) sendApply(r.group()); }
      case ApplyTimeout t -> onApplyTimeout(t);
    }
  }

  /** Starts step {@code version} with these pushes: the clip handshake first when MuonClip clips, else the prepare. */
  void begin(long version, List<Pushed> good) {
    applying = new StepInFlight(version, good);
    if (s.optimizer().clip()) {
      monitor.tell(new CloseStep(version, applying.learnerIds(), ctx.messageAdapter(StepMaxLogits.class, ClipArrived::new)));
      timers.startSingleTimer("clip", new ClipTimedOut(version), s.clipTimeout());
    } else {
      applying.rescales = new ArrayList<>();
      applying.clipDone = true;
      sendPrepare();
    }
  }

  /** Takes learners out of the step in flight (before it is applied); skips the step when nobody is left. */
  void dropContributors(Set<String> ids, String why) {
    if (applying == null || applying.applied || ids.isEmpty()) return;
    var keep = new ArrayList<Pushed>();
    for (var c : applying.contributors) {
      if (ids.contains(c.learnerId())) {
        ledger.count("contributors_dropped", 1);
        ctx.getLog().warn("step {}: {} left out ({})", applying.version, c.learnerId(), why);
        c.replyTo().tell(new PushOutcome(c.version(), c.learnerId(), Outcome.STALE));
      } else {
        keep.add(c);
      }
    }
    if (keep.size() == applying.contributors.size()) return;
    if (keep.isEmpty()) {
      timers.cancel("apply");
      ledger.skipped(applying.version);
      applying = null;
      next.run();
      return;
    }
    applying = applying.without(keep);
    if (applying.clipDone) sendPrepare(); // else the clip decision (or its timeout) starts the prepare
  }

  private void onClip(StepMaxLogits m) {
    if (applying == null || applying.clipDone || m.version() != applying.version) return;
    timers.cancel("clip");
    var rescales = new ArrayList<RescaleQK>();
    if (m.measured()) {
      for (var r : QkClip.rescales(m.maxLogit(), s.optimizer().tau())) rescales.add(new RescaleQK(m.version(), r.layer(), r.head(), r.gamma()));
    }
    clipDecided(rescales);
    ledger.count("heads_clipped", rescales.size());
    sendPrepare();
  }

  private void onClipTimeout(ClipTimedOut t) {
    if (applying == null || applying.clipDone || t.version() != applying.version) return;
    ledger.count("clip_timeouts", 1);
    ctx.getLog().warn("clip-monitor gave no decision for version {} within {}: applying without rescales", applying.version, s.clipTimeout());
    clipDecided(new ArrayList<>());
    sendPrepare();
  }

  private void clipDecided(ArrayList<RescaleQK> rescales) {
    applying.rescales = rescales;
    applying.clipDone = true;
  }

  /** Phase one: every group must hold valid gradients of every contributor before any group applies. */
  private void sendPrepare() {
    applying.prepared.clear();
    var replyTo = ctx.messageAdapter(PsGroup.Prepared.class, PreparedArrived::new);
    for (String g : groups) {
      sharding.entityRefFor(PsGroup.KEY, g).tell(new PsGroup.Prepare(applying.version, applying.learnerIds(), applying.gradientVersions(), replyTo));
    }
    if (applying.prepareStarted == 0) {
      applying.prepareStarted = System.nanoTime();
      timers.startSingleTimer("apply", new ApplyTimeout(applying.version), s.applyTimeout());
    }
  }

  private void onPrepared(PsGroup.Prepared p) {
    if (applying == null || p.version() != applying.version || applying.applied) return;
    applying.prepared.put(p.group(), p);
    if (applying.prepared.size() < groups.size()) return;
    var rejected = new HashSet<String>();
    var missing = new HashSet<String>();
    for (var x : applying.prepared.values()) {
      rejected.addAll(x.rejected());
      missing.addAll(x.missing());
    }
    if (!rejected.isEmpty()) {
      dropRejected(rejected);
    } else if (!missing.isEmpty() && System.nanoTime() - applying.prepareStarted > s.syncTimeout().toNanos() / 4) {
      // shards that have not come by now will not (their learner stopped after sending Pushed): the step goes on
      // without those learners; their data was not applied, so its offsets do not advance and it is read again
      dropContributors(missing, "shards-missing");
    } else if (!missing.isEmpty()) {
      // a shard is still on its way (the learner sent it on another path than Pushed): ask again shortly
      ledger.count("prepare_retries", 1);
      timers.startSingleTimer("prepare", new RetryPrepare(applying.version), Duration.ofMillis(20));
    } else {
      applying.applied = true;
      for (String g : groups) sendApply(g);
    }
  }

  /** Contributors a group found non-finite: answered, their data counts as read, the rest prepare again. */
  private void dropRejected(Set<String> rejected) {
    var keep = new ArrayList<Pushed>();
    for (var c : applying.contributors) {
      if (rejected.contains(c.learnerId())) {
        c.replyTo().tell(new PushOutcome(c.version(), c.learnerId(), Outcome.NON_FINITE));
        offsets.advance(c);
        ledger.count("trajectories_rejected", c.trajectoryIds().size());
      } else {
        keep.add(c);
      }
    }
    if (keep.isEmpty()) {
      long v = applying.version;
      timers.cancel("apply");
      ledger.skipped(v);
      applying = null;
      offsets.save(v);
      next.run();
      return;
    }
    applying = applying.without(keep);
    sendPrepare();
  }

  /** Phase two, to one group: apply the step's mean gradient at the schedule's learning rate, then the rescales. */
  private void sendApply(String group) {
    double lr = schedule.at(applying.version, applying.contributors.stream().anyMatch(p -> p.kind() == StageKind.RL));
    sharding.entityRefFor(PsGroup.KEY, group).tell(new PsGroup.ApplyStep(applying.version, applying.learnerIds(), applying.gradientVersions(),
        lr, applying.rescales, ctx.messageAdapter(GroupApplied.class, AppliedArrived::new)));
  }

  private void onApplied(GroupApplied a) {
    if (applying == null || a.version() != applying.version) return;
    if (!a.ok()) {
      // the group had not received every shard yet (different paths): ask again shortly; it changed nothing
      ledger.count("apply_retries", 1);
      timers.startSingleTimer("retry-" + a.group(), new RetryApply(a.version(), a.group()), Duration.ofMillis(50));
      return;
    }
    applying.replies.put(a.group(), a);
    if (applying.replies.size() == groups.size()) finish();
  }

  private void onApplyTimeout(ApplyTimeout t) {
    if (applying == null || applying.version != t.version()) return;
    var missing = new ArrayList<>(groups);
    missing.removeAll(applying.replies.keySet());
    throw new IllegalStateException("step " + t.version() + ": groups " + missing + " did not apply within " + s.applyTimeout()
        + " (the coordinator restarts from its last checkpoint)");
  }

  /** Every group applied: their weights, in spec order, go to the coordinator. */
  private void finish() {
    timers.cancel("apply");
    var done = applying;
    applying = null;
    var names = new ArrayList<String>();
    var data = new ArrayList<float[]>();
    done.weightsInSpecOrder(s.model(), names, data);
    applied.applied(done.version, done.contributors, names, data);
  }

  /** For the watchdog's log line. */
  String describe() {
    return applying == null ? "-" : applying.describe();
  }
}
