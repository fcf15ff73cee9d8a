package dev.k2pekko.agents;

import dev.k2pekko.protocol.JournalEvent;
import dev.k2pekko.protocol.KryoWire;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.TrajectoriesRecorded;
import dev.k2pekko.protocol.TrajectoryRecorded;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.pattern.StatusReply;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;

/**
 * Persists judged trajectories: an event-sourced Cluster Sharding entity ({@code collector|0..n-1}) writing one
 * {@link TrajectoriesRecorded} event per batch and tag to the JDBC journal, tagged with one of
 * {@code trajectories-0 .. trajectories-(tags-1)} so that readers can consume the tags in parallel. It also
 * recovers from the one-trajectory {@link TrajectoryRecorded} events of older journals. It remembers
 * the ids of its latest {@code dedupWindow} trajectories and skips them when a batch is delivered again.
 * Events are never deleted (pekko-persistence-jdbc 1.1.x loses events after a gap in sequence numbers, #516).
 */
public final class TrajectoryCollector
    extends EventSourcedBehavior<TrajectoryCollector.Command, JournalEvent, TrajectoryCollector.State> {
  public static final EntityTypeKey<Command> KEY = EntityTypeKey.create(Command.class, "trajectory-collector");
  public static final String TAG_PREFIX = "trajectories-";

  public sealed interface Command {}

  public record RecordBatch(long batchId, List<Trajectory> trajectories, ActorRef<StatusReply<BatchRecorded>> replyTo)
      implements Command, KryoWire {}

  public record BatchRecorded(long batchId, int recorded, int duplicates) implements KryoWire {}

  /**
   * Ids of the latest trajectories, oldest first, and how many events this collector holds. Mutable, so the empty
   * state is never written to (see {@link #emptyState}).
   */
  public static final class State {
    final LinkedHashSet<String> recent = new LinkedHashSet<>();
    long recorded;
    private final boolean empty;

    State(boolean empty) { this.empty = empty; }

    /** The state to apply an event to: a new one instead of the empty state. */
    State writable() { return empty ? new State(false) : this; }

    public long recorded() { return recorded; }
  }

  public static void init(ActorSystem<?> system) {
    var settings = NodeServices.get(system).settings();
    var metrics = dev.k2pekko.metrics.Metrics.get(system);
    ClusterSharding.get(system).init(Entity.of(KEY, ctx -> new TrajectoryCollector(ctx.getEntityId(), settings.tags(), settings.dedupWindow(), metrics))
        .withRole("agent"));
  }

  public static Behavior<Command> create(String id, NodeServices.Settings settings) {
    return new TrajectoryCollector(id, settings.tags(), settings.dedupWindow());
  }

  private final String id;
  private final int tags;
  private final int dedupWindow;

  private final dev.k2pekko.metrics.Meter.Timer writes;

  public TrajectoryCollector(String id, int tags, int dedupWindow) {
    this(id, tags, dedupWindow, new dev.k2pekko.metrics.Metrics());
  }

  /** Counts its journal writes into {@code metrics}. */
  public TrajectoryCollector(String id, int tags, int dedupWindow, dev.k2pekko.metrics.Metrics metrics) {
    super(PersistenceId.of("collector", id),
        // at most 2 s between tries: a journal back from an outage is written to within about that (a try is one query)
        SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(2), 0.2));
    this.id = id;
    this.tags = tags;
    this.dedupWindow = dedupWindow;
    this.writes = metrics.timer("k2_journal_write", "a collector's journal write: from persist to the journal's confirmation (one event per tag of a batch)");
  }

  /** The tag of a trajectory: a hash of its id up to '#', so the K rollouts of one task share a tag. */
  public static int tagIndex(String trajectoryId, int tags) {
    return Math.floorMod(groupOf(trajectoryId).hashCode(), tags);
  }

  /** The task group of a trajectory: its id up to '#' (the K rollouts or n trials of one task share it, and a tag). */
  public static String groupOf(String trajectoryId) {
    int hash = trajectoryId.indexOf('#');
    return hash < 0 ? trajectoryId : trajectoryId.substring(0, hash);
  }

  public static String tagFor(String trajectoryId, int tags) {
    return TAG_PREFIX + tagIndex(trajectoryId, tags);
  }

  /**
   * Pekko's Java DSL asks for the empty state once and starts every restart (after a failed journal write, with
   * backoff) from that same object; events are applied to the state before the journal confirms them. A mutated
   * empty state would so keep the ids of a write that failed, and the judge's retry of that batch would be skipped
   * as a duplicate and acknowledged though it never reached the journal (seen: 295 accepted trajectories lost over
   * a 20 s database outage). So the empty state is never mutated: the first event goes to a new one.
   */
  @Override public State emptyState() { return new State(true); }

  @Override public CommandHandler<Command, JournalEvent, State> commandHandler() {
    return newCommandHandlerBuilder().forAnyState()
        .onCommand(RecordBatch.class, (state, cmd) -> {
          // New trajectories only, grouped by tag: one event per tag (a judge's batch is all of one tag).
          var byTag = new LinkedHashMap<Integer, List<Trajectory>>();
          var seen = new HashSet<String>();
          int fresh = 0;
          for (var t : cmd.trajectories()) {
            if (!state.recent.contains(t.trajectoryId()) && seen.add(t.trajectoryId())) {
              byTag.computeIfAbsent(tagIndex(t.trajectoryId(), tags), k -> new ArrayList<>()).add(t);
              fresh++;
            }
          }
          var reply = new BatchRecorded(cmd.batchId(), fresh, cmd.trajectories().size() - fresh);
          if (byTag.isEmpty()) return Effect().reply(cmd.replyTo(), StatusReply.success(reply));
          long now = System.currentTimeMillis();
          var events = new ArrayList<JournalEvent>(byTag.size());
          for (var group : byTag.values()) events.add(new TrajectoriesRecorded(group, "collector|" + id, now));
          long started = System.nanoTime();
          return Effect().persist(events)
              .thenRun(s -> writes.recordNanos(System.nanoTime() - started))
              .thenReply(cmd.replyTo(), s -> StatusReply.success(reply));
        })
        .build();
  }

  @Override public EventHandler<State, JournalEvent> eventHandler() {
    return newEventHandlerBuilder().forAnyState()
        .onEvent(TrajectoriesRecorded.class, (state, e) -> {
          var s = state.writable();
          for (var t : e.trajectories()) remember(s, t.trajectoryId());
          return s;
        })
        .onEvent(TrajectoryRecorded.class, (state, e) -> {
          var s = state.writable();
          remember(s, e.trajectory().trajectoryId());
          return s;
        })
        .build();
  }

  private void remember(State state, String trajectoryId) {
    state.recent.add(trajectoryId);
    state.recorded++;
    if (state.recent.size() > dedupWindow) {
      Iterator<String> it = state.recent.iterator();
      it.next();
      it.remove();
    }
  }

  @Override public Set<String> tagsFor(JournalEvent event) {
    return switch (event) {
      case TrajectoriesRecorded e -> Set.of(tagFor(e.trajectories().getFirst().trajectoryId(), tags));
      case TrajectoryRecorded e -> Set.of(tagFor(e.trajectory().trajectoryId(), tags));
      default -> Set.of();
    };
  }
}
