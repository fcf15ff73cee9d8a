package dev.k2pekko.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.ExtensibleBehavior;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.Signal;
import org.apache.pekko.actor.typed.TypedActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * The ceiling a simulation's tool calls/s is compared with, measured in the same JVM: plain request/reply between two
 * sets of actors with nothing but messaging in them. The shape is the simulation's: as many senders as agents, as
 * many responders as the node has tool workers, one request in flight per sender, sender i always asking responder
 * i mod m, on the same dispatcher. A tool call is one such round trip plus the work around it (teacher, firewall,
 * simulator, message adapter, judge), so tool calls/s over round trips/s says what share of the machine's messaging
 * ceiling the simulation reaches, a figure that can be compared across machines where absolute rates cannot.
 */
public final class RequestReplyCeiling implements AutoCloseable {
  /** Round trips in one measurement, over all senders (about a second at the 9–11 M/s of shared/MEASURED.md). */
  static final long ROUND_TRIPS = 10_000_000;

  private final List<ActorRef<Sender.Command>> senders = new ArrayList<>();
  private final List<ActorRef<Responder.Ping>> responders = new ArrayList<>();
  private final int rounds;

  /** Starts {@code senders} senders and {@code responders} responders (names unique within the system). */
  public RequestReplyCeiling(ActorSystem<?> system, int senders, int responders) {
    if (senders < 1 || responders < 1) throw new IllegalArgumentException("at least one sender and one responder");
    this.rounds = (int) Math.max(10, ROUND_TRIPS / senders);
    long id = INSTANCES.incrementAndGet();
    for (int i = 0; i < responders; i++) {
      this.responders.add(system.systemActorOf(Behaviors.setup(ctx -> new Responder()), "ceiling-" + id + "-responder-" + i, Props.empty()));
    }
    for (int i = 0; i < senders; i++) {
      var to = this.responders.get(i % responders);
      this.senders.add(system.systemActorOf(Behaviors.setup(ctx -> new Sender(ctx.getSelf(), to)), "ceiling-" + id + "-sender-" + i, Props.empty()));
    }
  }

  private static final java.util.concurrent.atomic.AtomicLong INSTANCES = new java.util.concurrent.atomic.AtomicLong();

  /** One measurement: every sender does its rounds; round trips per second from the first Go to the last sender done. */
  public double measure() throws Exception {
    var left = new AtomicInteger(senders.size());
    var done = new CompletableFuture<Long>();
    long start = System.nanoTime();
    for (var s : senders) s.tell(new Sender.Go(rounds, left, done));
    long end = done.get(5, TimeUnit.MINUTES);
    return (double) rounds * senders.size() / ((end - start) / 1e9);
  }

  public int senders() { return senders.size(); }

  public int responders() { return responders.size(); }

  @Override public void close() {
    for (var s : senders) s.tell(Sender.Stop.INSTANCE);
    for (var r : responders) r.tell(Responder.Ping.STOP);
  }

  /** Answers every ping with a pong to its sender; nothing else. */
  static final class Responder extends ExtensibleBehavior<Responder.Ping> {
    /** A request; {@code replyTo} null: stop. */
    record Ping(int seq, ActorRef<Sender.Command> replyTo) {
      static final Ping STOP = new Ping(0, null);
    }

    @Override public Behavior<Ping> receive(TypedActorContext<Ping> ctx, Ping p) {
      if (p.replyTo() == null) return Behaviors.stopped();
      p.replyTo().tell(new Sender.Pong(p.seq()));
      return this;
    }

    @Override public Behavior<Ping> receiveSignal(TypedActorContext<Ping> ctx, Signal signal) { return Behaviors.unhandled(); }
  }

  /** Sends its responder one ping at a time, the next when the pong of the last one comes, {@code rounds} times. */
  static final class Sender extends ExtensibleBehavior<Sender.Command> {
    sealed interface Command {}

    /** Do {@code rounds} round trips; then count {@code left} down, and the last sender done completes {@code done} with the time. */
    record Go(int rounds, AtomicInteger left, CompletableFuture<Long> done) implements Command {}

    record Pong(int seq) implements Command {}

    enum Stop implements Command { INSTANCE }

    private final ActorRef<Command> self;
    private final ActorRef<Responder.Ping> responder;
    private Go go;
    private int remaining;

    Sender(ActorRef<Command> self, ActorRef<Responder.Ping> responder) {
      this.self = self;
      this.responder = responder;
    }

    @Override public Behavior<Command> receive(TypedActorContext<Command> ctx, Command msg) {
      switch (msg) {
        case Go g -> {
          go = g;
          remaining = g.rounds();
          responder.tell(new Responder.Ping(remaining, self));
        }
        case Pong p -> {
          if (--remaining > 0) {
            responder.tell(new Responder.Ping(remaining, self));
          } else if (go.left().decrementAndGet() == 0) {
            go.done().complete(System.nanoTime());
          }
        }
        case Stop s -> {
          return Behaviors.stopped();
        }
      }
      return this;
    }

    @Override public Behavior<Command> receiveSignal(TypedActorContext<Command> ctx, Signal signal) { return Behaviors.unhandled(); }
  }
}
