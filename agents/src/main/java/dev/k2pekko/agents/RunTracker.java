package dev.k2pekko.agents;

import dev.k2pekko.protocol.EpisodeOutcome;
import dev.k2pekko.protocol.KryoWire;
import dev.k2pekko.protocol.RunEvent;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Subscribe;

/**
 * Drives and follows one run on the node that started it. It gives every agent its episodes, counts an episode
 * only once its outcome is durable (a kept trajectory is in the journal, see {@link Judge}) and recorded in the
 * run's {@link RunRecord}, and completes when every planned episode is, or when the deadline passes.
 *
 * <p>Episodes are redone, never lost: when the cluster removes a node (left, or downed by the Split Brain Resolver),
 * the agents that ran there get their episodes not yet done again, and Cluster Sharding starts them on a node
 * that is up; so do those of an agent that sharding stopped before it finished (its shard moved to another node).
 * An agent that has not confirmed its assignment within {@link #CONFIRM_AFTER}, or that has reported nothing for
 * {@link #STALL_AFTER} while episodes of it are not done, is asked again; an agent
 * that already runs this run ignores the repeat. A redone episode has the same trajectory id and content (episodes
 * are deterministic), so a collector that already holds it skips it and the record counts it once.
 */
public final class RunTracker extends AbstractBehavior<RunTracker.Command> {
  public sealed interface Command {}

  /** Episodes of this run whose outcomes are durable, from a judge. */
  public record EpisodesJudged(String runId, List<EpisodeOutcome> outcomes) implements Command, KryoWire {}

  /** An agent took (or already runs) its episodes of this run on {@code node}. */
  public record AgentAt(String runId, int agent, String node) implements Command, KryoWire {}

  /** An agent of this run was stopped by sharding before it finished (its shard moves): its episodes go to its next home. */
  public record AgentMoved(String runId, int agent) implements Command, KryoWire {}

  /**
   * A judge's batch with episodes of this run has not been confirmed by the journal for {@code seconds} (more than
   * {@code k2.journal.give-up-after}): the database is gone, and the run ends with what the journal holds.
   */
  public record JournalGone(String runId, long seconds) implements Command, KryoWire {}

  private record NodeRemoved(String node) implements Command, LocalOnly {}

  private record Recovered(RunRecord.Snapshot snapshot, Throwable failure) implements Command, LocalOnly {}

  private record Recorded(List<EpisodeOutcome> outcomes) implements Command, LocalOnly {}

  private enum Tick implements Command, LocalOnly { INSTANCE }

  /** The outcome: counters, wall time from the start of the run, and whether it finished in time. */
  public record Summary(String runId, Map<String, Long> counters, long expectedEpisodes, Duration elapsed, boolean complete) {
    public long get(String key) { return counters.getOrDefault(key, 0L); }
  }

  static final Duration CONFIRM_AFTER = Duration.ofSeconds(5);
  static final Duration STALL_AFTER = Duration.ofSeconds(60);
  private static final Duration RECORD_RETRY = Duration.ofSeconds(20);

  public static Behavior<Command> create(RunDriver.RunSpec spec, Duration progressEvery, Consumer<Summary> progress,
                                         CompletableFuture<Summary> done) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> {
      timers.startTimerWithFixedDelay(Tick.INSTANCE, progressEvery);
      return new RunTracker(ctx, spec, progress, done);
    }));
  }

  private final RunDriver.RunSpec spec;
  private final Consumer<Summary> progress;
  private final CompletableFuture<Summary> done;
  private final long start = System.nanoTime();
  private final int episodes;
  private final long expected;
  private final RunStats stats = new RunStats();
  private final BitSet doneEpisodes;
  private long doneCount;
  /** The node each agent last said it runs on; null: not confirmed (yet, or again after its node was removed). */
  private final String[] nodeOf;
  private final long[] lastHeard, lastSent;
  private final Set<String> removed = new HashSet<>();
  /** Outcomes for the record and not yet confirmed by it, by key; those not yet sent to it; whether a write is on. */
  private final Map<Long, EpisodeOutcome> pending = new LinkedHashMap<>();
  private final ToRecord toRecord = new ToRecord();
  private boolean recording;
  private long recordingSince;
  /** Since when the record has not confirmed a write while outcomes wait for it (0: nothing waits). */
  private long recordUnconfirmedSince;
  private final Duration giveUpAfter;
  private final String journalUrl;
  /** Outcomes per record event: one write at a time, as many outcomes as came meanwhile (a journal write costs ms). */
  private static final int RECORD_BATCH = 2000;
  private final ActorRef<RunRecord.Command> record;
  private final ActorRef<RunRecord.Recorded> recordedAdapter;
  private boolean ready;
  private long lastCheck;

  private RunTracker(ActorContext<Command> ctx, RunDriver.RunSpec spec, Consumer<Summary> progress, CompletableFuture<Summary> done) {
    super(ctx);
    this.spec = spec;
    this.progress = progress;
    this.done = done;
    this.episodes = spec.episodesPerAgent();
    this.expected = (long) spec.agents() * episodes;
    this.doneEpisodes = new BitSet((int) expected);
    this.giveUpAfter = NodeServices.get(ctx.getSystem()).settings().journalGiveUp();
    var config = ctx.getSystem().settings().config();
    String urlKey = "pekko-persistence-jdbc.shared-databases.slick.db.url";
    this.journalUrl = config.hasPath(urlKey) ? config.getString(urlKey) : "the journal";
    this.nodeOf = new String[spec.agents()];
    this.lastHeard = new long[spec.agents()];
    this.lastSent = new long[spec.agents()];
    var removedAdapter = ctx.messageAdapter(ClusterEvent.MemberRemoved.class, e -> new NodeRemoved(e.member().address().hostPort()));
    Cluster.get(ctx.getSystem()).subscriptions().tell(Subscribe.create(removedAdapter, ClusterEvent.MemberRemoved.class));
    this.recordedAdapter = ctx.messageAdapter(RunRecord.Recorded.class, x -> new Recorded(x.outcomes()));
    if (spec.persist() == Agent.PersistMode.NONE) {
      // nothing of this run goes to the journal, so neither does its record
      this.record = null;
      begin(false);
    } else {
      this.record = ctx.spawn(RunRecord.create(spec.runId()), "record");
      ctx.ask(RunRecord.Snapshot.class, record, Duration.ofSeconds(60), RunRecord.Get::new, Recovered::new);
    }
  }

  @Override public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Recovered.class, this::onRecovered)
        .onMessage(EpisodesJudged.class, this::onJudged)
        .onMessage(Recorded.class, this::onRecorded)
        .onMessage(AgentAt.class, this::onAgentAt)
        .onMessage(NodeRemoved.class, this::onNodeRemoved)
        .onMessage(JournalGone.class, g -> journalGone(g.seconds()))
        .onMessage(AgentMoved.class, this::onAgentMoved)
        .onMessageEquals(Tick.INSTANCE, this::onTick)
        .build();
  }

  /** The record as the journal holds it: a resumed run starts from the episodes it has; a new one records its plan. */
  private Behavior<Command> onRecovered(Recovered r) {
    if (r.failure() != null) {
      done.completeExceptionally(new IllegalStateException("run " + spec.runId() + ": its record could not be read from the journal", r.failure()));
      return Behaviors.stopped();
    }
    var s = r.snapshot();
    if (s.planned() == null) {
      record.tell(new RunRecord.Plan(new RunEvent.RunPlanned(spec.runId(), spec.agents(), episodes, spec.seed(), spec.persist().name())));
    } else if (s.planned().agents() != spec.agents() || s.planned().episodesPerAgent() != episodes || s.planned().seed() != spec.seed()) {
      var p = s.planned();
      done.completeExceptionally(new IllegalArgumentException("run " + spec.runId() + " was planned with " + p.agents() + " agents x "
          + p.episodesPerAgent() + " episodes, seed " + p.seed() + "; it cannot continue as " + spec.agents() + " x " + episodes + ", seed " + spec.seed()));
      return Behaviors.stopped();
    } else {
      for (long k : s.done()) markDone((int) (k >>> 32), (int) k);
      stats.addAll(s.counters());
    }
    begin(s.planned() != null);
    return completeIfDone();
  }

  /** Gives every agent its episodes not done; {@code again}: a resumed run, whose episodes may have started before. */
  private void begin(boolean again) {
    ready = true;
    for (int i = 0; i < spec.agents(); i++) assign(i, again);
  }

  /** Sends agent i the episodes of it not done yet (all of them: null), if any; {@code again}: not for the first time. */
  private void assign(int agent, boolean again) {
    int from = agent * episodes, to = from + episodes;
    int first = doneEpisodes.nextClearBit(from);
    if (first >= to) return;
    int[] only = null;
    int someDone = doneEpisodes.nextSetBit(from); // -1: none set from here on
    if (someDone >= 0 && someDone < to) {
      var todo = new ArrayList<Integer>();
      for (int k = first; k < to; k = doneEpisodes.nextClearBit(k + 1)) todo.add(k - from);
      only = todo.stream().mapToInt(Integer::intValue).toArray();
    }
    lastSent[agent] = System.nanoTime();
    AgentCohort.tell(getContext().getSystem(), agent, only == null ? whole(again)
        : new Agent.RunEpisodes(spec.runId(), spec.seed(), episodes, spec.persist(), getContext().getSelf(), spec.episodes(), only, again));
  }

  /** Every episode of an agent: the same message for all agents, which each keeps as its last run once done. */
  private Agent.RunEpisodes whole(boolean again) {
    int i = again ? 1 : 0;
    if (wholeRun[i] == null) {
      wholeRun[i] = new Agent.RunEpisodes(spec.runId(), spec.seed(), episodes, spec.persist(), getContext().getSelf(), spec.episodes(), null, again);
    }
    return wholeRun[i];
  }

  /** {@link #whole}'s two messages, first try and again, made once: a node's agents share them instead of one each. */
  private final Agent.RunEpisodes[] wholeRun = new Agent.RunEpisodes[2];

  private boolean undone(int agent) {
    return doneEpisodes.nextClearBit(agent * episodes) < (agent + 1) * episodes;
  }

  private Behavior<Command> onAgentAt(AgentAt a) {
    if (a.agent() < 0 || a.agent() >= nodeOf.length || removed.contains(a.node())) return this;
    nodeOf[a.agent()] = a.node();
    lastHeard[a.agent()] = System.nanoTime();
    return this;
  }

  private Behavior<Command> onAgentMoved(AgentMoved m) {
    if (m.agent() < 0 || m.agent() >= nodeOf.length) return this;
    nodeOf[m.agent()] = null;
    if (undone(m.agent())) {
      stats.add("reassigned", 1);
      assign(m.agent(), true); // sharding buffers it until the shard has its new home
    }
    return this;
  }

  private Behavior<Command> onNodeRemoved(NodeRemoved r) {
    if (!removed.add(r.node())) return this;
    int agents = 0;
    for (int i = 0; i < nodeOf.length; i++) {
      if (!r.node().equals(nodeOf[i])) continue;
      nodeOf[i] = null;
      if (!undone(i)) continue;
      assign(i, true);
      agents++;
    }
    if (agents > 0) {
      stats.add("reassigned", agents);
      getContext().getLog().warn("run {}: node {} was removed from the cluster; {} of its agents' episodes not done go to agents elsewhere",
          spec.runId(), r.node(), agents);
    }
    return this;
  }

  private Behavior<Command> onJudged(EpisodesJudged e) {
    for (var o : e.outcomes()) {
      if (o.agent() < 0 || o.agent() >= nodeOf.length || o.episode() < 0 || o.episode() >= episodes) continue;
      long k = RunRecord.key(o.agent(), o.episode());
      if (doneEpisodes.get(o.agent() * episodes + o.episode()) || pending.containsKey(k)) continue;
      lastHeard[o.agent()] = System.nanoTime();
      if (record == null) {
        count(o);
      } else {
        pending.put(k, o);
        toRecord.add(o);
      }
    }
    writeRecord();
    return completeIfDone();
  }

  /** Sends the outcomes waiting to the record, kept ones first ({@link ToRecord}), unless a write is on. */
  private void writeRecord() {
    if (recording || toRecord.isEmpty()) return;
    var batch = toRecord.take(RECORD_BATCH);
    recording = true;
    recordingSince = System.nanoTime();
    if (recordUnconfirmedSince == 0) recordUnconfirmedSince = recordingSince;
    record.tell(new RunRecord.Record(batch, recordedAdapter));
  }

  private Behavior<Command> onRecorded(Recorded r) {
    for (var o : r.outcomes()) {
      if (pending.remove(RunRecord.key(o.agent(), o.episode())) != null) count(o);
    }
    recording = false;
    recordUnconfirmedSince = 0;
    writeRecord();
    return completeIfDone();
  }

  /**
   * The journal has confirmed nothing for {@code seconds}: the run ends with exit code 4 ({@link JournalSchema.Unreachable}).
   * Every episode it counted is durable, so what the message reports is in the journal; nothing is counted after.
   */
  private Behavior<Command> journalGone(long seconds) {
    var now = summary(false);
    progress.accept(now);
    done.completeExceptionally(new JournalSchema.Unreachable(String.format(
        "the journal database (%s) has confirmed no write for %d s (k2.journal.give-up-after = %d s): run %s stopped with %,d of %,d "
            + "episodes done; the %,d trajectories it counted as persisted (%,d accepted) are in the journal (with any it had not counted yet)",
        journalUrl, seconds, giveUpAfter.toSeconds(), spec.runId(), now.get("episodes"), expected, now.get("persisted"), now.get("accepted")), null));
    return Behaviors.stopped();
  }

  private void count(EpisodeOutcome o) {
    if (markDone(o.agent(), o.episode())) stats.count(o);
  }

  private boolean markDone(int agent, int episode) {
    int i = agent * episodes + episode;
    if (doneEpisodes.get(i)) return false;
    doneEpisodes.set(i);
    doneCount++;
    return true;
  }

  private Behavior<Command> completeIfDone() {
    if (doneCount < expected) return this;
    var last = summary(true);
    progress.accept(last);
    done.complete(last);
    return Behaviors.stopped();
  }

  private Summary summary(boolean complete) {
    return new Summary(spec.runId(), stats.view(), expected, Duration.ofNanos(System.nanoTime() - start), complete);
  }

  private Behavior<Command> onTick() {
    if (!ready) return this;
    var now = summary(false);
    progress.accept(now);
    if (now.elapsed().compareTo(spec.timeout()) > 0) {
      done.complete(now);
      return Behaviors.stopped();
    }
    long t = System.nanoTime();
    if (t - lastCheck < Duration.ofSeconds(1).toNanos()) return this;
    lastCheck = t;
    for (int i = 0; i < nodeOf.length; i++) {
      if (!undone(i)) continue;
      if (nodeOf[i] == null ? t - lastSent[i] > CONFIRM_AFTER.toNanos()
          : t - Math.max(lastHeard[i], lastSent[i]) > STALL_AFTER.toNanos()) assign(i, true);
    }
    if (recordUnconfirmedSince != 0 && t - recordUnconfirmedSince > giveUpAfter.toNanos()) {
      return journalGone(Duration.ofNanos(t - recordUnconfirmedSince).toSeconds());
    }
    if (recording && t - recordingSince > RECORD_RETRY.toNanos()) {
      // the record restarted (a journal write failed) and lost what it was writing: every outcome not confirmed again
      getContext().getLog().warn("run {}: the run record did not confirm a write within {}; recording {} outcomes again",
          spec.runId(), RECORD_RETRY, pending.size());
      toRecord.clear();
      pending.values().forEach(toRecord::add);
      recording = false;
      writeRecord();
    }
    return this;
  }

  /**
   * The outcomes waiting for the record, kept ones taken first. A kept episode's outcome reaches the tracker only once
   * its collector confirmed the journal write, later than the rejections judged with it, which nothing holds back: in
   * one queue it would wait behind them, and what the run counts as persisted would lag what the journal holds by as
   * many record writes as there are rejections waiting (thousands under load).
   */
  static final class ToRecord {
    private final java.util.ArrayDeque<EpisodeOutcome> kept = new java.util.ArrayDeque<>(), others = new java.util.ArrayDeque<>();

    void add(EpisodeOutcome o) { (o.kept() ? kept : others).add(o); }

    boolean isEmpty() { return kept.isEmpty() && others.isEmpty(); }

    void clear() {
      kept.clear();
      others.clear();
    }

    /** Up to {@code max} outcomes, kept ones first, each in the order it came. */
    List<EpisodeOutcome> take(int max) {
      var batch = new ArrayList<EpisodeOutcome>(Math.min(max, kept.size() + others.size()));
      while (batch.size() < max && !kept.isEmpty()) batch.add(kept.poll());
      while (batch.size() < max && !others.isEmpty()) batch.add(others.poll());
      return List.copyOf(batch);
    }
  }
}
