package dev.k2pekko.agents;

import dev.k2pekko.protocol.EpisodeOutcome;
import dev.k2pekko.protocol.RunEvent;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;

/**
 * The durable record of one run ({@code run|<runId>} in the journal): its plan and every episode whose outcome is
 * durable. The run's tracker writes it; a resumed run, and anyone who asks, reads the counts from it. Recording an
 * episode that is already recorded does nothing, so a redone episode counts once.
 */
public final class RunRecord extends EventSourcedBehavior<RunRecord.Command, RunEvent, RunRecord.State> {
  public sealed interface Command {}

  /** Records the plan, unless one is recorded already. */
  public record Plan(RunEvent.RunPlanned planned) implements Command, LocalOnly {}

  /** Records these outcomes (those not recorded yet); replies once they are in the journal. */
  public record Record(List<EpisodeOutcome> outcomes, ActorRef<Recorded> replyTo) implements Command, LocalOnly {}

  public record Recorded(List<EpisodeOutcome> outcomes) implements LocalOnly {}

  public record Get(ActorRef<Snapshot> replyTo) implements Command, LocalOnly {}

  private record ReadAndStop(ActorRef<Snapshot> replyTo) implements Command, LocalOnly {}

  /** What the record holds: the plan (null if none), the keys of the episodes done, and the counts over them. */
  public record Snapshot(RunEvent.RunPlanned planned, Set<Long> done, Map<String, Long> counters) implements LocalOnly {
    public long get(String key) { return counters.getOrDefault(key, 0L); }
  }

  /** An episode's key: agent number and episode index. */
  public static long key(int agent, int episode) { return ((long) agent << 32) | (episode & 0xFFFFFFFFL); }

  /** Mutable, so the empty state is never written to (why: {@link TrajectoryCollector#emptyState}). */
  public static final class State {
    RunEvent.RunPlanned planned;
    final Set<Long> done = new HashSet<>();
    final RunStats stats = new RunStats();
    private final boolean empty;

    State(boolean empty) { this.empty = empty; }

    /** The state to apply an event to: a new one instead of the empty state. */
    State writable() { return empty ? new State(false) : this; }

    Snapshot snapshot() { return new Snapshot(planned, Set.copyOf(done), stats.view()); }
  }

  public static Behavior<Command> create(String runId) {
    return new RunRecord(runId);
  }

  /** The record of a run as the journal holds it (a reader started for the purpose; it stops once it replied). */
  public static CompletableFuture<Snapshot> read(ActorSystem<?> system, String runId, Duration timeout) {
    var reader = system.systemActorOf(create(runId), "run-record-reader-" + java.util.UUID.randomUUID(), Props.empty());
    return AskPattern.<Command, Snapshot>ask(reader, ReadAndStop::new, timeout, system.scheduler()).toCompletableFuture();
  }

  private RunRecord(String runId) {
    super(PersistenceId.of("run", runId), SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(2), 0.2));
  }

  /** Never mutated: a restart after a failed write starts from this object again (see {@link TrajectoryCollector#emptyState}). */
  @Override public State emptyState() { return new State(true); }

  @Override public CommandHandler<Command, RunEvent, State> commandHandler() {
    return newCommandHandlerBuilder().forAnyState()
        .onCommand(Plan.class, (state, cmd) -> state.planned != null ? Effect().none() : Effect().persist(cmd.planned()))
        .onCommand(Record.class, (state, cmd) -> {
          var fresh = new ArrayList<EpisodeOutcome>(cmd.outcomes().size());
          var seen = new HashSet<Long>();
          for (var o : cmd.outcomes()) {
            long k = key(o.agent(), o.episode());
            if (!state.done.contains(k) && seen.add(k)) fresh.add(o);
          }
          if (fresh.isEmpty()) return Effect().reply(cmd.replyTo(), new Recorded(cmd.outcomes()));
          return Effect().persist(new RunEvent.EpisodesDone(fresh)).thenReply(cmd.replyTo(), s -> new Recorded(cmd.outcomes()));
        })
        .onCommand(Get.class, (state, cmd) -> Effect().reply(cmd.replyTo(), state.snapshot()))
        .onCommand(ReadAndStop.class, (state, cmd) -> Effect().stop().thenReply(cmd.replyTo(), State::snapshot))
        .build();
  }

  @Override public EventHandler<State, RunEvent> eventHandler() {
    return newEventHandlerBuilder().forAnyState()
        .onEvent(RunEvent.RunPlanned.class, (state, e) -> {
          var s = state.writable();
          s.planned = e;
          return s;
        })
        .onEvent(RunEvent.EpisodesDone.class, (state, e) -> {
          var s = state.writable();
          for (var o : e.outcomes()) if (s.done.add(key(o.agent(), o.episode()))) s.stats.count(o);
          return s;
        })
        .build();
  }
}
