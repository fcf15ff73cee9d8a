package dev.k2pekko.ps.server;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
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
import dev.k2pekko.ps.server.PsProtocol.PushOutcome;
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
  public interface Command {}

  /** Learners and inference servers register here to receive every published version. */
  public static final ServiceKey<WeightsSnapshot> WEIGHTS = ServiceKey.create(WeightsSnapshot.class, "k2-weights");

  public enum Mode { SYNC, ASYNC }

  public record Settings(String runId, ModelConfig model, long seed, MuonClip.Config optimizer, Mode mode, int staleness,
                         double lrSft, double lrRl, int warmup, int decaySteps, Duration syncTimeout, Duration clipTimeout,
                         Duration applyTimeout, int checkpointEvery, int keepCheckpoints, Path checkpointDir,
                         String jdbcUrl, String jdbcUser, String jdbcPassword) {}

  /**
   * What the coordinator has done, for progress, reports and tests. {@code losses} has one row per applied step:
   * version, mean loss, 1 for an RL step (0 for SFT), tokens, mean RL reward (NaN for SFT).
   */
  public record Status(String runId, long version, int learners, Map<String, Long> counters, Map<Long, Integer> consumedPerVersion,
                       List<double[]> losses, Map<String, TagOffset> offsets, long restoredFrom, Map<String, String> learnerNodes)
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

  private record Retry(long version, String group) implements Command, org.apache.pekko.actor.NoSerializationVerificationNeeded {}

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
  private final OffsetStore offsetStore;
  private long version;
  private long restoredFrom = -1;
  private WeightsSnapshot current;
  private Set<ActorRef<WeightsSnapshot>> subscribers = Set.of();
  private final Map<String, ActorRef<WeightsSnapshot>> learners = new TreeMap<>();
  private final Map<Long, Map<String, Pushed>> pushed = new HashMap<>();
  private final Set<String> badThisVersion = new HashSet<>();
  /** Learners with nothing to train on at the current version. */
  private final Set<String> passed = new HashSet<>();
  private final Map<String, TagOffset> offsets = new TreeMap<>();
  private final Map<String, Long> counters = new TreeMap<>();
  private final Map<Long, Integer> consumedPerVersion = new TreeMap<>();
  private final List<double[]> losses = new ArrayList<>();
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
      var ck = Checkpoints.loadLatest(runDir(), new ReferenceOps());
      if (ck.isPresent()) {
        var c = ck.get();
        version = c.version();
        restoredFrom = version;
        c.weights().forEach((k, v) -> weights.put(k, WeightsSnapshot.toFloats(v)));
        c.optimizerState().forEach((k, v) -> opt.put(k, WeightsSnapshot.toFloats(v)));
        var extra = c.metadata().info().extra();
        if (extra.get("offsets") instanceof Map<?, ?> m) {
          m.forEach((tag, o) -> {
            var parts = String.valueOf(o).split(":");
            offsets.put(String.valueOf(tag), new TagOffset(Long.parseLong(parts[0]), Integer.parseInt(parts[1])));
          });
        }
        if (extra.get("steps") instanceof Number n) steps = n.longValue();
        if (extra.get("counters") instanceof Map<?, ?> m) m.forEach((k, v) -> counters.put(String.valueOf(k), ((Number) v).longValue()));
        offsetStore.save(s.runId(), offsets, version);
        getContext().getLog().info("parameter server restored version {} from {}", version, c.metadata().json());
      }
    } catch (Exception e) {
      throw new IllegalStateException("cannot restore the parameter server from " + runDir() + ": " + e.getMessage(), e);
    }
    if (weights.isEmpty()) {
      var model = new PolicyModel(s.model(), new ReferenceOps(), s.seed());
      model.parameters().forEach((k, v) -> weights.put(k, WeightsSnapshot.toFloats(v)));
    }
    var replyTo = getContext().messageAdapter(GroupState.class, g -> g);
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
            passed.add(p.learnerId());
            tryStep(false);
          }
          return this;
        })
        .onMessage(SyncTimeout.class, t -> { if (t.version() == version) tryStep(true); return this; })
        .onMessage(ClipArrived.class, this::onClip)
        .onMessage(ClipTimedOut.class, this::onClipTimeout)
        .onMessage(GroupApplied.class, this::onApplied)
        .onMessage(PsGroup.Prepared.class, this::onPrepared)
        .onMessage(ApplyTimeout.class, this::onApplyTimeout)
        .onMessage(Retry.class, this::onRetry)
        .onMessage(GroupState.class, this::onGroupState)
        .onMessage(GetStatus.class, g -> { g.replyTo().tell(status()); return this; })
        .onMessage(Watchdog.class, w -> {
          if (System.nanoTime() - lastProgress > 30_000_000_000L && !pushed.isEmpty()) {
            getContext().getLog().warn("no step for 30 s at version {}: learners {}, pushed {}, passed {}, applying {}, exporting {}", version,
                learners.keySet(), pushed.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue().keySet()).toList(), passed,
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
    for (var byLearner : pushed.values()) byLearner.remove(learnerId);
    passed.remove(learnerId);
  }

  /** Takes learners out of the step in flight (before it is applied); skips the step when nobody is left. */
  private void dropContributors(Set<String> ids, String why) {
    if (applying == null || applying.applied || ids.isEmpty()) return;
    var keep = new ArrayList<Pushed>();
    for (var c : applying.contributors) {
      if (ids.contains(c.learnerId())) {
        count("contributors_dropped", 1);
        getContext().getLog().warn("step {}: {} left out ({})", applying.version, c.learnerId(), why);
        c.replyTo().tell(new PushOutcome(c.version(), c.learnerId(), "stale"));
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
      p.replyTo().tell(new PushOutcome(p.version(), p.learnerId(), "starting"));
      return this;
    }
    // In synchronous mode a push for the version whose step is already under way came too late for it: refused,
    // so its learner computes it again at the next version (kept, it would sit here unapplied and its data be lost).
    boolean late = s.mode() == Mode.SYNC && applying != null && p.version() == applying.version;
    if (late || p.version() > version || (s.mode() == Mode.SYNC && p.version() < version) || (s.mode() == Mode.ASYNC && p.version() < version - s.staleness())) {
      count("refused_stale", 1);
      getContext().getLog().info("gradient of {} computed at version {} refused: current version {}, staleness bound {}",
          p.learnerId(), p.version(), version, s.mode() == Mode.SYNC ? 0 : s.staleness());
      p.replyTo().tell(new PushOutcome(p.version(), p.learnerId(), "stale"));
      return this;
    }
    var byLearner = pushed.computeIfAbsent(p.version(), v -> new HashMap<>());
    boolean first = pushed.values().stream().mapToInt(Map::size).sum() == 0;
    byLearner.put(p.learnerId(), p);
    if (!learners.containsKey(p.learnerId())) learners.put(p.learnerId(), null);
    if (first && s.mode() == Mode.SYNC) timers.startSingleTimer("sync", new SyncTimeout(version), s.syncTimeout());
    tryStep(false);
    return this;
  }

  private Behavior<Command> onBad(BadGradient b) {
    count("rejected_non_finite", 1);
    getContext().getLog().warn("gradient of {} at version {} rejected by group {}: {}", b.learnerId(), b.version(), b.group(), b.detail());
    badThisVersion.add(b.learnerId() + "@" + b.version());
    tryStep(false);
    return this;
  }

  /** Decides whether a step can start now, and starts it. */
  private void tryStep(boolean timedOut) {
    answerDeferred();
    if (initialising || applying != null || exporting) return;
    var candidates = new ArrayList<Pushed>();
    if (s.mode() == Mode.SYNC) {
      var mine = pushed.getOrDefault(version, Map.of());
      boolean all = !mine.isEmpty();
      for (var id : learners.keySet()) {
        if (!mine.containsKey(id) && !badThisVersion.contains(id + "@" + version) && !passed.contains(id)) all = false;
      }
      if (!(all || (timedOut && !mine.isEmpty()))) return;
      candidates.addAll(mine.values());
      if (!all) count("sync_timeouts", 1);
    } else {
      for (var e : pushed.entrySet()) candidates.addAll(e.getValue().values());
      if (candidates.isEmpty()) return;
    }
    pushed.clear();
    timers.cancel("sync");
    var good = new ArrayList<Pushed>();
    for (var p : candidates) {
      if (badThisVersion.contains(p.learnerId() + "@" + p.version())) {
        p.replyTo().tell(new PushOutcome(p.version(), p.learnerId(), "non-finite"));
        // the data was read and rejected: its offsets advance, its trajectories count as consumed without a step
        advanceOffsets(p);
        count("trajectories_rejected", p.trajectoryIds().size());
      } else {
        good.add(p);
      }
    }
    badThisVersion.clear();
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
    var replyTo = getContext().messageAdapter(PsGroup.Prepared.class, x -> x);
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
          c.replyTo().tell(new PushOutcome(c.version(), c.learnerId(), "non-finite"));
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
      timers.startSingleTimer("prepare", new Retry(applying.version, "*"), Duration.ofMillis(20));
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
    boolean rl = st.contributors.stream().anyMatch(p -> "rl".equals(p.kind()));
    double base = rl ? s.lrRl() : s.lrSft();
    // SFT: linear warm-up, then linear decay to a tenth over decay-steps versions; RL: constant
    double decay = rl || s.decaySteps() <= 0 ? 1.0 : Math.max(0.1, 1.0 - 0.9 * st.version / s.decaySteps());
    return base * decay * Math.min(1.0, (st.version + 1.0) / Math.max(1, s.warmup()));
  }

  private void sendApply() {
    var contributors = applying.learnerIds();
    var versions = applying.gradientVersions();
    var replyTo = getContext().messageAdapter(GroupApplied.class, g -> g);
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
      timers.startSingleTimer("retry-" + a.group(), new Retry(a.version(), a.group()), Duration.ofMillis(50));
      return this;
    }
    applying.replies.put(a.group(), a);
    if (applying.replies.size() == groups.size()) finishStep();
    return this;
  }

  private Behavior<Command> onRetry(Retry r) {
    if (r.group().equals("*")) {
      if (applying != null && applying.version == r.version() && !applying.applied) sendPrepare();
      return this;
    }
    if (applying == null || applying.version != r.version() || applying.replies.containsKey(r.group())) return this;
    var contributors = applying.learnerIds();
    var versions = applying.gradientVersions();
    sharding.entityRefFor(PsGroup.KEY, r.group()).tell(new PsGroup.ApplyStep(applying.version, contributors, versions, lr(applying),
        applying.rescales, getContext().messageAdapter(GroupApplied.class, g -> g)));
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
    boolean rl = applying.contributors.stream().anyMatch(p -> "rl".equals(p.kind()));
    losses.add(new double[] {v, loss, rl ? 1 : 0, tokens, rewarded == 0 ? Double.NaN : reward / rewarded});
    count("steps", 1);
    count("trajectories", consumed);
    count("tokens", tokens);
    version = v + 1;
    for (var p : applying.contributors) p.replyTo().tell(new PushOutcome(p.version(), p.learnerId(), "applied"));
    lastProgress = System.nanoTime();
    passed.clear();
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
    var replyTo = getContext().messageAdapter(GroupState.class, g -> g);
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
    var ops = new ReferenceOps();
    var weights = new LinkedHashMap<String, Tensor>();
    var opt = new LinkedHashMap<String, Tensor>();
    long steps = 0;
    for (var g : exported.values()) {
      steps = Math.max(steps, g.steps());
      g.weights().forEach((k, v) -> weights.put(k, tensor(ops, k, v)));
      g.optimizer().forEach((k, v) -> opt.put(k, tensor(ops, k.substring(0, k.lastIndexOf('/')), v)));
    }
    var offs = new TreeMap<String, Object>();
    offsets.forEach((k, o) -> offs.put(k, o.eventOffset() + ":" + o.consumedInEvent()));
    var cfg = s.model();
    var modelMap = Map.<String, Object>of("vocab", cfg.vocab(), "d_model", cfg.dModel(), "layers", cfg.layers(), "heads", cfg.heads(),
        "context", cfg.context(), "mlp_ratio", cfg.mlpRatio(), "norm_eps", cfg.normEps());
    var o = s.optimizer();
    var hyper = Map.<String, Object>of("lr_sft", s.lrSft(), "lr_rl", s.lrRl(), "weight_decay", o.weightDecay(), "momentum", o.momentum(),
        "beta1", o.beta1(), "beta2", o.beta2(), "qk_clip", o.clip(), "tau", o.tau(), "alpha", o.alpha());
    var extra = Map.<String, Object>of("offsets", offs, "steps", steps, "run_id", s.runId(), "counters", new TreeMap<>(counters));
    try {
      Checkpoints.write(runDir(), version, weights, opt, new Checkpoints.Info(modelMap, "MuonClip", hyper, extra));
      if (s.keepCheckpoints() > 0) Checkpoints.keepLast(runDir(), s.keepCheckpoints());
      count("checkpoints", 1);
    } catch (java.io.IOException e) {
      getContext().getLog().error("checkpoint of version {} failed: {}", version, e.getMessage());
      count("checkpoint_failures", 1);
    }
  }

  private Tensor tensor(ReferenceOps ops, String name, float[] f) {
    var spec = PolicyModel.specsOf(s.model()).stream().filter(x -> x.name().equals(name)).findFirst()
        .orElseThrow(() -> new IllegalStateException("unknown parameter " + name));
    double[] d = new double[f.length];
    for (int i = 0; i < f.length; i++) d[i] = f[i];
    return ops.tensor(spec.rows(), spec.cols(), d);
  }
}
