package dev.k2pekko.agents;

import dev.k2pekko.protocol.KryoWire;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Follows one run on the node that started it: adds up the judges' counters, reports progress, and completes
 * when every episode is judged and every trajectory to be kept is persisted, or when the deadline passes.
 */
public final class RunTracker {
  private RunTracker() {}

  public sealed interface Command {}

  /** Counters a judge gathered since its last delta (see {@link RunStats} for the keys). */
  public record StatsDelta(String runId, HashMap<String, Long> counters) implements Command, KryoWire {}

  private enum Tick implements Command, LocalOnly { INSTANCE }

  /** The outcome: counters, wall time from the start of the run, and whether it finished in time. */
  public record Summary(String runId, Map<String, Long> counters, long expectedEpisodes, Duration elapsed, boolean complete) {
    public long get(String key) { return counters.getOrDefault(key, 0L); }
  }

  public static Behavior<Command> create(String runId, long expectedEpisodes, Duration deadline, Duration progressEvery,
                                         Consumer<Summary> progress, CompletableFuture<Summary> done) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> {
      var stats = new RunStats();
      long start = System.nanoTime();
      timers.startTimerWithFixedDelay(Tick.INSTANCE, progressEvery);
      return Behaviors.<Command>receive((c, msg) -> {
        var elapsed = Duration.ofNanos(System.nanoTime() - start);
        switch (msg) {
          case StatsDelta d -> stats.addAll(d.counters());
          case Tick t -> {
            var now = new Summary(runId, stats.view(), expectedEpisodes, elapsed, false);
            progress.accept(now);
            if (elapsed.compareTo(deadline) > 0) {
              done.complete(now);
              return Behaviors.stopped();
            }
          }
        }
        if (stats.get("episodes") >= expectedEpisodes && stats.get("persisted") >= stats.get("to_persist")) {
          var last = new Summary(runId, stats.view(), expectedEpisodes, elapsed, true);
          progress.accept(last);
          done.complete(last);
          return Behaviors.stopped();
        }
        return Behaviors.same();
      });
    }));
  }
}
