package dev.k2pekko.agents;

import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.protocol.EpisodeOutcome;
import dev.k2pekko.protocol.ToolError;
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
 * One of the node's judges ({@code k2.judge.count}; an agent's episodes all go to one): scores each finished episode against its rubric ({@link JudgeRubric}) and sends the
 * trajectories to be kept to the collectors in batches, one buffer per journal tag: a batch holds trajectories of
 * one tag and becomes one journal event. Tag t goes to collector t mod collectors. One batch per tag is in flight
 * at a time (backpressure); a batch that is not acknowledged within the ack timeout is sent again, and the
 * collector recognises it by its trajectory ids. A batch unconfirmed for {@code k2.journal.give-up-after} (the database
 * is gone) ends the runs it holds episodes of ({@link RunTracker.JournalGone}); what was confirmed before stays.
 *
 * <p>Accepted means durable: an episode's outcome goes to its run's tracker only once it is durable, for a kept
 * trajectory when its collector confirmed the journal holds it, for one not kept (a rejection under
 * {@code --persist accepted}) at the next flush. What a judge holds when its node dies was never counted; the
 * tracker has those episodes redone elsewhere.
 */
public final class Judge extends AbstractBehavior<Judge.Command> {
  public sealed interface Command {}

  /**
   * One finished episode, episode {@code episode} of agent number {@code agent}. {@code groupSize} > 1: the episode
   * is one of that many rollouts of a task (ids equal up to '#'); the judge persists a group's rollouts together,
   * never split between journal events, so a learner reads a task's K rollouts next to each other.
   */
  public record Evaluate(Task task, Trajectory draft, Map<String, String> world, boolean budgetExceeded, String problem,
                         String runId, Agent.PersistMode persist, ActorRef<RunTracker.Command> tracker, boolean perTask, int groupSize,
                         int agent, int episode)
      implements Command, LocalOnly {}

  /** A judged episode on its way to durability: the trajectory (null if not kept), its outcome, and whom to tell. */
  private record Judged(Trajectory trajectory, EpisodeOutcome outcome, String runId, ActorRef<RunTracker.Command> tracker) {}

  /** Rollouts of a group waiting for the rest of it, and since when. */
  private record Held(List<Judged> members, long sinceNanos) {}

  /** A group still incomplete after this long (its agent stopped) is persisted as it is. */
  static final Duration GROUP_TIMEOUT = Duration.ofSeconds(60);

  private record Acked(int tag, long batchId, int persisted, Throwable failure) implements Command, LocalOnly {}

  private enum Flush implements Command, LocalOnly { INSTANCE }

  /** Time to send tag {@code tag}'s batch {@code batchId} again. */
  private record Resend(int tag, long batchId) implements Command, LocalOnly {}

  /** The pause before a failed batch is sent again: doubling from the first to the last (the journal may be gone for a while). */
  static final Duration RESEND_FIRST = Duration.ofMillis(250), RESEND_MAX = Duration.ofSeconds(4);

  /** The ack timeout of a batch sent again. */
  static final Duration RETRY_ACK_TIMEOUT = Duration.ofSeconds(2);

  /** A batch sent to its collector, not yet confirmed; {@code sentNanos} times the journal write. */
  private record Pending(long batchId, List<Judged> entries, long sentNanos) {}

  /** Judge number {@code index} of its node ({@code k2.judge.count} of them share the node's agents). */
  public static Behavior<Command> create(int index) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new Judge(ctx, timers, index)));
  }

  private final TimerScheduler<Command> timers;
  /** Failed deliveries in a row of each tag's batch in flight. */
  private final int[] failures;
  private final NodeServices services;
  private final NodeServices.Settings settings;
  private final List<List<Judged>> buffers = new ArrayList<>();
  /** Durable outcomes not yet sent to their runs' trackers. */
  private final List<Judged> durable = new ArrayList<>();
  private final Pending[] inFlight;
  private long nextBatchId = 1;

  private final int index;

  private Judge(ActorContext<Command> ctx, TimerScheduler<Command> timers, int index) {
    super(ctx);
    this.index = index;
    this.services = NodeServices.get(ctx.getSystem());
    this.settings = services.settings();
    this.inFlight = new Pending[settings.tags()];
    this.timers = timers;
    this.failures = new int[settings.tags()];
    for (int i = 0; i < settings.tags(); i++) buffers.add(new ArrayList<>());
    timers.startTimerWithFixedDelay(Flush.INSTANCE, settings.flushInterval());
    var metrics = dev.k2pekko.metrics.Metrics.get(ctx.getSystem());
    String help = "episodes this node's judge scored, by verdict";
    this.accepted = metrics.counter("k2_episodes", help, "outcome", "accepted");
    this.rejected = metrics.counter("k2_episodes", help, "outcome", "rejected");
    this.metrics = metrics;
    this.backlog = metrics.gauge("k2_collector_backlog", "judged trajectories waiting for a collector to make them durable "
        + "(buffered per tag, in flight, or held for their rollout group; all the node's judges): the backpressure between judges and journal");
    this.roundTrip = metrics.timer("k2_judge_batch_ack", "from a batch sent to its collector to the collector's confirmation "
        + "that the journal holds it (the journal write seen from the judge, retries included)");
  }

  private final dev.k2pekko.metrics.Metrics metrics;
  private final dev.k2pekko.metrics.Meter.Counter accepted, rejected;
  private final dev.k2pekko.metrics.Meter.Gauge backlog;
  private final dev.k2pekko.metrics.Meter.Timer roundTrip;
  private final Map<String, dev.k2pekko.metrics.Meter.Counter> rejections = new HashMap<>();

  private void countVerdict(boolean ok, java.util.Set<String> kinds) {
    (ok ? accepted : rejected).increment();
    for (var k : kinds) {
      rejections.computeIfAbsent(k, x -> metrics.counter("k2_rejections", "rejected episodes by reason (an episode can have several)",
          "reason", x)).increment();
    }
  }

  private void updateBacklog() {
    long n = 0;
    for (var b : buffers) n += b.size();
    for (var p : inFlight) if (p != null) n += p.entries().size();
    for (var h : held.values()) n += h.members().size();
    services.backlog(index, n);
    backlog.set(services.backlog());
  }

  @Override public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Evaluate.class, this::onEvaluate)
        .onMessage(Acked.class, this::onAcked)
        .onMessageEquals(Flush.INSTANCE, this::onFlush)
        .onMessage(Resend.class, this::onResend)
        .build();
  }

  private Behavior<Command> onEvaluate(Evaluate e) {
    services.judged(); // first: a verdict that throws still leaves the mailbox
    var verdict = services.rubric().judge(e.task(), e.draft().steps(), e.draft().finalAnswer(), e.world(), e.budgetExceeded());
    if (e.problem() != null) {
      var reasons = new ArrayList<>(verdict.reasons());
      reasons.addFirst(e.problem());
      verdict = new dev.k2pekko.protocol.Verdict(false, verdict.verifiableScore(), verdict.rubricScore(), List.copyOf(reasons));
    }
    var d = e.draft();
    var t = d.withVerdict(verdict);
    for (var listener : services.judgedListeners()) listener.tell(t);
    int errors = 0;
    var refused = new ArrayList<ToolError>();
    for (var x : d.steps()) {
      if (x.error() == null) continue;
      errors++;
      // the firewall's refusals, counted by kind in the run summary (the call never reached the tool)
      var kind = refusalOf(x.error());
      if (kind != null) refused.add(kind);
    }
    var kinds = new java.util.TreeSet<String>();
    if (!verdict.accepted()) for (var r : verdict.reasons()) kinds.add(JudgeRubric.kind(r));
    countVerdict(verdict.accepted(), kinds);
    // an open task's synthesis episode is kept by the public checks, its hidden rubric unread (JudgeRubric.keptAsAccepted)
    boolean keep = e.persist() == Agent.PersistMode.ALL || (e.persist() == Agent.PersistMode.ACCEPTED && JudgeRubric.keptAsAccepted(d.category(), verdict));
    var outcome = new EpisodeOutcome(e.agent(), e.episode(), services.nodeKey(), d.steps().size(), errors, verdict.accepted(),
        d.difficulty(), d.category(), List.copyOf(kinds), e.perTask() ? d.taskId() : null, keep, fingerprint(t), List.copyOf(refused));
    var judged = new Judged(keep ? t : null, outcome, e.runId(), e.tracker());
    if (!keep) {
      durable.add(judged);
    } else if (e.groupSize() > 1) {
      String group = TrajectoryCollector.groupOf(t.trajectoryId());
      var h = held.computeIfAbsent(group, g -> new Held(new ArrayList<>(e.groupSize()), System.nanoTime()));
      h.members().add(judged);
      if (h.members().size() >= e.groupSize()) {
        held.remove(group);
        append(h.members());
      }
    } else {
      append(List.of(judged));
    }
    updateBacklog();
    return this;
  }

  private final Map<String, Held> held = new java.util.LinkedHashMap<>();

  /** Appends trajectories of one tag to its buffer (a batch may run over the batch size by a group's rest). */
  private void append(List<Judged> js) {
    int tag = TrajectoryCollector.tagIndex(js.getFirst().trajectory().trajectoryId(), settings.tags());
    var buf = buffers.get(tag);
    buf.addAll(js);
    if (buf.size() >= settings.batchSize()) send(tag);
  }

  /** Sends the tag's buffer as one batch, unless the tag's previous batch is still unacknowledged. */
  private void send(int tag) {
    if (inFlight[tag] != null || buffers.get(tag).isEmpty()) return;
    var batch = buffers.get(tag);
    buffers.set(tag, new ArrayList<>());
    var p = new Pending(nextBatchId++, batch, System.nanoTime());
    inFlight[tag] = p;
    deliver(tag, p);
  }

  private void deliver(int tag, Pending p) {
    var collector = Integer.toString(tag % settings.collectors());
    var ref = ClusterSharding.get(getContext().getSystem()).entityRefFor(TrajectoryCollector.KEY, collector);
    var trajectories = new ArrayList<Trajectory>(p.entries().size());
    for (var j : p.entries()) trajectories.add(j.trajectory());
    getContext().<TrajectoryCollector.Command, StatusReply<TrajectoryCollector.BatchRecorded>>ask(
        (Class<StatusReply<TrajectoryCollector.BatchRecorded>>) (Class<?>) StatusReply.class, ref,
        // a batch sent again (its collector failed or did not answer: the journal may be away) waits less, so that a
        // journal back from an outage is noticed within seconds; a slow write answered twice is skipped the second time
        failures[tag] > 0 && settings.ackTimeout().compareTo(RETRY_ACK_TIMEOUT) > 0 ? RETRY_ACK_TIMEOUT : settings.ackTimeout(),
        replyTo -> new TrajectoryCollector.RecordBatch(p.batchId(), trajectories, replyTo),
        (reply, failure) -> {
          if (reply != null && reply.isSuccess()) return new Acked(tag, p.batchId(), reply.getValue().recorded(), null);
          return new Acked(tag, p.batchId(), 0, failure != null ? failure : reply.getError());
        });
  }

  private Behavior<Command> onAcked(Acked a) {
    var p = inFlight[a.tag()];
    if (p == null || p.batchId() != a.batchId()) return this;
    if (a.failure() != null) {
      // back off: a collector whose journal is gone fails at once, and sending again at once would spin
      long pause = Math.min(RESEND_MAX.toMillis(), RESEND_FIRST.toMillis() << Math.min(failures[a.tag()]++, 10));
      getContext().getLog().warn("collector {} did not record batch {} ({} trajectories of {}{}): {}; sending it again in {} ms",
          a.tag() % settings.collectors(), a.batchId(), p.entries().size(), TrajectoryCollector.TAG_PREFIX, a.tag(),
          a.failure().toString(), pause);
      timers.startSingleTimer(new Resend(a.tag(), a.batchId()), Duration.ofMillis(pause));
      return this;
    }
    failures[a.tag()] = 0;
    // In the journal now (the collector skipped the ids it already held: those were in it before). Every
    // trajectory of the batch is durable, so its outcome goes to the tracker; a redone episode counts once there.
    report(p.entries());
    roundTrip.recordNanos(System.nanoTime() - p.sentNanos());
    inFlight[a.tag()] = null;
    send(a.tag());
    updateBacklog();
    return this;
  }

  private Behavior<Command> onResend(Resend r) {
    var p = inFlight[r.tag()];
    if (p != null && p.batchId() == r.batchId()) deliver(r.tag(), p);
    return this;
  }

  /** Tells each run's tracker the outcomes of its episodes, one message per run. */
  private static void report(List<Judged> entries) {
    if (entries.isEmpty()) return;
    var byRun = new java.util.LinkedHashMap<String, List<EpisodeOutcome>>();
    var trackers = new HashMap<String, ActorRef<RunTracker.Command>>();
    for (var j : entries) {
      if (j.tracker() == null) continue;
      byRun.computeIfAbsent(j.runId(), k -> new ArrayList<>()).add(j.outcome());
      trackers.putIfAbsent(j.runId(), j.tracker());
    }
    byRun.forEach((run, outcomes) -> trackers.get(run).tell(new RunTracker.EpisodesJudged(run, outcomes)));
  }

  /** Batches whose runs were told that the journal is gone (told once each). */
  private final java.util.Set<Long> givenUp = new java.util.HashSet<>();

  /** Tells the runs of each batch unconfirmed for longer than the give-up time that the journal is gone. */
  private void giveUpOnStuckBatches(long now) {
    for (var p : inFlight) {
      if (p == null || now - p.sentNanos() < settings.journalGiveUp().toNanos() || !givenUp.add(p.batchId())) continue;
      var trackers = new java.util.LinkedHashMap<String, ActorRef<RunTracker.Command>>();
      for (var j : p.entries()) if (j.tracker() != null) trackers.putIfAbsent(j.runId(), j.tracker());
      long waited = Duration.ofNanos(now - p.sentNanos()).toSeconds();
      getContext().getLog().error("batch {} ({} trajectories) has not been confirmed by the journal for {} s (k2.journal.give-up-after): "
          + "ending its runs {}", p.batchId(), p.entries().size(), waited, trackers.keySet());
      trackers.forEach((run, tracker) -> tracker.tell(new RunTracker.JournalGone(run, waited)));
    }
  }

  private Behavior<Command> onFlush() {
    long now = System.nanoTime();
    giveUpOnStuckBatches(now);
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
    report(durable);
    durable.clear();
    updateBacklog();
    return this;
  }

  /**
   * A 64-bit FNV-1a hash of what a trajectory is, without its run id: the id after the run, the task, every call
   * (tool, arguments, result, error), the answer and the verdict. Two runs of one seed have equal fingerprints.
   */
  static long fingerprint(Trajectory t) {
    var b = new StringBuilder(256);
    String id = t.trajectoryId();
    b.append(id.substring(id.indexOf('/') + 1)).append('\u0001').append(t.taskId()).append('\u0001').append(t.policy());
    for (var s : t.steps()) {
      b.append('\u0002').append(s.tool()).append('\u0001').append(s.arguments()).append('\u0001').append(s.result())
          .append('\u0001').append(s.error()).append('\u0001').append(s.partial());
    }
    b.append('\u0003').append(t.finalAnswer()).append('\u0001').append(t.verdict().accepted()).append('\u0001').append(t.verdict().reasons());
    long h = 0xcbf29ce484222325L;
    for (int i = 0; i < b.length(); i++) {
      h ^= b.charAt(i);
      h *= 0x100000001b3L;
    }
    return h;
  }

  /** The firewall's refusal a step's error names, or null (another error, or none). */
  static ToolError refusalOf(String error) {
    for (var k : ToolError.values()) if (k.refusal() && k.name().equals(error)) return k;
    return null;
  }
}
