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
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
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
 * The firewall's audit trail: one per tool node, it buffers the node's refused calls and has its {@link Writer}
 * write them to the journal as {@link CallsRefused} events tagged {@value #TAG} ({@code k2 replay --refusals} reads
 * them back). Refusals arrive from the tool workers one by one and are written in batches (up to {@value #BATCH}, or
 * what 200 ms gathered), one batch in flight at a time, so a runaway policy cannot turn the journal into its
 * bottleneck. The buffer is this actor's, not the writer's: an event-sourced actor stashes the commands that arrive
 * while it persists, and at 1.5 million tool calls a second its stash overflowed and dropped refusals. A batch the
 * journal did not confirm is sent again with backoff; past {@value #MAX_BUFFERED} buffered refusals (the journal is
 * gone) the newest are counted as unaudited and logged, never silently lost. The node's shutdown flushes the buffer.
 */
public final class FirewallAudit extends AbstractBehavior<FirewallAudit.Command> {
  public static final String TAG = "firewall-refusals";
  static final int BATCH = 4096;
  static final int MAX_BUFFERED = 200_000;
  private static final Duration GATHER = Duration.ofMillis(200), WRITE_TIMEOUT = Duration.ofSeconds(10), RETRY_MAX = Duration.ofSeconds(4);

  public sealed interface Command {}

  public record Record(CallsRefused.Refusal refusal) implements Command, LocalOnly {}

  /** Writes what is buffered; replies once the journal holds it (or the journal failed the last try). */
  public record Flush(ActorRef<Done> replyTo) implements Command, LocalOnly {}

  private enum Tick implements Command, LocalOnly { INSTANCE }

  private record Written(long batch, Throwable failure) implements Command, LocalOnly {}

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
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new FirewallAudit(ctx, timers, node)));
  }

  private final TimerScheduler<Command> timers;
  private final String node;
  private final ActorRef<Writer.Write> writer;
  private ArrayList<CallsRefused.Refusal> buffer = new ArrayList<>();
  /** The batch the writer has, not yet confirmed (null: none; immutable), its number and failed tries. */
  private List<CallsRefused.Refusal> inFlight;
  private long batchNumber;
  private int failures;
  private long unaudited;
  private final List<ActorRef<Done>> flushes = new ArrayList<>();

  private FirewallAudit(ActorContext<Command> ctx, TimerScheduler<Command> timers, String node) {
    super(ctx);
    this.timers = timers;
    this.node = node;
    this.writer = ctx.spawn(Behaviors.supervise(Writer.create(node)).onFailure(
        SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(5), 0.2)), "writer");
  }

  @Override public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Record.class, this::onRecord)
        .onMessageEquals(Tick.INSTANCE, this::onTick)
        .onMessage(Written.class, this::onWritten)
        .onMessage(Flush.class, this::onFlush)
        .build();
  }

  private Behavior<Command> onRecord(Record r) {
    if (buffer.size() >= MAX_BUFFERED) {
      if (unaudited++ % 10_000 == 0) {
        getContext().getLog().error("the journal has not taken the firewall's refusals fast enough: {} buffered, {} refusals not audited so far "
            + "(the run summary still counts them)", buffer.size(), unaudited);
      }
      return this;
    }
    buffer.add(r.refusal());
    if (inFlight == null && buffer.size() >= BATCH) send();
    else if (!timers.isTimerActive(Tick.INSTANCE)) timers.startSingleTimer(Tick.INSTANCE, GATHER);
    return this;
  }

  private Behavior<Command> onTick() {
    if (inFlight == null) send();
    else if (failures > 0) deliver(); // the pause after a failed write is over
    return this;
  }

  private void send() {
    if (buffer.isEmpty()) {
      answerFlushes();
      return;
    }
    if (buffer.size() <= BATCH) {
      inFlight = List.copyOf(buffer);
      buffer = new ArrayList<>();
    } else {
      inFlight = List.copyOf(buffer.subList(0, BATCH));
      buffer = new ArrayList<>(buffer.subList(BATCH, buffer.size()));
    }
    batchNumber++;
    deliver();
  }

  private void deliver() {
    long batch = batchNumber;
    var event = new CallsRefused(inFlight, node); // immutable: a retry sends the same list again
    getContext().ask(Done.class, writer, WRITE_TIMEOUT, replyTo -> new Writer.Write(event, replyTo),
        (done, failure) -> new Written(batch, failure));
  }

  private Behavior<Command> onWritten(Written w) {
    if (inFlight == null || w.batch() != batchNumber) return this;
    if (w.failure() != null) {
      long pause = Math.min(RETRY_MAX.toMillis(), 250L << Math.min(failures++, 10));
      getContext().getLog().warn("the journal did not take {} firewall refusals ({}); trying again in {} ms", inFlight.size(), w.failure().toString(), pause);
      if (!flushes.isEmpty()) answerFlushes(); // a shutdown waits for no journal that is gone
      timers.startSingleTimer(Tick.INSTANCE, Duration.ofMillis(pause));
      return this;
    }
    failures = 0;
    inFlight = null;
    if (buffer.size() >= BATCH || !flushes.isEmpty()) send();
    else if (!buffer.isEmpty() && !timers.isTimerActive(Tick.INSTANCE)) timers.startSingleTimer(Tick.INSTANCE, GATHER);
    return this;
  }

  private Behavior<Command> onFlush(Flush f) {
    flushes.add(f.replyTo());
    if (inFlight == null) send();
    return this;
  }

  private void answerFlushes() {
    for (var f : flushes) f.tell(Done.getInstance());
    flushes.clear();
  }

  /** Every refusal in the journal, oldest event first. */
  public static Source<CallsRefused.Refusal, NotUsed> replay(ActorSystem<?> system) {
    var journal = PersistenceQuery.get(Adapter.toClassic(system)).getReadJournalFor(JdbcReadJournal.class, JdbcReadJournal.Identifier());
    return journal.currentEventsByTag(TAG, Offset.noOffset())
        .mapConcat(env -> env.event() instanceof CallsRefused e ? e.refusals() : List.<CallsRefused.Refusal>of());
  }

  /**
   * Writes the batches its {@link FirewallAudit} hands it, one at a time, and confirms each. Each node incarnation
   * writes under a fresh persistence id, so starting one replays nothing.
   */
  static final class Writer extends EventSourcedBehavior<Writer.Write, JournalEvent, Writer.State> {
    record Write(CallsRefused event, ActorRef<Done> replyTo) implements LocalOnly {}

    /** How many refusals this incarnation wrote. */
    record State(long written) {}

    static Behavior<Write> create(String node) {
      return new Writer(node);
    }

    private Writer(String node) {
      super(PersistenceId.of("firewall-audit", node + "-" + UUID.randomUUID()));
    }

    @Override public State emptyState() { return new State(0); }

    @Override public Set<String> tagsFor(JournalEvent event) { return Set.of(TAG); }

    @Override public CommandHandler<Write, JournalEvent, State> commandHandler() {
      return newCommandHandlerBuilder().forAnyState()
          .onAnyCommand((state, w) -> Effect().persist(w.event()).thenRun(s -> w.replyTo().tell(Done.getInstance())));
    }

    @Override public EventHandler<State, JournalEvent> eventHandler() {
      return newEventHandlerBuilder().forAnyState()
          .onEvent(CallsRefused.class, (state, e) -> new State(state.written() + e.refusals().size()))
          .build();
    }
  }
}
