package dev.k2pekko.ps.server;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.protocol.KryoWire;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.protocol.PsProtocol.BadGradient;
import dev.k2pekko.protocol.PsProtocol.LearnerAt;
import dev.k2pekko.protocol.PsProtocol.Outcome;
import dev.k2pekko.protocol.PsProtocol.Pass;
import dev.k2pekko.protocol.PsProtocol.PushOutcome;
import dev.k2pekko.protocol.PsProtocol.Pushed;
import dev.k2pekko.protocol.PsProtocol.RegisterLearner;
import dev.k2pekko.protocol.PsProtocol.StageKind;
import dev.k2pekko.protocol.PsProtocol.TagOffset;
import dev.k2pekko.protocol.PsProtocol.ToCoordinator;
import dev.k2pekko.protocol.PsProtocol.Weights;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * The parameter server's coordinator, a cluster singleton on {@code ps} nodes ({@link CoordinatorAddress}): it owns the
 * version counter and decides what makes up each step.
 * <ul>
 *   <li><b>Synchronous</b> mode: step v is applied when every registered learner has pushed its gradients for v (or
 *   been refused), or when the sync timeout since the first push passes (a learner that does not deliver is left
 *   out of that step, never waited for without a timeout).</li>
 *   <li><b>Asynchronous</b> mode: a gradient computed at version g is admitted while {@code g >= v - staleness} and
 *   applied at once; older ones are refused and counted, and the learner recomputes that batch at a newer
 *   version.</li>
 * </ul>
 * Its parts, each with one job: the {@link StepAssembler} (which pushes make a step), the {@link LearnerRegistry} (who
 * gets each version), the {@link TwoPhaseStep} (the clip handshake, prepare and apply of the step in flight), the
 * {@link DurableOffsets}, the {@link CheckpointCycle} (restore on start, a checkpoint every {@code checkpointEvery}
 * versions) and the {@link CoordinatorLedger} (counters, losses, status). This class admits pushes, starts steps and
 * publishes version v+1 (its {@link Weights}, with the SHA-256 of a {@link WeightsSnapshot}) when one is applied, to the
 * registered learners and the subscribers of {@link PsProtocol#WEIGHTS}.
 */
public final class PsCoordinator extends AbstractBehavior<ToCoordinator> {
  /**
   * The coordinator's own messages: status, checkpoints, its parts' and its timers'. With the learners' and groups'
   * messages (in {@link PsProtocol}) they are what it accepts ({@link ToCoordinator}).
   */
  public sealed interface Internal extends ToCoordinator.Internal permits GetStatus, CheckpointNow, SyncTimeout, Watchdog,
      LearnerRegistry.LearnerGone, LearnerRegistry.Subscribers, CheckpointCycle.StateArrived, TwoPhaseStep.Message {}

  /** One applied step: its version, the mean loss of its contributors, what it trained, tokens, mean RL reward (NaN for SFT). */
  public record StepLoss(long version, double loss, StageKind kind, long tokens, double reward) implements KryoWire {}

  /**
   * What the coordinator has done, for progress, reports and tests; {@code losses} has one entry per applied step,
   * {@code weights} is the SHA-256 of the current version's weights (the same weights give the same digest).
   */
  public record Status(String runId, long version, int learners, Map<String, Long> counters, Map<Long, Integer> consumedPerVersion,
                       List<StepLoss> losses, Map<String, TagOffset> offsets, long restoredFrom, Map<String, String> learnerNodes, String weights)
      implements KryoWire {
    public Status(String runId, long version, int learners, Map<String, Long> counters, Map<Long, Integer> consumedPerVersion,
                  List<StepLoss> losses, Map<String, TagOffset> offsets, long restoredFrom, Map<String, String> learnerNodes) {
      this(runId, version, learners, counters, consumedPerVersion, losses, offsets, restoredFrom, learnerNodes, "");
    }
  }

  public record GetStatus(ActorRef<Status> replyTo) implements Internal, KryoWire {}

  /** Write a checkpoint now (the end of a stage); replies with the version written. */
  public record CheckpointNow(ActorRef<Long> replyTo) implements Internal, KryoWire {}

  private record SyncTimeout(long version) implements Internal, NoSerializationVerificationNeeded {}

  private enum Watchdog implements Internal, NoSerializationVerificationNeeded { INSTANCE }

  public static Behavior<ToCoordinator> create(PsSettings s, ActorRef<ClipMonitorProtocol.Command> monitor) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new PsCoordinator(ctx, timers, s, monitor)));
  }

  private final PsSettings s;
  private final TimerScheduler<ToCoordinator> timers;
  private final StepAssembler assembler;
  private final LearnerRegistry learners;
  private final TwoPhaseStep step;
  private final DurableOffsets offsets;
  private final CheckpointCycle checkpoints;
  private final CoordinatorLedger ledger;
  private final dev.k2pekko.metrics.Meter.Timer stepLatency;
  private long stepStarted;
  private final long restoredFrom;
  private long version;
  /** The current version as published to learners and subscribers. */
  private Weights current;
  private boolean initialising = true;
  private long lastProgress = System.nanoTime();

  private PsCoordinator(ActorContext<ToCoordinator> ctx, TimerScheduler<ToCoordinator> timers, PsSettings s, ActorRef<ClipMonitorProtocol.Command> monitor) {
    super(ctx);
    this.s = s;
    this.timers = timers;
    var metrics = dev.k2pekko.metrics.Metrics.get(ctx.getSystem());
    this.ledger = new CoordinatorLedger(metrics);
    this.stepLatency = metrics.timer("k2_ps_step", "a parameter-server step from its start (clip handshake, prepare, apply) to the new version");
    this.assembler = new StepAssembler(s.mode(), s.staleness(), s.learners());
    this.offsets = new DurableOffsets(s);
    this.learners = new LearnerRegistry(ctx);
    this.step = new TwoPhaseStep(s, ctx, timers, monitor, ledger, offsets, this::publish, () -> tryStep(false));
    timers.startTimerWithFixedDelay(Watchdog.INSTANCE, Duration.ofSeconds(15));
    this.checkpoints = new CheckpointCycle(s, ctx);
    var start = checkpoints.restore(offsets, ledger);
    this.version = start.version();
    ledger.version(version);
    this.restoredFrom = start.restoredFrom();
    this.current = wire(start.weights());
  }

  @Override public Receive<ToCoordinator> createReceive() {
    return newReceiveBuilder()
        .onMessage(RegisterLearner.class, this::onRegister)
        .onMessage(LearnerRegistry.LearnerGone.class, this::onGone)
        .onMessage(LearnerRegistry.Subscribers.class, l -> { learners.subscribersChanged(l, current, initialising); return this; })
        .onMessage(Pushed.class, this::onPushed)
        .onMessage(BadGradient.class, this::onBad)
        .onMessage(Pass.class, this::onPass)
        .onMessage(SyncTimeout.class, t -> { if (t.version() == version) tryStep(true); return this; })
        .onMessage(TwoPhaseStep.Message.class, m -> { step.on(m); return this; })
        .onMessage(CheckpointCycle.StateArrived.class, this::onGroupState)
        .onMessage(GetStatus.class, g -> {
          g.replyTo().tell(ledger.status(s.runId(), version, learners.size(), offsets.view(), restoredFrom, learners.nodes(),
              current == null ? "" : current.sha256()));
          return this;
        })
        .onMessage(Watchdog.class, w -> { watchdog(); return this; })
        .onMessage(CheckpointNow.class, c -> { checkpoints.await(c.replyTo()); maybeExport(); return this; })
        .onSignal(PostStop.class, sig -> { offsets.close(); return this; })
        .build();
  }

  /** A step, a restore or an export is under way: registrations wait and no step starts. */
  private boolean busy() {
    return initialising || step.version() >= 0 || checkpoints.collecting();
  }

  private Behavior<ToCoordinator> onRegister(RegisterLearner r) {
    if (busy()) {
      learners.defer(r); // answered once no step is in flight
      return this;
    }
    if (learners.register(r)) assembler.drop(r.learnerId()); // pushes of an earlier incarnation not in a step: the new one reads them again
    r.offsets().tell(new PsProtocol.Offsets(offsets.snapshot(), version));
    r.weights().tell(current);
    return this;
  }

  private Behavior<ToCoordinator> onGone(LearnerRegistry.LearnerGone g) {
    if (!learners.gone(g)) return this; // a newer incarnation
    assembler.drop(g.learnerId());
    step.dropContributors(Set.of(g.learnerId()), "its learner stopped");
    ledger.count("learners_lost", 1);
    tryStep(false);
    return this;
  }

  private Behavior<ToCoordinator> onPushed(Pushed p) {
    if (initialising) {
      p.replyTo().tell(new PushOutcome(p.version(), p.learnerId(), Outcome.STARTING));
      return this;
    }
    if (assembler.admit(version, step.version(), p.version()) == StepAssembler.Admission.STALE) {
      ledger.count("refused_stale", 1);
      getContext().getLog().info("gradient of {} computed at version {} refused: current version {}, staleness bound {}",
          p.learnerId(), p.version(), version, s.mode() == PsSettings.Mode.SYNC ? 0 : s.staleness());
      p.replyTo().tell(new PushOutcome(p.version(), p.learnerId(), Outcome.STALE));
      return this;
    }
    boolean first = assembler.add(p);
    learners.pushedBy(p.learnerId());
    if (first && s.mode() == PsSettings.Mode.SYNC) timers.startSingleTimer("sync", new SyncTimeout(version), s.syncTimeout());
    tryStep(false);
    return this;
  }

  private Behavior<ToCoordinator> onBad(BadGradient b) {
    ledger.count("rejected_non_finite", 1);
    getContext().getLog().warn("gradient of {} at version {} rejected by group {}: {}", b.learnerId(), b.version(), b.group(), b.detail());
    assembler.reject(new LearnerAt(b.learnerId(), b.version()));
    tryStep(false);
    return this;
  }

  private Behavior<ToCoordinator> onPass(Pass p) {
    if (p.version() == version) {
      assembler.pass(p.learnerId(), p.sealed());
      tryStep(false);
    }
    return this;
  }

  /** Answers the registrations that waited, then starts the next step if the assembler has one ready. */
  private void tryStep(boolean timedOut) {
    if (!busy()) for (var r : learners.takeDeferred()) onRegister(r);
    if (busy()) return;
    var ready = assembler.take(version, learners.ids(), timedOut);
    if (ready == null) return;
    if (ready.timedOutWithoutAll()) ledger.count("sync_timeouts", 1);
    timers.cancel("sync");
    for (var p : ready.rejected()) {
      p.replyTo().tell(new PushOutcome(p.version(), p.learnerId(), Outcome.NON_FINITE));
      // the data was read and rejected: its offsets advance, its trajectories count as consumed without a step
      offsets.advance(p);
      ledger.count("trajectories_rejected", p.trajectoryIds().size());
    }
    if (ready.good().isEmpty()) {
      ledger.skipped(version);
      offsets.save(version);
      return;
    }
    stepStarted = System.nanoTime();
    step.begin(version, ready.good());
  }

  /** Step v was applied by every group: count it, answer its learners, make its offsets durable, publish v+1. */
  private void publish(StepInFlight done) {
    long v = done.version;
    var contributors = done.contributors;
    ledger.stepApplied(v, contributors);
    for (var p : contributors) offsets.advance(p);
    version = v + 1;
    // the step's latency before the new version's gauge: a scrape that sees the version has mostly seen its step
    stepLatency.recordNanos(System.nanoTime() - stepStarted);
    ledger.version(version);
    for (var p : contributors) p.replyTo().tell(new PushOutcome(p.version(), p.learnerId(), Outcome.APPLIED));
    lastProgress = System.nanoTime();
    assembler.stepApplied();
    current = wire(done.snapshot(version, s.model()));
    offsets.save(version);
    learners.publish(current);
    if (s.checkpointEvery() > 0 && version % s.checkpointEvery() == 0) maybeExport();
    else tryStep(false);
  }

  private void maybeExport() {
    if (!busy()) checkpoints.export();
  }

  private Behavior<ToCoordinator> onGroupState(CheckpointCycle.StateArrived m) {
    if (!checkpoints.arrived(m.g())) return this;
    if (initialising) {
      initialising = false;
      getContext().getLog().info("parameter server ready at version {} ({} groups)", version, PsGroup.groups(s.model()).size());
      learners.publishFirst(current);
    } else {
      checkpoints.write(version, offsets, ledger);
    }
    tryStep(false);
    return this;
  }

  /** A snapshot as it is published: its fields, the model's shape as plain numbers (receivers make a snapshot again and verify it). */
  static Weights wire(WeightsSnapshot snap) {
    ModelConfig c = snap.config();
    return new Weights(snap.version(), new Weights.Shape(c.vocab(), c.dModel(), c.layers(), c.heads(), c.context(), c.mlpRatio(), c.normEps()),
        snap.names(), snap.data(), snap.sha256());
  }

  /** Says in the log why no step happened for 30 s while pushes wait (the usual cause: a learner that neither pushes nor passes). */
  private void watchdog() {
    if (System.nanoTime() - lastProgress > 30_000_000_000L && assembler.anyPending()) {
      getContext().getLog().warn("no step for 30 s at version {}: learners {}, {}, applying {}, exporting {}", version,
          learners.ids(), assembler.describe(), step.describe(), checkpoints.collecting());
    }
  }
}
