package dev.k2pekko.agents;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;

/**
 * Starts a run from this node: a {@link RunTracker} here, which gives agents {@code agent-0 .. agent-(n-1)} their
 * episodes and follows them. Starting a run whose id the journal already has a record of continues it: only the
 * episodes its {@link RunRecord} does not hold are run (the plan must be the same).
 */
public final class RunDriver {
  private RunDriver() {}

  public record RunSpec(String runId, int agents, int episodesPerAgent, long seed, Agent.PersistMode persist, Duration timeout,
                        Agent.EpisodeSpec episodes) {
    public RunSpec(String runId, int agents, int episodesPerAgent, long seed, Agent.PersistMode persist, Duration timeout) {
      this(runId, agents, episodesPerAgent, seed, persist, timeout, Agent.EpisodeSpec.SYNTHESIS);
    }

    public RunSpec {
      if (agents < 1) throw new IllegalArgumentException("--agents must be at least 1, got " + agents);
      if (episodesPerAgent < 1) throw new IllegalArgumentException("--episodes must be at least 1, got " + episodesPerAgent);
      if ((long) agents * episodesPerAgent > Integer.MAX_VALUE) throw new IllegalArgumentException("at most 2^31 - 1 episodes in a run");
    }
  }

  private static final java.util.concurrent.atomic.AtomicLong TRACKERS = new java.util.concurrent.atomic.AtomicLong();

  public static CompletableFuture<RunTracker.Summary> start(ActorSystem<?> system, RunSpec spec, Consumer<RunTracker.Summary> progress) {
    var done = new CompletableFuture<RunTracker.Summary>();
    // A tracker's name stays taken for a moment after it stops: a run continued at once in the same JVM gets a new one.
    system.systemActorOf(RunTracker.create(spec, Duration.ofMillis(250), progress, done), "run-" + spec.runId() + "-" + TRACKERS.incrementAndGet(),
        Props.empty());
    return done;
  }
}
