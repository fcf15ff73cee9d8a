package dev.k2pekko.pipeline;

import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.RunDriver;
import dev.k2pekko.agents.RunTracker;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorSystem;

/** Runs one stage's episodes on the cluster's agents ({@link RunDriver}) and waits for them, reporting their progress. */
final class EpisodeRuns {
  private final ActorSystem<?> system;
  private final Pipeline.Spec spec;
  private final Consumer<Pipeline.Progress> progress;

  EpisodeRuns(ActorSystem<?> system, Pipeline.Spec spec, Consumer<Pipeline.Progress> progress) {
    this.system = system;
    this.spec = spec;
    this.progress = progress;
  }

  /** {@code agents} agents of {@code episodes} episodes each, as run {@code runId}; an incomplete run is an exception. */
  RunTracker.Summary run(String runId, int agents, int episodes, Agent.EpisodeSpec es, Agent.PersistMode persist, String stage) throws Exception {
    // The seed follows from --seed and the stage, not from the run id: the same --seed gives the same synthesis data
    // and rollout tasks, and every evaluation (init, sft, rl) uses the same held-out tasks, so stages compare.
    String stageKey = runId.startsWith(spec.runId()) ? runId.substring(spec.runId().length()) : runId;
    long seed = stageKey.startsWith("-eval-") ? spec.seed() : spec.seed() * 31 + stageKey.hashCode();
    var rs = new RunDriver.RunSpec(runId, agents, episodes, seed, persist, spec.stageTimeout(), es);
    var done = RunDriver.start(system, rs, s -> progress.accept(new Pipeline.Progress(stage, s.get("episodes"), s.expectedEpisodes(),
        String.format("%.1f%% accepted", 100.0 * s.get("accepted") / Math.max(1, s.get("episodes"))))));
    var summary = done.get(spec.stageTimeout().toSeconds() + 30, TimeUnit.SECONDS);
    if (!summary.complete()) throw new IllegalStateException(stage + " did not finish within " + spec.stageTimeout());
    return summary;
  }
}
