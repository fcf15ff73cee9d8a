package dev.k2pekko.agents;

import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.protocol.Trajectory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.pattern.StatusReply;

/**
 * The node's judge: scores each finished episode against its rubric ({@link JudgeRubric}), counts the verdicts
 * for the run's tracker, and sends the trajectories to be kept to the collectors in batches, one buffer per
 * journal tag: a batch holds trajectories of one tag and becomes one journal event. Tag t goes to collector
 * t mod collectors. One batch per tag is in flight at a time (backpressure); a batch that is not acknowledged
 * within the ack timeout is sent again, and the collector recognises it by its trajectory ids.
 */
public final class Judge extends AbstractBehavior<Judge.Command> {
  public sealed interface Command {}

  /**
   * One finished episode. {@code groupSize} > 1: the episode is one of that many rollouts of a task (ids equal up to
   * '#'); the judge persists a group's rollouts together, never split between journal events, so a learner reads
   * a task's K rollouts next to each other.
   */
  public record Evaluate(Task task, Trajectory draft, Map<String, String> world, boolean budgetExceeded, String problem,
                         String runId, Agent.PersistMode persist, ActorRef<RunTracker.Command> tracker, boolean perTask, int groupSize)
      implements Command, LocalOnly {
    public Evaluate(Task task, Trajectory draft, Map<String, String> world, boolean budgetExceeded, String problem,
                    String runId, Agent.PersistMode persist, ActorRef<RunTracker.Command> tracker) {
      this(task, draft, world, budgetExceeded, problem, runId, persist, tracker, false, 1);
    }
  }

  /** Rollouts of a group waiting for the rest of it, and since when. */
  private record Held(List<Trajectory> members, long sinceNanos) {}

  /** A group still incomplete after this long (its agent stopped) is persisted as it is. */
  static final Duration GROUP_TIMEOUT = Duration.ofSeconds(60);

  private record Acked(int tag, long batchId, int persisted, Throwable failure) implements Command, LocalOnly {}

  private enum Flush implements Command, LocalOnly { INSTANCE }

  private record Pending(long batchId, List<Trajectory> trajectories, Map<String, Integer> perRun) {}

  public static Behavior<Command> create() {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new Judge(ctx, timers)));
  }

  private final NodeServices services;
  private final NodeServices.Settings settings;
  private final Map<String, RunStats> stats = new HashMap<>();
  private final Map<String, ActorRef<RunTracker.Command>> trackers = new HashMap<>();
  private final List<List<Trajectory>> buffers = new ArrayList<>();
  private final Pending[] inFlight;
  private long nextBatchId = 1;
  private final String nodeKey;

  private Judge(ActorContext<Command> ctx, TimerScheduler<Command> timers) {
    super(ctx);
    this.services = NodeServices.get(ctx.getSystem());
    this.settings = services.settings();
    this.inFlight = new Pending[settings.tags()];
    this.nodeKey = "node/" + org.apache.pekko.cluster.typed.Cluster.get(ctx.getSystem()).selfMember().address().hostPort();
    for (int i = 0; i < settings.tags(); i++) buffers.add(new ArrayList<>());
    timers.startTimerWithFixedDelay(Flush.INSTANCE, settings.flushInterval());
  }

  @Override public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Evaluate.class, this::onEvaluate)
        .onMessage(Acked.class, this::onAcked)
        .onMessageEquals(Flush.INSTANCE, this::onFlush)
        .build();
  }

  private Behavior<Command> onEvaluate(Evaluate e) {
    var verdict = services.rubric().judge(e.task(), e.draft().steps(), e.draft().finalAnswer(), e.world(), e.budgetExceeded());
    if (e.problem() != null) {
      var reasons = new ArrayList<>(verdict.reasons());
      reasons.addFirst(e.problem());
      verdict = new dev.k2pekko.protocol.Verdict(false, verdict.verifiableScore(), verdict.rubricScore(), List.copyOf(reasons));
    }
    var d = e.draft();
    var t = d.withVerdict(verdict);
    trackers.putIfAbsent(e.runId(), e.tracker());
    var s = stats.computeIfAbsent(e.runId(), k -> new RunStats());
    s.add("episodes", 1);
    s.add("tool_calls", d.steps().size());
    long errors = d.steps().stream().filter(x -> x.error() != null).count();
    if (errors > 0) {
      s.add("tool_errors", errors);
      for (var x : d.steps()) {
        if (x.error() != null && refusals.contains(x.error())) s.add("refused/" + x.error(), 1);
      }
    }
    String outcome = verdict.accepted() ? "accepted" : "rejected";
    s.add(outcome, 1);
    var byDifficulty = difficultyKeys.computeIfAbsent(d.difficulty(), n -> counterKeys("difficulty/" + n));
    var byCategory = categoryKeys.computeIfAbsent(d.category(), c -> counterKeys("category/" + c));
    s.add(byDifficulty[0], 1);
    s.add(byCategory[0], 1);
    s.add(nodeKey, 1);
    if (e.perTask()) {
      // evaluation: trials and successes per task instance, for success rate and pass^k
      s.add("task/" + d.taskId() + "/n", 1);
      if (verdict.accepted()) s.add("task/" + d.taskId() + "/ok", 1);
    }
    if (verdict.accepted()) {
      s.add(byDifficulty[1], 1);
      s.add(byCategory[1], 1);
    } else {
      var kinds = new java.util.HashSet<String>();
      for (var r : verdict.reasons()) kinds.add(JudgeRubric.kind(r));
      for (var k : kinds) s.add("reason/" + k, 1);
    }
    boolean keep = e.persist() == Agent.PersistMode.ALL || (e.persist() == Agent.PersistMode.ACCEPTED && verdict.accepted());
    if (keep) {
      s.add("to_persist", 1);
      if (e.groupSize() > 1) {
        String group = TrajectoryCollector.groupOf(t.trajectoryId());
        var h = held.computeIfAbsent(group, g -> new Held(new ArrayList<>(e.groupSize()), System.nanoTime()));
        h.members().add(t);
        if (h.members().size() >= e.groupSize()) {
          held.remove(group);
          append(h.members());
        }
      } else {
        append(List.of(t));
      }
    }
    return this;
  }

  private final Map<String, Held> held = new java.util.LinkedHashMap<>();

  /** Appends trajectories of one tag to its buffer (a batch may run over the batch size by a group's rest). */
  private void append(List<Trajectory> ts) {
    int tag = TrajectoryCollector.tagIndex(ts.getFirst().trajectoryId(), settings.tags());
    var buf = buffers.get(tag);
    buf.addAll(ts);
    if (buf.size() >= settings.batchSize()) send(tag);
  }

  /** Sends the tag's buffer as one batch, unless the tag's previous batch is still unacknowledged. */
  private void send(int tag) {
    if (inFlight[tag] != null || buffers.get(tag).isEmpty()) return;
    var batch = buffers.get(tag);
    buffers.set(tag, new ArrayList<>());
    var perRun = new HashMap<String, Integer>();
    for (var t : batch) perRun.merge(runOf(t.trajectoryId()), 1, Integer::sum);
    var p = new Pending(nextBatchId++, batch, perRun);
    inFlight[tag] = p;
    deliver(tag, p);
  }

  private void deliver(int tag, Pending p) {
    var collector = Integer.toString(tag % settings.collectors());
    var ref = ClusterSharding.get(getContext().getSystem()).entityRefFor(TrajectoryCollector.KEY, collector);
    getContext().<TrajectoryCollector.Command, StatusReply<TrajectoryCollector.BatchRecorded>>ask(
        (Class<StatusReply<TrajectoryCollector.BatchRecorded>>) (Class<?>) StatusReply.class, ref,
        Duration.ofMillis(settings.ackTimeout().toMillis()),
        replyTo -> new TrajectoryCollector.RecordBatch(p.batchId(), p.trajectories(), replyTo),
        (reply, failure) -> {
          if (reply != null && reply.isSuccess()) return new Acked(tag, p.batchId(), reply.getValue().recorded(), null);
          return new Acked(tag, p.batchId(), 0, failure != null ? failure : reply.getError());
        });
  }

  private Behavior<Command> onAcked(Acked a) {
    var p = inFlight[a.tag()];
    if (p == null || p.batchId() != a.batchId()) return this;
    if (a.failure() != null) {
      getContext().getLog().warn("collector {} did not record batch {} ({} trajectories of {}{}): {}; sending it again",
          a.tag() % settings.collectors(), a.batchId(), p.trajectories().size(), TrajectoryCollector.TAG_PREFIX, a.tag(),
          a.failure().toString());
      deliver(a.tag(), p);
      return this;
    }
    // A redelivered batch counts once: the collector skips the ids it already holds, we count the batch size.
    p.perRun().forEach((run, n) -> stats.computeIfAbsent(run, k -> new RunStats()).add("persisted", n));
    inFlight[a.tag()] = null;
    send(a.tag());
    return this;
  }

  private Behavior<Command> onFlush() {
    long now = System.nanoTime();
    for (var it = held.entrySet().iterator(); it.hasNext(); ) {
      var e = it.next();
      var h = e.getValue();
      if (now - h.sinceNanos() < GROUP_TIMEOUT.toNanos()) continue;
      getContext().getLog().warn("rollout group {} incomplete after {} s ({} rollouts): persisted as it is", e.getKey(),
          GROUP_TIMEOUT.toSeconds(), h.members().size());
      it.remove();
      append(h.members());
    }
    for (int tag = 0; tag < buffers.size(); tag++) send(tag);
    for (var e : stats.entrySet()) {
      if (e.getValue().isEmpty()) continue;
      var tracker = trackers.get(e.getKey());
      if (tracker != null) tracker.tell(new RunTracker.StatsDelta(e.getKey(), e.getValue().drain()));
    }
    return this;
  }

  /** The {episodes, accepted} counter keys of each difficulty and category, built once. */
  private final Map<Integer, String[]> difficultyKeys = new HashMap<>();
  private final Map<String, String[]> categoryKeys = new HashMap<>();
  /** Error names of the firewall's refusals, counted as {@code refused/<name>} for the run summary. */
  private static final java.util.Set<String> refusals = java.util.Arrays.stream(dev.k2pekko.protocol.ToolError.values())
      .filter(dev.k2pekko.protocol.ToolError::refusal).map(Enum::name).collect(java.util.stream.Collectors.toUnmodifiableSet());

  private static String[] counterKeys(String prefix) {
    return new String[] {prefix + "/episodes", prefix + "/accepted"};
  }

  static String runOf(String trajectoryId) {
    int i = trajectoryId.indexOf('/');
    return i < 0 ? trajectoryId : trajectoryId.substring(0, i);
  }
}
