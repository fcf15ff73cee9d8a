package dev.k2pekko.pipeline;

import dev.k2pekko.agents.TrajectoryReplay;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.stream.javadsl.Sink;

/**
 * What the journal holds of a stage, read back by trajectory-id prefix: how a resumed run learns what an interrupted
 * stage already persisted. Each read replays the journal once and is bounded by the stage timeout.
 */
final class JournalStats {
  private final ActorSystem<?> system;
  private final Duration timeout;

  JournalStats(ActorSystem<?> system, Duration timeout) {
    this.system = system;
    this.timeout = timeout;
  }

  /** A stage's counters from what the journal holds of it (persist ALL: every episode is there), as a judge counts them. */
  Map<String, Long> counters(String prefix) throws Exception {
    var out = new ConcurrentHashMap<String, Long>();
    new TrajectoryReplay(system).source(TrajectoryReplay.Filter.ALL)
        .filter(t -> t.trajectory().trajectoryId().startsWith(prefix))
        .runWith(Sink.foreach(x -> {
          var t = x.trajectory();
          boolean ok = t.verdict().accepted();
          // as RunStats counts: difficulties of verifiable tasks only, categories of all
          boolean open = dev.k2pekko.agents.tasks.TaskBuilder.OPEN.equals(t.category());
          out.merge("episodes", 1L, Long::sum);
          out.merge("category/" + t.category() + "/episodes", 1L, Long::sum);
          if (!open) out.merge("difficulty/" + t.difficulty() + "/episodes", 1L, Long::sum);
          if (ok) {
            out.merge("accepted", 1L, Long::sum);
            out.merge("category/" + t.category() + "/accepted", 1L, Long::sum);
            if (!open) out.merge("difficulty/" + t.difficulty() + "/accepted", 1L, Long::sum);
          }
        }), system)
        .toCompletableFuture().get(timeout.toSeconds(), TimeUnit.SECONDS);
    return out;
  }

  /** Trajectories in the journal whose id starts with {@code prefix}. */
  long count(String prefix) throws Exception {
    return new TrajectoryReplay(system).source(TrajectoryReplay.Filter.ALL)
        .filter(t -> t.trajectory().trajectoryId().startsWith(prefix))
        .runWith(Sink.fold(0L, (n, t) -> n + 1), system)
        .toCompletableFuture().get(timeout.toSeconds(), TimeUnit.SECONDS);
  }
}
