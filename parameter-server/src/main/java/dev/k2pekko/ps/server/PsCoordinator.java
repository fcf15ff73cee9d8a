package dev.k2pekko.ps.server;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.protocol.KryoWire;
import dev.k2pekko.ps.checkpoint.Checkpoints;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.optim.QkClip;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.protocol.ClipMonitorProtocol.CloseStep;
import dev.k2pekko.protocol.ClipMonitorProtocol.StepMaxLogits;
import dev.k2pekko.ps.server.PsProtocol.BadGradient;
import dev.k2pekko.ps.server.PsProtocol.GroupApplied;
import dev.k2pekko.ps.server.PsProtocol.GroupState;
import dev.k2pekko.ps.server.PsProtocol.Pushed;
import dev.k2pekko.ps.server.PsProtocol.RegisterLearner;
import dev.k2pekko.ps.server.PsProtocol.LearnerAt;
import dev.k2pekko.ps.server.PsProtocol.Outcome;
import dev.k2pekko.ps.server.PsProtocol.PushOutcome;
import dev.k2pekko.ps.server.PsProtocol.StageKind;
import dev.k2pekko.ps.server.PsProtocol.RescaleQK;
import dev.k2pekko.ps.server.PsProtocol.TagOffset;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.typed.ClusterSingleton;
import org.apache.pekko.cluster.typed.ClusterSingletonSettings;
import org.apache.pekko.cluster.typed.SingletonActor;

/**
 * The parameter server's coordinator, a cluster singleton on {@code ps} nodes: it owns the version counter and
 * decides what makes up each step.
 * <ul>
 *   <li><b>Synchronous</b> mode: step v is applied when every registered learner has pushed its gradients for v (or
 *   been refused), or when the sync timeout since the first push passes (a learner that does not deliver is left
 *   out of that step, never waited for without a timeout).</li>
 *   <li><b>Asynchronous</b> mode: a gradient computed at version g is admitted while {@code g >= v - staleness} and
 *   applied at once; older ones are refused and counted, and the learner recomputes that batch at a newer
 *   version.</li>
 * </ul>
 * Before a step it asks the clip-monitor for the step's per-head maxima ({@link CloseStep}) and turns them into QK rescales
 * with the optimizer's rule ({@link QkClip#rescales}); the groups apply the
 * optimizer and then the rescales; the coordinator then publishes version v+1 (a {@link WeightsSnapshot} with its
 * SHA-256) to every subscriber registered under {@link #WEIGHTS}, makes the consumed journal offsets durable, and
 * checkpoints every {@code checkpointEvery} versions. On start it restores the newest good checkpoint of its run,
 * version counter and offsets included.
 */
public final class PsCoordinator extends AbstractBehavior<PsCoordinator.Command> {
  /** What the coordinator accepts: the learners' and groups' messages (in {@link PsProtocol}), status, checkpoints, its own timers. */
  public sealed interface Command permits PsProtocol.RegisterLearner, PsProtocol.Pushed, PsProtocol.Pass, PsProtocol.BadGradient,
      GetStatus, CheckpointNow, LearnerGone, Subscribers, SyncTimeout, ApplyTimeout, ClipArrived, ClipTimedOut, Watchdog,
      RetryPrepare, RetryApply, PreparedArrived, AppliedArrived, StateArrived {}

  /** Learners and inference servers register here to receive every published version. */
  public static final ServiceKey<WeightsSnapshot> WEIGHTS = ServiceKey.create(WeightsSnapshot.class, "k2-weights");

  public enum Mode { SYNC, ASYNC }

  public record Settings(String runId, ModelConfig model, long seed, MuonClip.Config optimizer, Mode mode, int staleness,
                         double lrSft, double lrRl, int warmup, int decaySteps, Duration syncTimeout, Duration clipTimeout,
                         Duration applyTimeout, int checkpointEvery, int keepCheckpoints, Path checkpointDir,
                         String jdbcUrl, String jdbcUser, String jdbcPassword) {
    /** Settings with the defaults of reference.conf ({@code k2.ps}), changed by name. */
    public static Builder builder(String runId, ModelConfig model, Path checkpointDir, String jdbcUrl) {
      return new Builder(runId, model, checkpointDir, jdbcUrl);
    }
  }

  /** Named settings instead of nineteen positions; every field starts at reference.conf's default. */
  public static final class Builder {
    private final String runId, jdbcUrl;
    private final ModelConfig model;
    private final Path checkpointDir;
    private long seed = 1;
    private MuonClip.Config optimizer = MuonClip.Config.defaults().withWeightDecay(0.0);
    private Mode mode = Mode.SYNC;
    private int staleness = 2, warmup = 50, decaySteps = 600, checkpointEvery = 100, keepCheckpoints = 3;
    private double lrSft = 0.01, lrRl = 0.001;
    private Duration syncTimeout = Duration.ofSeconds(10), clipTimeout = Duration.ofSeconds(5), applyTimeout = Duration.ofSeconds(30);
    private String jdbcUser = "", jdbcPassword = "";

    private Builder(String runId, ModelConfig model, Path checkpointDir, String jdbcUrl) {
      this.runId = runId;
      this.model = model;
      this.checkpointDir = checkpointDir;
      this.jdbcUrl = jdbcUrl;
    }

    public Builder seed(long v) { seed = v; return this; }
    public Builder optimizer(MuonClip.Config v) { optimizer = v; return this; }
    public Builder mode(Mode v) { mode = v; return this; }
    public Builder staleness(int v) { staleness = v; return this; }
    public Builder lrSft(double v) { lrSft = v; return this; }
    public Builder lrRl(double v) { lrRl = v; return this; }
    public Builder warmup(int v) { warmup = v; return this; }
    public Builder decaySteps(int v) { decaySteps = v; return this; }
    public Builder syncTimeout(Duration v) { syncTimeout = v; return this; }
    public Builder clipTimeout(Duration v) { clipTimeout = v; return this; }
    public Builder applyTimeout(Duration v) { applyTimeout = v; return this; }
    public Builder checkpointEvery(int v) { checkpointEvery = v; return this; }
    public Builder keepCheckpoints(int v) { keepCheckpoints = v; return this; }
    public Builder jdbcUser(String v) { jdbcUser = v; return this; }
    public Builder jdbcPassword(String v) { jdbcPassword = v; return this; }

    public Settings build() {
      return new Settings(runId, model, seed, optimizer, mode, staleness, lrSft, lrRl, warmup, decaySteps, syncTimeout, clipTimeout,
          applyTimeout, checkpointEvery, keepCheckpoints, checkpointDir, jdbcUrl, jdbcUser, jdbcPassword);
    }
  }

  /** One applied step: its version, the mean loss of its contributors, what it trained, tokens, mean RL reward (NaN for SFT). */
  public record StepLoss(long version, double loss, PsProtocol.StageKind kind, long tokens, double reward) implements KryoWire {}

  /** What the coordinator has done, for progress, reports and tests; {@code losses} has one entry per applied step. */
  public record Status(String runId, long version, int learners, Map<String, Long> counters, Map<Long, Integer> consumedPerVersion,
                       List<StepLoss> losses, Map<String, TagOffset> offsets, long restoredFrom, Map<String, String> learnerNodes)
      implements KryoWire {}

  public record GetStatus(ActorRef<Status> replyTo) implements Command, KryoWire {}

  /** Write a checkpoint now (the end of a stage); replies with the version written. */
  public record CheckpointNow(ActorRef<Long> replyTo) implements Command, KryoWire {}

  private record LearnerGone(String learnerId, ActorRef<WeightsSnapshot> ref) implements Command, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  private record Subscribers(Receptionist.Listing listing) implements Command, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  private record SyncTimeout(long version) implements Command, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  private record ApplyTimeout(long version, int attempt) implements Command, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  private record ClipArrived(StepMaxLogits maxima) implements Command, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  /** The clip-monitor did not answer for this version within the clip timeout. */
  private record ClipTimedOut(long version) implements Command, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  private enum Watchdog implements Command, org.apache.pekko.actor.NoSerializationVerificationNeeded { INSTANCE }

  private long lastProgress = System.nanoTime();

  /** A group's answers, through adapters: the groups reply with their own types, not with the coordinator's. */
  private record PreparedArrived(PsGroup.Prepared p) implements Command, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  private record AppliedArrived(GroupApplied a) implements Command, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  private record StateArrived(GroupState g) implements Command, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  /** Ask every group again whether it holds the step's gradients (phase one). */
  private record RetryPrepare(long version) implements Command, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  /** Ask one group again to apply the step (phase two). */
  private record RetryApply(long version, String group) implements Command, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  public static ActorRef<Command> init(ActorSystem<?> system, Settings settings, ActorRef<ClipMonitorProtocol.Command> monitor) {
    return ClusterSingleton.get(system).init(SingletonActor.of(
            Behaviors.supervise(create(settings, monitor)).onFailure(SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(5), 0.2)),
            "ps-coordinator")
        .withSettings(ClusterSingletonSettings.create(system).withRole("ps")));
  }

  /** The proxy on this node, once {@link #init} ran here. */
  public static ActorRef<Command> proxy(ActorSystem<?> system) {
    var p = PROXIES.get(key(system));
    if (p == null) throw new IllegalStateException("the parameter-server coordinator was not initialised on this node");
    return p;
  }

  /** By the system's address: several ActorSystems (test nodes) share a JVM, and each must reach its own proxy. */
  private static final Map<String, ActorRef<Command>> PROXIES = new java.util.concurrent.ConcurrentHashMap<>();

  private static String key(ActorSystem<?> system) {
    return system.address().toString();
  }

  public static void registerProxy(ActorSystem<?> system, ActorRef<Command> proxy) {
    PROXIES.put(key(system), proxy);
  }

  public static Behavior<Command> create(Settings s, ActorRef<ClipMonitorProtocol.Command> monitor) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new PsCoordinator(ctx, timers, s, monitor)));
  }

  private final Settings s;
  private final ActorRef<ClipMonitorProtocol.Command> monitor;
  private final TimerScheduler<Command> timers;
  private final ClusterSharding sharding;
  private final List<String> groups;
  private final StepAssembler assembler;
  private final LrSchedule schedule;
  private final OffsetStore offsetStore;
  private long version;
  private long restoredFrom = -1;
  private WeightsSnapshot current;
  private Set<ActorRef<WeightsSnapshot>> subscribers = Set.of();
  private final Map<String, ActorRef<WeightsSnapshot>> learners = new TreeMap<>();
  private final Map<String, TagOffset> offsets = new TreeMap<>();
  private final Map<String, Long> counters = new TreeMap<>();
  private final Map<Long, Integer> consumedPerVersion = new TreeMap<>();
  private final List<StepLoss> losses = new ArrayList<>();
  private final Set<String> seen = new HashSet<>();
  private final Map<String, HashMap<String, float[]>> optimizerState = new HashMap<>();
  private final Map<String, Long> groupSteps = new HashMap<>();
  // the step in flight
  private boolean initialising = true;
  private Step applying;
  private final List<ActorRef<Long>> checkpointWaiters = new ArrayList<>();
  private boolean exporting;
  private final Map<String, GroupState> exported = new HashMap<>();

  private static final class Step {
    final long version;
    final List<Pushed> contributors;
    ArrayList<RescaleQK> rescales;
    boolean clipAsked, clipDone, applied;
    long prepareStarted;
    final Map<String, GroupApplied> replies = new HashMap<>();
    final Map<String, PsGroup.Prepared> prepared = new HashMap<>();
    Step(long version, List<Pushed> contributors) {
      this.version = version;
      this.contributors = contributors;
    }

    ArrayList<String> learnerIds() {
      var out = new ArrayList<String>();
      for (var p : contributors) out.add(p.learnerId());
      return out;
    }

    ArrayList<Long> gradientVersions() {
      var out = new ArrayList<Long>();
      for (var p : contributors) out.add(p.version());
      return out;
    }
    Step(long version, List<Pushed> contributors, ArrayList<RescaleQK> rescales, long prepareStarted) {
      this(version, contributors);
      this.rescales = rescales;
      this.clipDone = true;
      this.prepareStarted = prepareStarted;
    }
  }

  private PsCoordinator(ActorContext<Command> ctx, TimerScheduler<Command> timers, Settings s, ActorRef<ClipMonitorProtocol.Command> monitor) {
    super(ctx);
    this.s = s;
    this.monitor = monitor;
    this.timers = timers;
    this.sharding = ClusterSharding.get(ctx.getSystem());
    this.groups = PsProtocol.groups(s.model());
    this.assembler = new StepAssembler(s.mode(), s.staleness());
    this.schedule = new LrSchedule(s.lrSft(), s.lrRl(), s.warmup(), s.decaySteps());
    this.offsetStore = new OffsetStore(s.jdbcUrl(), s.jdbcUser(), s.jdbcPassword());
    ctx.getSystem().receptionist().tell(Receptionist.subscribe(WEIGHTS, ctx.messageAdapter(Receptionist.Listing.class, Subscribers::new)));
    timers.startTimerWithFixedDelay(Watchdog.INSTANCE, Duration.ofSeconds(15));
    start();
  }

  private Path runDir() {
    return s.checkpointDir().resolve(s.runId());
  }

  /** Restore the newest good checkpoint of this run, or initialise fresh weights from the seed. */
  private void start() {
    HashMap<String, float[]> weights = new HashMap<>(), opt = new HashMap<>();
    long steps = 0;
    try {
      var ck = CoordinatorCheckpoint.latest(runDir());
      if (ck.isPresent()) {
        var c = ck.get();
        version = c.version();
        restoredFrom = version;
        weights.putAll(c.weights());
        opt.putAll(c.optimizerState());
        offsets.putAll(c.offsets());
        steps = c.steps();
        counters.putAll(c.counters());
        offsetStore.save(s.runId(), offsets, version);
        getContext().getLog().info("parameter server restored version {} from {}", version, c.describe());
      }
    } catch (Exception e) {
      throw new IllegalStateException("cannot restore the parameter server from " + runDir() + ": " + e.getMessage(), e);
    }
    if (weights.isEmpty()) {
      var model = new PolicyModel(s.model(), new ReferenceOps(), s.seed());
      model.parameters().forEach((k, v) -> weights.put(k, WeightsSnapshot.toFloats(v)));
    }
    var replyTo = getContext().messageAdapter(GroupState.class, StateArrived::new);
    var byGroup = PsProtocol.byGroup(weights);
    for (String g : groups) {
      var gOpt = new HashMap<String, float[]>();
      opt.forEach((k, v) -> { if (PsProtocol.groupOf(k.substring(0, k.lastIndexOf('/'))).equals(g)) gOpt.put(k, v); });
      sharding.entityRefFor(PsGroup.KEY, g).tell(new PsGroup.Init(version, s.model(), s.optimizer(), byGroup.get(g), gOpt, steps, replyTo));
    }
    var ordered = new LinkedHashMap<String, float[]>();
    for (var spec : PolicyModel.specsOf(s.model())) ordered.put(spec.name(), weights.get(spec.name()));
    current = WeightsSnapshot.of(version, s.model(), new ArrayList<>(ordered.keySet()), new ArrayList<>(ordered.values()));
    exporting = true; // the Init replies arrive as GroupState
    exported.clear();
  }

  @Override public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(RegisterLearner.class, this::onRegister)
        .onMessage(LearnerGone.class, this::onGone)
        .onMessage(Subscribers.class, this::onSubscribers)
        .onMessage(Pushed.class, this::onPushed)
        .onMessage(BadGradient.class, this::onBad)
        .onMessage(PsProtocol.Pass.class, p -> {
          if (p.version() == version) {
            assembler.pass(p.learnerId());
            tryStep(false);
          }
          return this;
        })
        .onMessage(SyncTimeout.class, t -> { if (t.version() == version) tryStep(true); return this; })
        .onMessage(ClipArrived.class, this::onClip)
        .onMessage(ClipTimedOut.class, this::onClipTimeout)
        .onMessage(AppliedArrived.class, m -> onApplied(m.a()))
        .onMessage(PreparedArrived.class, m -> onPrepared(m.p()))
        .onMessage(ApplyTimeout.class, this::onApplyTimeout)
        .onMessage(RetryPrepare.class, this::onRetryPrepare)
        .onMessage(RetryApply.class, this::onRetryApply)
        .onMessage(StateArrived.class, m -> onGroupState(m.g()))
        .onMessage(GetStatus.class, g -> { g.replyTo().tell(status()); return this; })
        .onMessage(Watchdog.class, w -> {
          if (System.nanoTime() - lastProgress > 30_000_000_000L && assembler.anyPending()) {
            getContext().getLog().warn("no step for 30 s at version {}: learners {}, {}, applying {}, exporting {}", version,
                learners.keySet(), assembler.describe(),
                applying == null ? "-" : applying.version + (applying.clipDone ? " clip done" : " waiting for clip") + (applying.applied ? " applied" : ""),
                exporting);
          }
          return this;
        })
        .onMessage(CheckpointNow.class, c -> { checkpointWaiters.add(c.replyTo()); maybeExport(); return this; })
        .onSignal(org.apache.pekko.actor.typed.PostStop.class, sig -> { offsetStore.close(); return this; })
        .build();
  }

  private Status status() {
    var nodes = new TreeMap<String, String>();
    learners.forEach((id, ref) -> { if (ref != null) nodes.put(id, ref.path().address().toString()); });
    return new Status(s.runId(), version, learners.size(), Map.copyOf(counters), Map.copyOf(consumedPerVersion), List.copyOf(losses),
        Map.copyOf(offsets), restoredFrom, Map.copyOf(nodes));
  }

  private final Set<Long> skippedVersions = new HashSet<>();

  /** Counts the skip of version v's step once, however many rounds of refusals led to it. */
  private void skipped(long v) {
    if (skippedVersions.add(v)) count("steps_skipped", 1);
  }

  private void count(String key, long n) {
    counters.merge(key, n, Long::sum);
  }

  private final List<RegisterLearner> deferred = new ArrayList<>();

  private Behavior<Command> onRegister(RegisterLearner r) {
    if (initialising || applying != null || exporting) {
      deferred.add(r); // answered once no step is in flight
      return this;
    }
    var old = learners.get(r.learnerId());
    if (old == null || !old.equals(r.weights())) {
      if (old != null) getContext().unwatch(old);
      learners.put(r.learnerId(), r.weights());
      getContext().watchWith(r.weights(), new LearnerGone(r.learnerId(), r.weights()));
      dropPending(r.learnerId()); // pushes of an earlier incarnation not in a step: the new one reads them again
    }
    r.offsets().tell(new PsProtocol.Offsets(new HashMap<>(offsets), version));
    r.weights().tell(current);
    return this;
  }

  private void answerDeferred() {
    if (deferred.isEmpty() || initialising || applying != null || exporting) return;
    var all = new ArrayList<>(deferred);
    deferred.clear();
    for (var r : all) onRegister(r);
  }

  private void dropPending(String learnerId) {
    assembler.drop(learnerId);
  }

  /** Takes learners out of the step in flight (before it is applied); skips the step when nobody is left. */
  private void dropContributors(Set<String> ids, String why) {
    if (applying == null || applying.applied || ids.isEmpty()) return;
    var keep = new ArrayList<Pushed>();
    for (var c : applying.contributors) {
      if (ids.contains(c.learnerId())) {
        count("contributors_dropped", 1);
        getContext().getLog().warn("step {}: {} left out ({})", applying.version, c.learnerId(), why);
        c.replyTo().tell(new PushOutcome(c.version(), c.learnerId(), Outcome.STALE));
      } else {
        keep.add(c);
      }
    }
    if (keep.size() == applying.contributors.size()) return;
    if (keep.isEmpty()) {
      timers.cancel("apply");
      skipped(applying.version);
      applying = null;
      tryStep(false);
      return;
    }
    var next = new Step(applying.version, keep);
    next.clipAsked = applying.clipAsked;
    next.clipDone = applying.clipDone;
    next.rescales = applying.rescales;
    next.prepareStarted = applying.prepareStarted;
    applying = next;
    if (next.clipDone) sendPrepare(); // else the clip decision (or its timeout) starts the prepare
  }

  private Behavior<Command> onGone(LearnerGone g) {
    if (learners.get(g.learnerId()) != null && !learners.get(g.learnerId()).equals(g.ref())) return this; // a newer incarnation
    learners.remove(g.learnerId());
    dropPending(g.learnerId());
    dropContributors(Set.of(g.learnerId()), "its learner stopped");
    count("learners_lost", 1);
    tryStep(false);
    return this;
  }

  private Behavior<Command> onSubscribers(Subscribers l) {
    var now = l.listing().getServiceInstances(WEIGHTS);
    if (!initialising) for (var ref : now) if (!subscribers.contains(ref)) ref.tell(current);
    subscribers = Set.copyOf(now);
    return this;
  }

  private Behavior<Command> onPushed(Pushed p) {
    if (initialising) {
      p.replyTo().tell(new PushOutcome(p.version(), p.learnerId(), Outcome.STARTING));
      return this;
    }
    if (assembler.admit(version, applying == null ? -1 : applying.version, p.version()) == StepAssembler.Admission.STALE) {
      count("refused_stale", 1);
      getContext().getLog().info("gradient of {} computed at version {} refused: current version {}, staleness bound {}",
          p.learnerId(), p.version(), version, s.mode() == Mode.SYNC ? 0 : s.staleness());
      p.replyTo().tell(new PushOutcome(p.version(), p.learnerId(), Outcome.STALE));
      return this;
    }
    boolean first = assembler.add(p);
    if (!learners.containsKey(p.learnerId())) learners.put(p.learnerId(), null);
    if (first && s.mode() == Mode.SYNC) timers.startSingleTimer("sync", new SyncTimeout(version), s.syncTimeout());
    tryStep(false);
    return this;
  }

  private Behavior<Command> onBad(BadGradient b) {
    count("rejected_non_finite", 1);
    getContext().getLog().warn("gradient of {} at version {} rejected by group {}: {}", b.learnerId(), b.version(), b.group(), b.detail());
    assembler.reject(new LearnerAt(b.learnerId(), b.version()));
    tryStep(false);
    return this;
  }

  /** Decides whether a step can start now, and starts it. */
  private void tryStep(boolean timedOut) {
    answerDeferred();
    if (initialising || applying != null || exporting) return;
    var ready = assembler.take(version, learners.keySet(), timedOut);
    if (ready == null) return;
    if (ready.timedOutWithoutAll()) count("sync_timeouts", 1);
    timers.cancel("sync");
    for (var p : ready.rejected()) {
      p.replyTo().tell(new PushOutcome(p.version(), p.learnerId(), Outcome.NON_FINITE));
      // the data was read and rejected: its offsets advance, its trajectories count as consumed without a step
      advanceOffsets(p);
      count("trajectories_rejected", p.trajectoryIds().size());
    }
    var good = ready.good();
    if (good.isEmpty()) {
      skipped(version);
      saveOffsets();
      return;
    }
    applying = new Step(version, good);
    if (s.optimizer().clip()) {
      applying.clipAsked = true;
      monitor.tell(new CloseStep(version, applying.learnerIds(), getContext().messageAdapter(StepMaxLogits.class, ClipArrived::new)));
      timers.startSingleTimer("clip", new ClipTimedOut(version), s.clipTimeout());
    } else {
      applying.rescales = new ArrayList<>();
      applying.clipDone = true;
      sendPrepare();
    }
  }

  /** Phase one: every group must hold valid gradients of every contributor before any group applies. */
  private void sendPrepare() {
    applying.prepared.clear();
    var contributors = applying.learnerIds();
    var versions = applying.gradientVersions();
    var replyTo = getContext().messageAdapter(PsGroup.Prepared.class, PreparedArrived::new);
    for (String g : groups) sharding.entityRefFor(PsGroup.KEY, g).tell(new PsGroup.Prepare(applying.version, contributors, versions, replyTo));
    if (applying.prepareStarted == 0) {
      applying.prepareStarted = System.nanoTime();
      timers.startSingleTimer("apply", new ApplyTimeout(applying.version, 0), s.applyTimeout());
    }
  }

  private Behavior<Command> onPrepared(PsGroup.Prepared p) {
    if (applying == null || p.version() != applying.version || applying.applied) return this;
    applying.prepared.put(p.group(), p);
    if (applying.prepared.size() < groups.size()) return this;
    var rejected = new HashSet<String>();
    boolean missing = false;
    for (var x : applying.prepared.values()) {
      rejected.addAll(x.rejected());
      missing |= !x.missing().isEmpty();
    }
    if (!rejected.isEmpty()) {
      var keep = new ArrayList<Pushed>();
      for (var c : applying.contributors) {
        if (rejected.contains(c.learnerId())) {
          c.replyTo().tell(new PushOutcome(c.version(), c.learnerId(), Outcome.NON_FINITE));
          advanceOffsets(c);
          count("trajectories_rejected", c.trajectoryIds().size());
        } else {
          keep.add(c);
        }
      }
      if (keep.isEmpty()) {
        timers.cancel("apply");
        skipped(version);
        applying = null;
        saveOffsets();
        tryStep(false);
        return this;
      }
      applying = new Step(applying.version, keep, applying.rescales, applying.prepareStarted);
      sendPrepare();
    } else if (missing && System.nanoTime() - applying.prepareStarted > s.syncTimeout().toNanos() / 4) {
      // shards that have not come by now will not (their learner stopped after sending Pushed): the step goes on
      // without those learners; their data was not applied, so its offsets do not advance and it is read again
      var gone = new HashSet<String>();
      for (var x : applying.prepared.values()) gone.addAll(x.missing());
      dropContributors(gone, "shards-missing");
    } else if (missing) {
      // a shard is still on its way (the learner sent it on another path than Pushed): ask again shortly
      count("prepare_retries", 1);
      timers.startSingleTimer("prepare", new RetryPrepare(applying.version), Duration.ofMillis(20));
    } else {
      applying.applied = true;
      sendApply();
    }
    return this;
  }

  private Behavior<Command> onClip(ClipArrived a) {
    var m = a.maxima();
    if (applying == null || applying.clipDone || m.version() != applying.version) return this;
    timers.cancel("clip");
    var rescales = new ArrayList<RescaleQK>();
    if (m.measured()) {
      for (var r : QkClip.rescales(m.maxLogit(), s.optimizer().tau())) rescales.add(new RescaleQK(m.version(), r.layer(), r.head(), r.gamma()));
    }
    applying.rescales = rescales;
    count("heads_clipped", rescales.size());
    applying.clipDone = true;
    sendPrepare();
    return this;
  }

  private Behavior<Command> onClipTimeout(ClipTimedOut t) {
    if (applying == null || applying.clipDone || t.version() != applying.version) return this;
    count("clip_timeouts", 1);
    getContext().getLog().warn("clip-monitor gave no decision for version {} within {}: applying without rescales", applying.version, s.clipTimeout());
    applying.rescales = new ArrayList<>();
    applying.clipDone = true;
    sendPrepare();
    return this;
  }

  private double lr(Step st) {
    return schedule.at(st.version, st.contributors.stream().anyMatch(p -> p.kind() == StageKind.RL));
  }

  private void sendApply() {
    var contributors = applying.learnerIds();
    var versions = applying.gradientVersions();
    var replyTo = getContext().messageAdapter(GroupApplied.class, AppliedArrived::new);
    double lr = lr(applying);
    for (String g : groups) {
      sharding.entityRefFor(PsGroup.KEY, g).tell(new PsGroup.ApplyStep(applying.version, contributors, versions, lr, applying.rescales, replyTo));
    }
  }

  private Behavior<Command> onApplied(GroupApplied a) {
    if (applying == null || a.version() != applying.version) return this;
    if (!a.ok()) {
      // the group had not received every shard yet (different paths): ask again shortly; it changed nothing
      count("apply_retries", 1);
      timers.startSingleTimer("retry-" + a.group(), new RetryApply(a.version(), a.group()), Duration.ofMillis(50));
      return this;
    }
    applying.replies.put(a.group(), a);
    if (applying.replies.size() == groups.size()) finishStep();
    return this;
  }

  private Behavior<Command> onRetryPrepare(RetryPrepare r) {
    if (applying != null && applying.version == r.version() && !applying.applied) sendPrepare();
    return this;
  }

  private Behavior<Command> onRetryApply(RetryApply r) {
    if (applying == null || applying.version != r.version() || applying.replies.containsKey(r.group())) return this;
    var contributors = applying.learnerIds();
    var versions = applying.gradientVersions();
    sharding.entityRefFor(PsGroup.KEY, r.group()).tell(new PsGroup.ApplyStep(applying.version, contributors, versions, lr(applying),
        applying.rescales, getContext().messageAdapter(GroupApplied.class, AppliedArrived::new)));
    return this;
  }

  private Behavior<Command> onApplyTimeout(ApplyTimeout t) {
    if (applying == null || applying.version != t.version()) return this;
    var missing = new ArrayList<>(groups);
    missing.removeAll(applying.replies.keySet());
    throw new IllegalStateException("step " + t.version() + ": groups " + missing + " did not apply within " + s.applyTimeout()
        + " (the coordinator restarts from its last checkpoint)");
  }

  private void finishStep() {
    timers.cancel("apply");
    var all = new HashMap<String, float[]>();
    for (var r : applying.replies.values()) all.putAll(r.weights());
    var names = new ArrayList<String>();
    var data = new ArrayList<float[]>();
    for (var spec : PolicyModel.specsOf(s.model())) {
      names.add(spec.name());
      data.add(all.get(spec.name()));
    }
    int consumed = 0;
    double loss = 0, reward = 0;
    int rewarded = 0;
    long tokens = 0;
    for (var p : applying.contributors) {
      if (!Double.isNaN(p.reward())) {
        reward += p.reward();
        rewarded++;
      }
      consumed += p.trajectoryIds().size();
      for (var id : p.trajectoryIds()) if (!seen.add(id)) count("duplicates", 1);
      loss += p.loss() / applying.contributors.size();
      tokens += p.tokens();
      advanceOffsets(p);
    }
    long v = applying.version;
    consumedPerVersion.put(v, consumed);
    boolean rl = applying.contributors.stream().anyMatch(p -> p.kind() == StageKind.RL);
    losses.add(new StepLoss(v, loss, rl ? StageKind.RL : StageKind.SFT, tokens, rewarded == 0 ? Double.NaN : reward / rewarded));
    count("steps", 1);
    count("trajectories", consumed);
    count("tokens", tokens);
    version = v + 1;
    for (var p : applying.contributors) p.replyTo().tell(new PushOutcome(p.version(), p.learnerId(), Outcome.APPLIED));
    lastProgress = System.nanoTime();
    assembler.stepApplied();
    current = WeightsSnapshot.of(version, s.model(), names, data);
    saveOffsets();
    applying = null;
    for (var ref : subscribers) ref.tell(current);
    for (var ref : learners.values()) if (ref != null && !subscribers.contains(ref)) ref.tell(current);
    if (s.checkpointEvery() > 0 && version % s.checkpointEvery() == 0) maybeExport();
    else tryStep(false);
  }

  private void advanceOffsets(Pushed p) {
    p.offsets().forEach((tag, o) -> offsets.merge(tag, o, TagOffset::later));
  }

  private void saveOffsets() {
    try {
      offsetStore.save(s.runId(), offsets, version);
    } catch (java.sql.SQLException e) {
      throw new IllegalStateException("cannot store learner offsets: " + e.getMessage(), e);
    }
  }

  // ---- checkpoints

  private void maybeExport() {
    if (exporting || applying != null || initialising) return;
    exporting = true;
    exported.clear();
    var replyTo = getContext().messageAdapter(GroupState.class, StateArrived::new);
    for (String g : groups) sharding.entityRefFor(PsGroup.KEY, g).tell(new PsGroup.Export(replyTo));
  }

  private Behavior<Command> onGroupState(GroupState g) {
    if (!exporting) return this;
    exported.put(g.group(), g);
    if (exported.size() < groups.size()) return this;
    exporting = false;
    if (initialising) {
      initialising = false;
      getContext().getLog().info("parameter server ready at version {} ({} groups)", version, groups.size());
      for (var ref : subscribers) ref.tell(current);
      for (var ref : learners.values()) if (ref != null) ref.tell(current);
      tryStep(false);
      return this;
    }
    writeCheckpoint();
    for (var w : checkpointWaiters) w.tell(version);
    checkpointWaiters.clear();
    tryStep(false);
    return this;
  }

  private void writeCheckpoint() {
    try {
      CoordinatorCheckpoint.write(runDir(), s, version, exported.values(), offsets, counters);
      if (s.keepCheckpoints() > 0) Checkpoints.keepLast(runDir(), s.keepCheckpoints());
      count("checkpoints", 1);
    } catch (java.io.IOException e) {
      getContext().getLog().error("checkpoint of version {} failed: {}", version, e.getMessage());
      count("checkpoint_failures", 1);
    }
  }

}
