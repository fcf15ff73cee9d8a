package dev.k2pekko.agents;

import dev.k2pekko.protocol.CallsRefused;
import dev.k2pekko.protocol.JournalEvent;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import org.apache.pekko.Done;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.persistence.jdbc.query.javadsl.JdbcReadJournal;
import org.apache.pekko.persistence.query.Offset;
import org.apache.pekko.persistence.query.PersistenceQuery;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;
import org.apache.pekko.stream.javadsl.Source;

/**
 * The firewall's audit trail: one per tool node, it writes the node's refused calls to the journal as
 * {@link CallsRefused} events tagged {@value #TAG} ({@code k2 replay --refusals} reads them back). Refusals arrive
 * from the tool workers one by one and are written in batches (up to 256, or every 200 ms), so a runaway policy
 * cannot turn the journal into its bottleneck. Each node incarnation writes under a fresh persistence id, so
 * starting one replays nothing; the node's shutdown flushes what is buffered. A failed write is retried with
 * backoff (the batch in flight is lost; the run summary still counts its refusals).
 */
public final class FirewallAudit extends EventSourcedBehavior<FirewallAudit.Command, JournalEvent, FirewallAudit.State> {
  public static final String TAG = "firewall-refusals";
  private static final int BATCH = 256;

  public sealed interface Command {}

  public record Record(CallsRefused.Refusal refusal) implements Command, LocalOnly {}

  /** Writes what is buffered; replies when it is in the journal. */
  public record Flush(ActorRef<Done> replyTo) implements Command, LocalOnly {}

  private enum Tick implements Command, LocalOnly { INSTANCE }

  /** How many refusals this incarnation wrote. Immutable: a restart starts from the empty state object again. */
  public record State(long written) {}

  /**
   * The sink for the tool workers: the node's audit actor is spawned at the first refusal (a node that refuses nothing
   * never touches the journal for it), with a shutdown task that flushes it.
   */
  public static java.util.function.Consumer<CallsRefused.Refusal> start(ActorSystem<?> system) {
    var holder = new Object() {
      ActorRef<Command> ref;

      synchronized ActorRef<Command> get() {
        if (ref == null) {
          ref = system.systemActorOf(create(system.address().hostPort()), "firewall-audit", Props.empty());
          var r = ref;
          CoordinatedShutdown.get(Adapter.toClassic(system)).addTask(CoordinatedShutdown.PhaseBeforeServiceUnbind(), "flush-firewall-audit",
              () -> AskPattern.<Command, Done>ask(r, Flush::new, Duration.ofSeconds(5), system.scheduler())
                  .exceptionally(e -> Done.getInstance()));
        }
        return ref;
      }
    };
    return r -> holder.get().tell(new Record(r));
  }

  public static Behavior<Command> create(String node) {
    return Behaviors.withTimers(timers -> new FirewallAudit(node, timers));
  }

  private final String node;
  private final TimerScheduler<Command> timers;
  private final ArrayList<CallsRefused.Refusal> buffer = new ArrayList<>();

  private FirewallAudit(String node, TimerScheduler<Command> timers) {
    super(PersistenceId.of("firewall-audit", node + "-" + UUID.randomUUID()),
        SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(5), 0.2));
    this.node = node;
    this.timers = timers;
  }

  @Override public State emptyState() { return new State(0); }

  @Override public Set<String> tagsFor(JournalEvent event) { return Set.of(TAG); }

  @Override public CommandHandler<Command, JournalEvent, State> commandHandler() {
    return newCommandHandlerBuilder().forAnyState()
        .onCommand(Record.class, (state, r) -> {
          buffer.add(r.refusal());
          if (buffer.size() >= BATCH) return write();
          if (!timers.isTimerActive(Tick.INSTANCE)) timers.startSingleTimer(Tick.INSTANCE, Tick.INSTANCE, Duration.ofMillis(200));
          return Effect().none();
        })
        .onCommand(Tick.class, (state, t) -> write())
        .onCommand(Flush.class, (state, f) -> buffer.isEmpty()
            ? Effect().none().thenRun(s -> f.replyTo().tell(Done.getInstance()))
            : write().thenRun(s -> f.replyTo().tell(Done.getInstance())))
        .build();
  }

  private org.apache.pekko.persistence.typed.javadsl.EffectBuilder<JournalEvent, State> write() {
    timers.cancel(Tick.INSTANCE);
    if (buffer.isEmpty()) return Effect().none();
    var event = new CallsRefused(List.copyOf(buffer), node);
    buffer.clear();
    return Effect().persist(event);
  }

  @Override public EventHandler<State, JournalEvent> eventHandler() {
    return newEventHandlerBuilder().forAnyState()
        .onEvent(CallsRefused.class, (state, e) -> new State(state.written() + e.refusals().size()))
        .build();
  }

  /** Every refusal in the journal, oldest event first. */
  public static Source<CallsRefused.Refusal, NotUsed> replay(ActorSystem<?> system) {
    var journal = PersistenceQuery.get(Adapter.toClassic(system)).getReadJournalFor(JdbcReadJournal.class, JdbcReadJournal.Identifier());
    return journal.currentEventsByTag(TAG, Offset.noOffset())
        .mapConcat(env -> env.event() instanceof CallsRefused e ? e.refusals() : List.<CallsRefused.Refusal>of());
  }
}
