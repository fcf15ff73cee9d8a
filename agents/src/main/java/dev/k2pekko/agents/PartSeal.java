package dev.k2pekko.agents;

import dev.k2pekko.protocol.JournalEvent;
import dev.k2pekko.protocol.PartSealed;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;

/**
 * Writes one {@link PartSealed} event, tagged with every trajectory tag ({@code trajectories-0 .. tags-1}), under the
 * persistence id {@code part-seal|PART}. Sealing a part again (a resumed run) appends another event; readers take the
 * first and ignore the rest.
 */
public final class PartSeal extends EventSourcedBehavior<PartSeal.Command, JournalEvent, PartSeal.State> {
  public sealed interface Command {}

  public record Seal(long ordinal, ActorRef<Done> replyTo) implements Command, LocalOnly {}

  /** How many seals of this part the journal holds. */
  public record State(long seals) {}

  /** Seals {@code part} and waits until the journal holds the seal. */
  public static void seal(ActorSystem<?> system, String part, long ordinal, Duration timeout) throws Exception {
    int tags = NodeServices.get(system).settings().tags();
    var ref = system.systemActorOf(new PartSeal(part, tags), "part-seal-" + java.util.UUID.randomUUID(), Props.empty());
    // the actor stops once it has written the seal; one that fails to write stops with its failure (no restart)
    AskPattern.<Command, Done>ask(ref, r -> new Seal(ordinal, r), timeout, system.scheduler())
        .toCompletableFuture().get(timeout.toMillis() + 1000, TimeUnit.MILLISECONDS);
  }

  private final String part;
  private final Set<String> allTags;

  PartSeal(String part, int tags) {
    super(PersistenceId.of("part-seal", part));
    this.part = part;
    var t = new HashSet<String>();
    for (int i = 0; i < tags; i++) t.add(TrajectoryCollector.TAG_PREFIX + i);
    this.allTags = Set.copyOf(t);
  }

  @Override public State emptyState() { return new State(0); }

  @Override public CommandHandler<Command, JournalEvent, State> commandHandler() {
    return newCommandHandlerBuilder().forAnyState()
        .onCommand(Seal.class, (state, s) -> Effect().persist(new PartSealed(part, s.ordinal(), System.currentTimeMillis()))
            .thenRun(st -> s.replyTo().tell(Done.getInstance())).thenStop())
        .build();
  }

  @Override public EventHandler<State, JournalEvent> eventHandler() {
    return newEventHandlerBuilder().forAnyState()
        .onEvent(PartSealed.class, (state, e) -> new State(state.seals() + 1))
        .build();
  }

  @Override public Set<String> tagsFor(JournalEvent event) {
    return event instanceof PartSealed ? allTags : Set.of();
  }
}
