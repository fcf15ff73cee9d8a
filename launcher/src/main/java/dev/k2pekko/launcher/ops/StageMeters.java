package dev.k2pekko.launcher.ops;

import dev.k2pekko.metrics.Metrics;
import org.apache.pekko.actor.typed.ActorSystem;

/**
 * The progress of the stages this node drives, as gauges ({@code k2_stage_done}, {@code k2_stage_target} by stage), in
 * the order the stages began: what the dashboard's stage bars show. Fed by the same callback as the progress line.
 */
public final class StageMeters {
  private final Metrics metrics;

  public StageMeters(ActorSystem<?> system) {
    this.metrics = Metrics.get(system);
  }

  public void progress(String stage, long done, long total) {
    metrics.gauge("k2_stage_target", "the units a stage this node drives must finish (episodes or trajectories)", "stage", stage).set(total);
    metrics.gauge("k2_stage_done", "the units a stage this node drives has finished", "stage", stage).set(done);
  }
}
