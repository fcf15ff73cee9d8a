package dev.k2pekko.agents;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;

/** Starts a run from this node: a tracker here, and {@code RunEpisodes} to agents {@code agent-0 .. agent-(n-1)}. */
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
    }
  }

  public static CompletableFuture<RunTracker.Summary> start(ActorSystem<?> system, RunSpec spec, Consumer<RunTracker.Summary> progress) {
    var done = new CompletableFuture<RunTracker.Summary>();
    var tracker = system.systemActorOf(RunTracker.create(spec.runId(), (long) spec.agents() * spec.episodesPerAgent(),
        spec.timeout(), Duration.ofMillis(250), progress, done), "run-" + spec.runId(), Props.empty());
    var sharding = ClusterSharding.get(system);
    for (int i = 0; i < spec.agents(); i++) {
      sharding.entityRefFor(Agent.KEY, "agent-" + i)
          .tell(new Agent.RunEpisodes(spec.runId(), spec.seed(), spec.episodesPerAgent(), spec.persist(), tracker, spec.episodes()));
    }
    return done;
  }
}
