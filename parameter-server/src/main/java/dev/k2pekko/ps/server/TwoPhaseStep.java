package dev.k2pekko.ps.server;

import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.protocol.PsProtocol.Outcome;
import dev.k2pekko.protocol.PsProtocol.PushOutcome;
import dev.k2pekko.protocol.PsProtocol.Pushed;
import dev.k2pekko.protocol.PsProtocol.RescaleQK;
import dev.k2pekko.protocol.PsProtocol.StageKind;
import dev.k2pekko.ps.server.PsGroup.GroupApplied;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;

/**
 * The step in flight, from the clip handshake to the groups' new weights, run inside the coordinator:
 * <ol>
 *   <li>with MuonClip on, the {@link ClipHandshake} with the clip-monitor decides the step's QK rescales;</li>
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
  /** The coordinator's messages about the step in flight: its own timers and its partners' answers, through adapters. */
  sealed interface Message extends PsCoordinator.Internal, NoSerializationVerificationNeeded permits ClipHandshake.ClipArrived,
      ClipHandshake.ClipTimedOut, PreparedArrived, AppliedArrived, RetryPrepare, RetryApply, ApplyTimeout {}
  record PreparedArrived(PsGroup.Prepared p) implements Message {}
  /** A group's answer to {@link PsGroup.ApplyStep}: its weights, or why it could not apply (then it changed nothing). */
  record AppliedArrived(String group, long version, GroupApplied applied, Throwable error) implements Message {}
  /** Ask every group again whether it holds the step's gradients (phase one). */
  record RetryPrepare(long version) implements Message {}
  /** Ask one group again to apply the step (phase two). */
  record RetryApply(long version, String group) implements Message {}
  record ApplyTimeout(long version) implements Message {}

  private final PsSettings s;
  private final ActorContext<PsProtocol.ToCoordinator> ctx;
  private final TimerScheduler<PsProtocol.ToCoordinator> timers;
  private final ClusterSharding sharding;
  private final ClipHandshake clip;
  private final List<String> groups;
  private final LrSchedule schedule;
  private final CoordinatorLedger ledger;
  private final DurableOffsets offsets;
  /** What the coordinator does when a step is applied: every group has answered with its new weights. */
  private final Consumer<StepInFlight> applied;
  /** Looks for the next step when this one ended without applying (nobody was left in it). */
  private final Runnable next;
  private StepInFlight applying;

  TwoPhaseStep(PsSettings s, ActorContext<PsProtocol.ToCoordinator> ctx, TimerScheduler<PsProtocol.ToCoordinator> timers,
               ActorRef<ClipMonitorProtocol.Command> monitor, CoordinatorLedger ledger, DurableOffsets offsets, Consumer<StepInFlight> applied,
               Runnable next) {
    this.s = s;
    this.ctx = ctx;
    this.timers = timers;
    this.sharding = ClusterSharding.get(ctx.getSystem());
    this.clip = new ClipHandshake(s, ctx, timers, monitor, ledger);
    this.groups = PsGroup.groups(s.model());
    this.schedule = new LrSchedule(s.lrSft(), s.lrRl(), s.warmup(), s.decaySteps(), s.rlDecaySteps());
    this.ledger = ledger;
    this.offsets = offsets;
    this.applied = applied;
    this.next = next;
  }

  /** The version of the step in flight, -1 for none. */
  long version() {
    return applying == null ? -1 : applying.version;
  }

  void on(Message m) {
    switch (m) {
      case ClipHandshake.ClipArrived a -> { if (waitsForClip(a.maxima().version())) clipDecided(clip.rescales(a.maxima())); }
      case ClipHandshake.ClipTimedOut t -> { if (waitsForClip(t.version())) clipDecided(clip.timedOut(t.version())); }
      case PreparedArrived p -> onPrepared(p.p());
      case AppliedArrived a -> onApplied(a);
      case RetryPrepare r -> { if (applying != null && applying.version == r.version() && !applying.applied) sendPrepare(); }
      case RetryApply r -> { if (applying != null && applying.version == r.version() && !applying.replies.containsKey(r.group())) sendApply(r.group()); }
      case ApplyTimeout t -> onApplyTimeout(t);
    }
  }

  /**
   * Starts step {@code version} with these pushes: the clip handshake first when MuonClip clips, else the prepare at
   * once (the clip-monitor still measures the step).
   */
  void begin(long version, List<Pushed> good) {
    applying = new StepInFlight(version, good);
    if (s.optimizer().clip()) {
      clip.ask(version, applying.learnerIds());
    } else {
      clip.measureOnly(version, applying.learnerIds());
      clipDecided(new ArrayList<>());
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
    if (keep.isEmpty()) skip(false);
    else {
      applying = applying.without(keep);
      if (applying.clipDone) sendPrepare(); // else the clip decision (or its timeout) starts the prepare
    }
  }

  private boolean waitsForClip(long version) {
    return applying != null && !applying.clipDone && version == applying.version;
  }

  /** The clip decision (or its absence) is in: the prepare begins. */
  private void clipDecided(ArrayList<RescaleQK> rescales) {
    applying.rescales = rescales;
    applying.clipDone = true;
    sendPrepare();
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
    if (keep.isEmpty()) skip(true);
    else {
      applying = applying.without(keep);
      sendPrepare();
    }
  }

  /** Nobody is left in the step: it is skipped (its offsets saved when data was read) and the next one looked for. */
  private void skip(boolean saveOffsets) {
    long v = applying.version;
    timers.cancel("apply");
    ledger.skipped(v);
    applying = null;
    if (saveOffsets) offsets.save(v);
    next.run();
  }

  /**
   * Phase two, to one group: apply the step's mean gradient at the schedule's learning rate, then the rescales. Its
   * answer is a StatusReply; the ask's own timeout is the apply timeout's, which fails the coordinator first.
   */
  private void sendApply(String group) {
    long v = applying.version;
    double lr = schedule.at(v, applying.contributors.stream().anyMatch(p -> p.kind() == StageKind.RL), ledger.get("rl_steps"));
    var contributors = applying.learnerIds();
    var versions = applying.gradientVersions();
    var rescales = applying.rescales;
    ctx.askWithStatus(GroupApplied.class, sharding.entityRefFor(PsGroup.KEY, group), s.applyTimeout(),
        replyTo -> new PsGroup.ApplyStep(v, contributors, versions, lr, rescales, replyTo),
        (applied, error) -> new AppliedArrived(group, v, applied, error));
  }

  private void onApplied(AppliedArrived a) {
    if (applying == null || a.version() != applying.version || a.error() instanceof TimeoutException) return;
    if (a.error() != null) {
      // the group had not received every shard yet (different paths): ask again shortly; it changed nothing
      ledger.count("apply_retries", 1);
      timers.startSingleTimer("retry-" + a.group(), new RetryApply(a.version(), a.group()), Duration.ofMillis(50));
      return;
    }
    applying.replies.put(a.group(), a.applied());
    if (applying.replies.size() == groups.size()) finish();
  }

  private void onApplyTimeout(ApplyTimeout t) {
    if (applying == null || applying.version != t.version()) return;
    var missing = new ArrayList<>(groups);
    missing.removeAll(applying.replies.keySet());
    throw new IllegalStateException("step " + t.version() + ": groups " + missing + " did not apply within " + s.applyTimeout()
        + " (the coordinator restarts from its last checkpoint)");
  }

  /** Every group applied: the step goes to the coordinator. */
  private void finish() {
    timers.cancel("apply");
    var done = applying;
    applying = null;
    applied.accept(done);
  }

  /** For the watchdog's log line. */
  String describe() {
    return applying == null ? "-" : applying.describe();
  }
}
