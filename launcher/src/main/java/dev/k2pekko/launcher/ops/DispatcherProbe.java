package dev.k2pekko.launcher.ops;

import dev.k2pekko.metrics.Meter;
import dev.k2pekko.metrics.Metrics;
import java.time.Duration;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Measures how long a message waits for the default dispatcher: every {@code interval} the scheduler's own thread
 * sends this actor a message stamped with the time, and the actor records the delay until it runs. A dispatcher
 * busy with agents, judges and learners shows it here before anything times out.
 */
final class DispatcherProbe {
  private DispatcherProbe() {}

  record Probe(long sentNanos) implements org.apache.pekko.actor.NoSerializationVerificationNeeded {}

  static Behavior<Probe> create(Duration interval) {
    return Behaviors.setup(ctx -> {
      Meter.Timer delay = Metrics.get(ctx.getSystem()).timer("k2_dispatcher_delay",
          "how long a message waited for a thread of the default dispatcher (sampled every second)", "dispatcher", "default");
      var self = ctx.getSelf();
      // run directly: the tell runs on the scheduler's thread, so the wait measured is the dispatcher's alone
      var task = ctx.getSystem().scheduler().scheduleAtFixedRate(interval, interval, () -> self.tell(new Probe(System.nanoTime())),
          org.apache.pekko.dispatch.ExecutionContexts.fromExecutor(Runnable::run));
      return Behaviors.receive(Probe.class)
          .onMessage(Probe.class, p -> {
            delay.recordNanos(System.nanoTime() - p.sentNanos());
            return Behaviors.same();
          })
          .onSignal(PostStop.class, s -> {
            task.cancel();
            return Behaviors.same();
          })
          .build();
    });
  }
}
