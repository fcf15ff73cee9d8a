package dev.k2pekko.trainer;

import dev.k2pekko.agents.TrajectoryReplay;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.protocol.PsProtocol.PushOutcome;
import dev.k2pekko.protocol.PsProtocol.StageKind;
import dev.k2pekko.protocol.PsProtocol.TagOffset;
import dev.k2pekko.protocol.PsProtocol.ToCoordinator;
import dev.k2pekko.protocol.PsProtocol.ToGroup;
import dev.k2pekko.protocol.Trajectory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.persistence.jdbc.query.javadsl.JdbcReadJournal;
import org.apache.pekko.persistence.query.EventEnvelope;
import org.apache.pekko.persistence.query.Offset;
import org.apache.pekko.persistence.query.PersistenceQuery;
import org.apache.pekko.stream.typed.javadsl.ActorSink;

/**
 * A learner: one of {@code count} instances kept alive across the {@code learner} nodes by Cluster Sharding (a
 * sharded daemon process; when a node leaves, its instances start again elsewhere). Learner i reads the journal
 * tags {@code trajectories-t} with {@code t mod count == i} through Persistence Query ({@code eventsByTag}, live),
 * starting where the parameter server last made its offsets durable, so a restart neither skips nor repeats.
 *
 * <p>What it trains on is what the journal holds for this pipeline run: the teacher's accepted trajectories are SFT
 * examples; trajectories a learned policy sampled (with their {@code Sampling}) are RL rollouts, grouped by task (the
 * K rollouts of a task share the id before '#', hence the tag). Each step runs at the weights version it holds:
 * forward and backward, the gradient's shards to the PS groups, every head's max logit to the clip-monitor, and
 * {@code Pushed} to the coordinator with the trajectory ids and offsets. In synchronous mode it then waits for the
 * next version; a refused gradient (stale) puts the batch back to be recomputed at newer weights.
 */
public final class Learner extends AbstractBehavior<Learner.Command> {
  public sealed interface Command {}

  /** {@code backend}: the tensor backend of the learner's steps, as {@link dev.k2pekko.ops.Backends#select} names it. */
  public record Settings(String runId, int count, int batchSize, int rlGroups, Duration idleFlush, double rlTau, int tags,
                         boolean async, String backend, RlObjective rlObjective, Reward.Weights reward, GroupCount rlGroupsCount,
                         SftOrder sftOrder, RlReplay.Settings rlReplay, LearnerClip clip, boolean openFinishedOnly) {
    public Settings {
      if (rlReplay.steps() > 0 && rlObjective != RlObjective.FILTERED) {
        // the K2 objective's pi_old term is the sampling policy's: a replayed rollout's is stale
        throw new IllegalArgumentException("k2.learner.rl-replay-steps needs rl-objective = filtered, got " + rlObjective.name().toLowerCase());
      }
    }

    public Settings(String runId, int count, int batchSize, int rlGroups, Duration idleFlush, double rlTau, int tags,
                    boolean async, String backend, RlObjective rlObjective, Reward.Weights reward) {
      this(runId, count, batchSize, rlGroups, idleFlush, rlTau, tags, async, backend, rlObjective, reward, GroupCount.ALL, SftOrder.ARRIVAL,
          RlReplay.Settings.OFF, LearnerClip.OFF, false);
    }

    /** {@code steps}: replayed RL steps after each RL step (0: off); {@code groups}: the learner's reservoir, in task groups. */
    public static RlReplay.Settings replay(int steps, int groups) {
      return new RlReplay.Settings(steps, groups);
    }
  }

  /**
   * The order SFT trajectories are trained in:
   * <ul>
   *   <li>{@code SEALED} (the default): the pipeline's synthesis parts are held until sealed and then trained sorted by
   *   trajectory id ({@link SealedParts}), so that a seed gives the same SFT weights on the {@code java} backend;</li>
   *   <li>{@code ARRIVAL}: as the journal streams deliver them, starting while synthesis still runs.</li>
   * </ul>
   */
  public enum SftOrder {
    SEALED, ARRIVAL;

    public static SftOrder parse(String s) {
      for (var o : values()) if (o.name().equalsIgnoreCase(s)) return o;
      throw new IllegalArgumentException("k2.learner.sft-order must be sealed or arrival, got '" + s + "'");
    }
  }

  /**
   * Which task groups count towards a step's {@code rl-groups} (docs/LOOP.md, "RL: reward and objective"):
   * <ul>
   *   <li>{@code SIGNAL}: groups whose rewards differ, the ones a step learns from; a group whose rollouts all
   *   succeeded or all failed rides along in the batch (its offsets advance) without taking a place, so every step
   *   learns from {@code rl-groups} groups;</li>
   *   <li>{@code ALL}: every group (the default): after SFT many groups are silent, and a step learns from the others
   *   among its {@code rl-groups}; measured better than {@code SIGNAL} (docs/LOOP.md).</li>
   * </ul>
   */
  public enum GroupCount {
    SIGNAL, ALL;

    public static GroupCount parse(String s) {
      for (var o : values()) if (o.name().equalsIgnoreCase(s)) return o;
      throw new IllegalArgumentException("k2.learner.rl-groups-count must be signal or all, got '" + s + "'");
    }
  }

  /**
   * What an RL step optimises on a batch of task groups (docs/LOOP.md, "RL: reward and objective"):
   * <ul>
   *   <li>{@code K2}: the K2 report's objective per group, {@code mean_i (r_i - mean(r) - tau (log pi - log pi_old))^2};</li>
   *   <li>{@code FILTERED}: next-token cross-entropy on the actions of the rollouts the judge accepted, from groups
   *   whose rewards differ (rejection-sampling fine-tuning on the policy's own verified successes; a group that all
   *   succeeded or all failed teaches nothing new, as in the K2 objective).</li>
   * </ul>
   */
  public enum RlObjective {
    K2, FILTERED;

    public static RlObjective parse(String s) {
      for (var o : values()) if (o.name().equalsIgnoreCase(s)) return o;
      throw new IllegalArgumentException("k2.learner.rl-objective must be k2 or filtered, got '" + s + "'");
    }
  }

  public enum Stop implements Command, NoSerializationVerificationNeeded { INSTANCE }

  /** A version the parameter server published, as it came (converted and verified in {@link #onWeights}). */
  private record Published(PsProtocol.Weights weights) implements Command, NoSerializationVerificationNeeded {}

  private record StreamInit(String tag, ActorRef<Ack> ack) implements Command, NoSerializationVerificationNeeded {}

  private record Element(String tag, EventEnvelope envelope, ActorRef<Ack> ack) implements Command, NoSerializationVerificationNeeded {}

  private record StreamEnd(String tag, Throwable failure) implements Command, NoSerializationVerificationNeeded {}

  /** A computed step; {@code measured}: the maxima at the weights as served (the result's are those it trained on). */
  private record Computed(LearnerBuffer.Batch batch, long version, StepLoss.Result result, double[][] measured, Throwable failure)
      implements Command, NoSerializationVerificationNeeded {}

  /** The critics the receptionist knows (an RL step whose reward reads the critic's score asks one). */
  private record Critics(org.apache.pekko.actor.typed.receptionist.Receptionist.Listing listing) implements Command, NoSerializationVerificationNeeded {}

  /** The critic's scores of an RL batch's rollouts that need one (by trajectory id), or why there are none. */
  private record Scored(LearnerBuffer.Batch batch, Map<String, Double> scores, Throwable failure) implements Command, NoSerializationVerificationNeeded {}

  private record GotOutcome(PushOutcome r) implements Command, NoSerializationVerificationNeeded {}

  private record GotOffsets(PsProtocol.Offsets offsets) implements Command, NoSerializationVerificationNeeded {}

  private enum Tick implements Command, NoSerializationVerificationNeeded { INSTANCE }

  public enum Ack { INSTANCE }

  /** The parameter-server groups, by parameter group ({@link PsProtocol#groupOf}): the same key as the groups' own. */
  private static final EntityTypeKey<ToGroup> GROUPS = EntityTypeKey.create(ToGroup.class, PsProtocol.GROUP_ENTITY_TYPE);

  /** {@code coordinator}: this node's proxy to the parameter server's coordinator. */
  public static Behavior<Command> create(int index, Settings settings, PolicyFormat format, ActorRef<ClipMonitorProtocol.Command> monitor,
                                         ActorRef<ToCoordinator> coordinator) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(t -> new Learner(ctx, t, index, settings, format, monitor, coordinator)));
  }

  private final TimerScheduler<Command> timers;
  private final String id;
  private final int index;
  private final Settings s;
  private final PolicyFormat format;
  private final ActorRef<ClipMonitorProtocol.Command> monitor;
  private final ActorRef<ToCoordinator> coordinator;
  private final ClusterSharding sharding;
  private final Executor compute;
  private final dev.k2pekko.ops.TensorOps ops;
  private final LearnerBuffer buffer;
  private final RlReplay replay;
  /** SFT parts held until sealed (sft-order = sealed); null with sft-order = arrival. */
  private final SealedParts parts;
  private final Map<String, ActorRef<Ack>> pendingAcks = new HashMap<>();
  private WeightsSnapshot weights;
  private long awaiting = -1; // the version whose step we wait for (sync)
  private boolean computing;
  private long lastElementNanos = System.nanoTime();
  private long lastProgressNanos = System.nanoTime();
  private final ActorRef<PushOutcome> refusedAdapter;
  private final Map<String, TagOffset> skipped = new HashMap<>();

  private Learner(ActorContext<Command> ctx, TimerScheduler<Command> timers, int index, Settings s, PolicyFormat format,
                  ActorRef<ClipMonitorProtocol.Command> monitor, ActorRef<ToCoordinator> coordinator) {
    super(ctx);
    this.timers = timers;
    this.index = index;
    this.id = "learner-" + index;
    this.s = s;
    this.format = format;
    this.buffer = new LearnerBuffer(s);
    this.replay = new RlReplay(s.rlReplay(), s.rlGroups());
    var mine = new java.util.HashSet<String>();
    for (int t = 0; t < s.tags(); t++) if (t % s.count() == index) mine.add(dev.k2pekko.agents.TrajectoryCollector.TAG_PREFIX + t);
    this.parts = s.sftOrder() == SftOrder.SEALED ? new SealedParts(s.runId(), mine) : null;
    this.monitor = monitor;
    this.coordinator = coordinator;
    this.sharding = ClusterSharding.get(ctx.getSystem());
    this.compute = ctx.getSystem().dispatchers().lookup(DispatcherSelector.fromConfig("k2.learner.dispatcher"));
    this.ops = dev.k2pekko.ops.Backends.select(s.backend());
    this.refusedAdapter = inbox("outcomes", GotOutcome::new);
    // the coordinator answers with the durable offsets once no step is in flight; the streams start from there
    // Replies come to child actors, not message adapters: the coordinator on another node watches the weights inbox
    // to see the learner go, and a remote watch of a message adapter reports it terminated at once.
    var weightsRef = inbox("weights", Published::new);
    this.registration = new PsProtocol.RegisterLearner(id, weightsRef, inbox("offsets", GotOffsets::new));
    coordinator.tell(registration); // repeated on every tick until the offsets come: a proxy may lose it while nodes join or leave
    // every publish reaches it through the receptionist too, from whichever coordinator incarnation runs
    ctx.getSystem().receptionist().tell(org.apache.pekko.actor.typed.receptionist.Receptionist.register(PsProtocol.WEIGHTS, weightsRef));
    timers.startTimerWithFixedDelay(Tick.INSTANCE, s.idleFlush().dividedBy(2));
    ctx.getSystem().receptionist().tell(org.apache.pekko.actor.typed.receptionist.Receptionist.subscribe(dev.k2pekko.critic.Critic.KEY,
        inbox("critics", Critics::new)));
    var metrics = dev.k2pekko.metrics.Metrics.get(ctx.getSystem());
    this.stepTime = metrics.timer("k2_learner_step", "a learner's forward and backward pass over one batch, on its compute thread", "learner", id);
    this.tokens = metrics.counter("k2_learner_tokens", "tokens the learners computed gradients over", "learner", id);
    this.tokensPerSecond = metrics.gauge("k2_learner_tokens_per_second", "tokens of a learner's last step over that step's time", "learner", id);
  }

  private final dev.k2pekko.metrics.Meter.Timer stepTime;
  private final dev.k2pekko.metrics.Meter.Counter tokens;
  private final dev.k2pekko.metrics.Meter.Gauge tokensPerSecond;

  private boolean started;

  /** A child that forwards what it receives to this learner, wrapped: an address other nodes can reply to and watch. */
  private <T> ActorRef<T> inbox(String name, java.util.function.Function<T, Command> wrap) {
    var self = getContext().getSelf();
    return getContext().spawn(Behaviors.<T>receiveMessage(m -> {
      self.tell(wrap.apply(m));
      return Behaviors.same();
    }), name);
  }
  private final PsProtocol.RegisterLearner registration;
  private long lastRegistration = System.nanoTime();

  private void startStreams(Map<String, TagOffset> offsets) {
    if (started) return; // a repeated answer (registration retried): the streams run already
    started = true;
    if (parts != null) parts.restore(offsets);
    var journal = PersistenceQuery.get(Adapter.toClassic(getContext().getSystem()))
        .getReadJournalFor(JdbcReadJournal.class, JdbcReadJournal.Identifier());
    for (int t = 0; t < s.tags(); t++) {
      if (t % s.count() != index) continue;
      String tag = dev.k2pekko.agents.TrajectoryCollector.TAG_PREFIX + t;
      var at = offsets.get(tag);
      // eventsByTag is exclusive of its offset: start just before the event that is partly or not yet consumed
      Offset from = at == null ? Offset.noOffset() : org.apache.pekko.persistence.query.Sequence.apply(Math.max(0, at.eventOffset() - 1));
      if (at != null) skipped.put(tag, at);
      var sink = ActorSink.<EventEnvelope, Command, Ack>actorRefWithBackpressure(getContext().getSelf(),
          (ack, env) -> new Element(tag, env, ack), ack -> new StreamInit(tag, ack), Ack.INSTANCE,
          new StreamEnd(tag, null), f -> new StreamEnd(tag, f));
      journal.eventsByTag(tag, from).runWith(sink, getContext().getSystem());
    }
  }

  @Override public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(StreamInit.class, m -> { m.ack().tell(Ack.INSTANCE); return this; })
        .onMessage(Element.class, this::onElement)
        .onMessage(StreamEnd.class, m -> {
          if (m.failure() != null) throw new IllegalStateException(id + ": journal stream of " + m.tag() + " failed", m.failure());
          return this;
        })
        .onMessage(Published.class, this::onWeights)
        .onMessage(GotOffsets.class, m -> { startStreams(m.offsets().offsets()); return this; })
        .onMessage(Computed.class, this::onComputed)
        .onMessage(Critics.class, this::onCritics)
        .onMessage(Scored.class, this::onScored)
        .onMessage(GotOutcome.class, this::onPushOutcome)
        .onMessage(Tick.class, t -> {
          if (!started && System.nanoTime() - lastRegistration > 2_000_000_000L) {
            lastRegistration = System.nanoTime();
            coordinator.tell(registration);
          }
          maybeStep();
          if (!buffer.isEmpty() && System.nanoTime() - lastProgressNanos > 30_000_000_000L) {
            lastProgressNanos = System.nanoTime();
            getContext().getLog().warn("{}: {} trajectories buffered ({} usable), no step for 30 s: weights {}, awaiting {}, computing {}",
                id, buffer.size(), buffer.usable(), weights == null ? "none" : weights.version(), awaiting, computing);
          }
          return this;
        })
        .onMessageEquals(Stop.INSTANCE, Behaviors::stopped)
        .build();
  }

  private Behavior<Command> onElement(Element e) {
    lastElementNanos = System.nanoTime();
    long offset = ((org.apache.pekko.persistence.query.Sequence) e.envelope().offset()).value();
    if (parts != null && e.envelope().event() instanceof dev.k2pekko.protocol.PartSealed seal) parts.sealRead(e.tag(), seal, offset);
    var trajectories = TrajectoryReplay.trajectories(e.envelope().event());
    int from = 0;
    var resume = skipped.remove(e.tag());
    if (resume != null && resume.eventOffset() == offset) from = resume.consumedInEvent();
    for (int i = from; i < trajectories.size(); i++) {
      var t = trajectories.get(i);
      boolean mine = t.trajectoryId().startsWith(s.runId() + "-");
      var item = new LearnerBuffer.Item(e.tag(), offset, i + 1, mine ? t : null, mine ? LearnerBuffer.kind(t) : null);
      if (parts == null || !parts.offer(item)) buffer.add(item);
    }
    // backpressure until steps have consumed: room for a few SFT batches, or two RL batches of groups of up to 4 (with
    // rl-groups-count = signal, three silent groups riding along with each group that counts)
    if (buffer.full()) pendingAcks.put(e.tag(), e.ack());
    else e.ack().tell(Ack.INSTANCE);
    maybeStep();
    return this;
  }

  private Behavior<Command> onWeights(Published w) {
    WeightsSnapshot snap;
    try {
      snap = snapshot(w.weights());
    } catch (WeightsSnapshot.CorruptWeightsException ex) {
      getContext().getLog().error("{}: weights refused: {}", id, ex.getMessage());
      return this;
    }
    if (weights != null && (snap.version() < weights.version() || (snap.version() == weights.version() && !snap.sha256().equals(weights.sha256())))) {
      // the parameter server came back from an older checkpoint: start again from its offsets
      throw new IllegalStateException(id + ": the parameter server restored version " + snap.version() + " (this learner held "
          + weights.version() + "); restarting from its offsets");
    }
    if (weights != null && snap.version() == weights.version()) return this;
    try {
      weights = snap.verify();
    } catch (WeightsSnapshot.CorruptWeightsException ex) {
      getContext().getLog().error("{}: weights refused: {}", id, ex.getMessage());
      return this;
    }
    if (awaiting >= 0 && weights.version() > awaiting) awaiting = -1;
    maybeStep();
    return this;
  }

  /**
   * The published weights as a snapshot, to verify before use: the inference server's conversion, one rule for every
   * receiver of {@link PsProtocol.Weights} (model cannot see protocol, so it cannot live in WeightsSnapshot).
   */
  static WeightsSnapshot snapshot(PsProtocol.Weights w) {
    return dev.k2pekko.agents.inference.InferenceServer.snapshot(w);
  }

  private void maybeStep() {
    if (computing || weights == null || awaiting >= 0) return; // one push in flight per learner, in both modes
    boolean idle = System.nanoTime() - lastElementNanos > s.idleFlush().toNanos();
    var batch = parts == null ? null : parts.next(s.batchSize());
    if (batch == null) batch = buffer.take(idle);
    if (batch != null && batch.kind() == StageKind.RL && batch.part() == null) {
      // a replayed step goes before the next fresh one, never after the last: a round ends with its last rollouts
      var again = replay.next();
      if (again != null) {
        buffer.putBack(batch);
        batch = again;
      }
    }
    if (batch == null) {
      // a learner holding a part not yet sealed has work coming; a seal read since the last pass is worth a new one
      boolean holding = parts != null && parts.holding();
      if (idle && buffer.usable() == 0 && !holding && (passedAt != weights.version() || passedSealed != sealed())) {
        passedAt = weights.version();
        passedSealed = sealed();
        coordinator.tell(new PsProtocol.Pass(weights.version(), id, sealed()));
      }
      return;
    }
    computing = true;
    if (batch.kind() == StageKind.RL && !needingScores(batch).isEmpty()) {
      askScores(batch);
      return;
    }
    compute(batch, Map.of());
  }

  /** The rollouts of an RL batch whose reward reads the critic's score (open tasks; all when the critic's weight is above 0). */
  private List<Trajectory> needingScores(LearnerBuffer.Batch batch) {
    var out = new ArrayList<Trajectory>();
    for (var it : batch.items()) if (it.use() != null && it.group() == StageKind.RL && StepLoss.needsCritic(s.reward(), it.use())) out.add(it.use());
    return out;
  }

  private ActorRef<dev.k2pekko.critic.Critic.Command> critic;
  private long lastNoCriticWarning;

  private Behavior<Command> onCritics(Critics c) {
    var all = c.listing().getServiceInstances(dev.k2pekko.critic.Critic.KEY);
    critic = null;
    for (var ref : all) if (critic == null || ref.path().address().hasLocalScope()) critic = ref; // this node's, if it runs one
    maybeStep();
    return this;
  }

  /**
   * Asks a critic for the scores the batch's rewards need, at its current weights. With no critic known yet, or no
   * answer in time, the batch goes back to the front of the buffer and is tried again: a reward without its critic
   * term would train on something else than the configured mix.
   */
  private void askScores(LearnerBuffer.Batch batch) {
    var need = needingScores(batch);
    if (critic == null) {
      buffer.putBack(batch);
      computing = false;
      if (System.nanoTime() - lastNoCriticWarning > 30_000_000_000L) {
        lastNoCriticWarning = System.nanoTime();
        getContext().getLog().warn("{}: the reward needs the critic's scores ({} rollouts) and no critic is registered yet; waiting", id, need.size());
      }
      return;
    }
    getContext().ask(dev.k2pekko.critic.Critic.ScoredAll.class, critic, CRITIC_TIMEOUT,
        (ActorRef<dev.k2pekko.critic.Critic.ScoredAll> r) -> new dev.k2pekko.critic.Critic.ScoreAll(need, r),
        (reply, failure) -> {
          if (reply == null) return new Scored(batch, null, failure);
          var scores = new HashMap<String, Double>();
          for (int i = 0; i < need.size(); i++) scores.put(need.get(i).trajectoryId(), reply.accept()[i]);
          return new Scored(batch, scores, null);
        });
  }

  private static final Duration CRITIC_TIMEOUT = Duration.ofSeconds(30);

  private Behavior<Command> onScored(Scored sc) {
    if (sc.failure() != null) {
      getContext().getLog().warn("{}: the critic did not score an RL batch ({}); trying it again", id, sc.failure().toString());
      buffer.putBack(sc.batch());
      computing = false;
      return this;
    }
    compute(sc.batch(), sc.scores());
    return this;
  }

  private void compute(LearnerBuffer.Batch batch, Map<String, Double> scores) {
    var snap = weights;
    var self = getContext().getSelf(); // the context is the actor's own: never touched from the compute thread
    long started = System.nanoTime();
    CompletableFuture.supplyAsync(() -> computeStep(snap, batch, scores), compute).whenComplete((r, f) -> {
      if (r != null) { // the meters are thread-safe; the actor's state is not touched here
        long nanos = System.nanoTime() - started;
        stepTime.recordNanos(nanos);
        tokens.increment(r.result().tokens());
        if (nanos > 0) tokensPerSecond.set(r.result().tokens() * 1e9 / nanos);
      }
      self.tell(new Computed(batch, snap.version(), r == null ? null : r.result(), r == null ? null : r.measured(), f));
    });
  }

  private LearnerClip.Clipped<StepLoss.Result> computeStep(WeightsSnapshot snap, LearnerBuffer.Batch batch, Map<String, Double> scores) {
    return s.clip().run(snap.toModel(ops), model -> computeStep(model, snap.version(), batch, scores), StepLoss.Result::maxLogit);
  }

  private StepLoss.Result computeStep(dev.k2pekko.model.PolicyModel model, long version, LearnerBuffer.Batch batch, Map<String, Double> scores) {
    if (batch.kind() == StageKind.SFT) {
      var ts = new ArrayList<Trajectory>();
      for (var it : batch.items()) if (it.use() != null && it.group() == StageKind.SFT) ts.add(it.use());
      return StepLoss.sft(model, format, ts);
    }
    // RL: whole task groups, in the order read
    var groups = new LinkedHashMap<String, List<Trajectory>>();
    for (var it : batch.items()) if (it.use() != null && it.group() == StageKind.RL) groups.computeIfAbsent(LearnerBuffer.groupOf(it.use()), g -> new ArrayList<>()).add(it.use());
    return StepLoss.rl(model, format, groups.values(), s.rlObjective(), s.rlTau(), version, s.reward(), t -> {
      Double x = scores.get(t.trajectoryId());
      if (x == null) throw new IllegalStateException("no critic score for " + t.trajectoryId());
      return x;
    }, s.openFinishedOnly());
  }

  private Behavior<Command> onComputed(Computed c) {
    computing = false;
    if (c.failure() != null) throw new IllegalStateException(id + ": step failed at version " + c.version(), c.failure());
    if (s.clip().over(c.measured())) {
      getContext().getLog().info("{}: a head over tau {} at version {}: re-clipped in this learner's weights before the gradient (largest now {})", id,
          s.clip().tau(), c.version(), String.format("%.2f", largest(c.result().maxLogit())));
    }
    var batch = c.batch();
    var ids = new ArrayList<String>();
    var moved = new HashMap<String, TagOffset>();
    for (var it : batch.items()) {
      if (batch.replayed()) break; // consumed before: no ids, no offsets
      if (it.use() != null) ids.add(it.use().trajectoryId());
      moved.merge(it.tag(), new TagOffset(it.eventOffset(), it.index()), TagOffset::later);
    }
    var offsets = parts == null ? moved : parts.offsets(batch, moved, buffer::floor);
    var grads = c.result().grads();
    if (grads.isEmpty()) {
      // nothing trainable in the batch (too long, or a lone rollout): push zero gradients so its offsets advance
      grads = new LinkedHashMap<>();
      for (var spec : PolicyModel.specsOf(weights.config())) grads.put(spec.name(), new float[spec.size()]);
    }
    for (var e : PsProtocol.byGroup(grads).entrySet()) {
      sharding.entityRefFor(GROUPS, e.getKey()).tell(new PsProtocol.PushGradient(c.version(), id, e.getValue()));
    }
    monitor.tell(new ClipMonitorProtocol.ReportMaxLogits(c.version(), id, c.measured(), c.result().maxLogit()));
    coordinator.tell(new PsProtocol.Pushed(c.version(), id, ids, offsets, c.result().loss(), c.result().tokens(), batch.kind(),
        c.result().reward(), refusedAdapter, sealed()));
    awaiting = c.version();
    lastProgressNanos = System.nanoTime();
    if (weights.version() > awaiting) awaiting = -1;
    unacked.put(c.version(), batch);
    if (!buffer.full()) {
      // room again: each held stream may send its next event (one event can hold a judge batch of 200)
      pendingAcks.values().forEach(a -> a.tell(Ack.INSTANCE));
      pendingAcks.clear();
    }
    maybeStep();
    return this;
  }

  private static double largest(double[][] m) {
    double x = Double.NEGATIVE_INFINITY;
    for (double[] row : m) for (double v : row) x = Math.max(x, v);
    return x;
  }

  /** Pushes without an outcome yet, by the version they were computed at: a refusal puts one back in the buffer. */
  private final java.util.TreeMap<Long, LearnerBuffer.Batch> unacked = new java.util.TreeMap<>();
  private long passedAt = -1;
  private long passedSealed = -1;

  /** The ordinal of the last sealed part read (0 without sealed parts). */
  private long sealed() {
    return parts == null ? 0 : parts.sealed();
  }

  private Behavior<Command> onPushOutcome(GotOutcome g) {
    var r = g.r();
    var refused = unacked.remove(r.version());
    boolean consumed = r.outcome() == PsProtocol.Outcome.APPLIED || r.outcome() == PsProtocol.Outcome.NON_FINITE;
    if (consumed && parts != null && refused != null) parts.applied(refused); // its offsets are durable either way
    if (r.outcome() == PsProtocol.Outcome.APPLIED && refused != null) replay.applied(refused);
    if (r.outcome() == PsProtocol.Outcome.APPLIED) return this; // the new weights come on their own
    if (r.version() == awaiting) awaiting = -1;
    if (!consumed && refused != null && !refused.replayed()) { // a refused replay is dropped: the next one is due anyway
      // recompute the refused batch at newer weights: back to the front of the buffer (or its part), in order
      if (refused.part() != null) parts.putBack(refused);
      else buffer.putBack(refused);
    }
    maybeStep();
    return this;
  }
}
