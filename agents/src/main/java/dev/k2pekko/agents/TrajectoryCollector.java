package dev.k2pekko.agents;

import dev.k2pekko.protocol.KryoWire;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.TrajectoryRecorded;
import java.time.Duration;
import java.util.ArrayList;
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
 * Persists judged trajectories: an event-sourced Cluster Sharding entity ({@code collector|0..n-1}) writing
 * {@link TrajectoryRecorded} events to the JDBC journal, one atomic write per batch, each event tagged with one of
 * {@code trajectories-0 .. trajectories-(tags-1)} so that readers can consume the tags in parallel. It remembers
 * the ids of its latest {@code dedupWindow} trajectories and skips them when a batch is delivered again.
 * Events are never deleted (pekko-persistence-jdbc 1.1.x loses events after a gap in sequence numbers, #516).
 */
public final class TrajectoryCollector
    extends EventSourcedBehavior<TrajectoryCollector.Command, TrajectoryRecorded, TrajectoryCollector.State> {
  public static final EntityTypeKey<Command> KEY = EntityTypeKey.create(Command.class, "trajectory-collector");
  public static final String TAG_PREFIX = "trajectories-";

  public sealed interface Command {}

  public record RecordBatch(long batchId, List<Trajectory> trajectories, ActorRef<StatusReply<BatchRecorded>> replyTo)
      implements Command, KryoWire {}

  public record BatchRecorded(long batchId, int recorded, int duplicates) implements KryoWire {}

  /** Ids of the latest trajectories, oldest first, and how many events this collector holds. */
  public static final class State {
    final LinkedHashSet<String> recent = new LinkedHashSet<>();
    long recorded;

    public long recorded() { return recorded; }
  }

  public static void init(ActorSystem<?> system) {
    var settings = NodeServices.get(system).settings();
    ClusterSharding.get(system).init(Entity.of(KEY, ctx -> create(ctx.getEntityId(), settings))
        .withRole("agent"));
  }

  public static Behavior<Command> create(String id, NodeServices.Settings settings) {
    return new TrajectoryCollector(id, settings.tags(), settings.dedupWindow());
  }

  private final String id;
  private final int tags;
  private final int dedupWindow;

  public TrajectoryCollector(String id, int tags, int dedupWindow) {
    super(PersistenceId.of("collector", id),
        SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(5), 0.2));
    this.id = id;
    this.tags = tags;
    this.dedupWindow = dedupWindow;
  }

  public static String tagFor(String trajectoryId, int tags) {
    return TAG_PREFIX + Math.floorMod(trajectoryId.hashCode(), tags);
  }

  @Override public State emptyState() { return new State(); }

  @Override public CommandHandler<Command, TrajectoryRecorded, State> commandHandler() {
    return newCommandHandlerBuilder().forAnyState()
        .onCommand(RecordBatch.class, (state, cmd) -> {
          var events = new ArrayList<TrajectoryRecorded>(cmd.trajectories().size());
          var seen = new java.util.HashSet<String>();
          long now = System.currentTimeMillis();
          for (var t : cmd.trajectories()) {
            if (!state.recent.contains(t.trajectoryId()) && seen.add(t.trajectoryId())) {
              events.add(new TrajectoryRecorded(t, "collector|" + id, now));
            }
          }
          int duplicates = cmd.trajectories().size() - events.size();
          var reply = new BatchRecorded(cmd.batchId(), events.size(), duplicates);
          if (events.isEmpty()) return Effect().reply(cmd.replyTo(), StatusReply.success(reply));
          return Effect().persist(events).thenReply(cmd.replyTo(), s -> StatusReply.success(reply));
        })
        .build();
  }

  @Override public EventHandler<State, TrajectoryRecorded> eventHandler() {
    return newEventHandlerBuilder().forAnyState()
        .onEvent(TrajectoryRecorded.class, (state, e) -> {
          state.recent.add(e.trajectory().trajectoryId());
          state.recorded++;
          if (state.recent.size() > dedupWindow) {
            Iterator<String> it = state.recent.iterator();
            it.next();
            it.remove();
          }
          return state;
        })
        .build();
  }

  @Override public Set<String> tagsFor(TrajectoryRecorded event) {
    return Set.of(tagFor(event.trajectory().trajectoryId(), tags));
  }
}
