package dev.k2pekko.pipeline;

import dev.k2pekko.agents.NodeServices;
import dev.k2pekko.agents.inference.InferenceServer;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.ps.server.PsCoordinator;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * What the pipeline asks of the cluster and waits for: the coordinator's status and checkpoints, the clip-monitor's
 * history, and this node's inference server holding the current weights. The pipeline runs on a thread of its own,
 * outside the actors, so it polls; every ask and every wait has a deadline, and a missed one is an exception that
 * names what did not happen.
 */
final class ClusterProbe {
  private final ActorSystem<?> system;
  private final TrainerNode.Started node;
  private final Duration stageTimeout;
  private final Consumer<Pipeline.Progress> progress;

  ClusterProbe(ActorSystem<?> system, TrainerNode.Started node, Duration stageTimeout, Consumer<Pipeline.Progress> progress) {
    this.system = system;
    this.node = node;
    this.stageTimeout = stageTimeout;
    this.progress = progress;
  }

  /** Waits for the parameter server's first version and for this node's inference server to hold it. */
  long awaitReady() throws Exception {
    long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
    while (System.nanoTime() < deadline) {
      var st = status();
      var inf = inferenceStats();
      if (st != null && inf.version() >= st.version() && inf.version() >= 0 && st.learners() > 0) return st.version();
      Thread.sleep(100);
    }
    throw new IllegalStateException("the parameter server, a learner or the inference server did not come up within 2 minutes");
  }

  /** Waits until this node's inference server holds the coordinator's current version. */
  void awaitPublished() throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (System.nanoTime() < deadline) {
      if (inferenceStats().version() >= status().version()) return;
      Thread.sleep(50);
    }
    throw new IllegalStateException("the inference server did not receive version " + status().version() + " within 60 s");
  }

  /**
   * Waits until the learners have consumed {@code target} trajectories of the journal in all (accepted for training or
   * rejected), reporting the count and the last loss as the progress of {@code stage}; the stage timeout bounds it.
   */
  void awaitConsumed(long target, String stage) throws Exception {
    long deadline = System.nanoTime() + stageTimeout.toNanos();
    while (true) {
      var st = status();
      long done = st.counters().getOrDefault("trajectories", 0L) + st.counters().getOrDefault("trajectories_rejected", 0L);
      var losses = st.losses();
      String detail = losses.isEmpty() ? "" : String.format("v%d loss %.4f", st.version(), losses.getLast().loss());
      progress.accept(new Pipeline.Progress(stage, done, target, detail));
      if (done >= target) return;
      if (System.nanoTime() > deadline) throw new IllegalStateException(stage + ": learners consumed " + done + " of " + target + " trajectories within " + stageTimeout);
      Thread.sleep(250);
    }
  }

  PsCoordinator.Status status() throws Exception {
    return AskPattern.<PsProtocol.ToCoordinator, PsCoordinator.Status>ask(node.coordinator(), PsCoordinator.GetStatus::new,
        Duration.ofSeconds(10), system.scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS);
  }

  ClipMonitorProtocol.History history() throws Exception {
    return AskPattern.<ClipMonitorProtocol.Command, ClipMonitorProtocol.History>ask(node.monitor(), ClipMonitorProtocol.GetHistory::new,
        Duration.ofSeconds(10), system.scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS);
  }

  private InferenceServer.Stats inferenceStats() throws Exception {
    return AskPattern.<InferenceServer.Command, InferenceServer.Stats>ask(NodeServices.get(system).inference(), InferenceServer.GetStats::new,
        Duration.ofSeconds(10), system.scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS);
  }

  /** A checkpoint now, waited for: the version written. */
  long checkpoint() throws Exception {
    return AskPattern.<PsProtocol.ToCoordinator, Long>ask(node.coordinator(), PsCoordinator.CheckpointNow::new, Duration.ofSeconds(60),
        system.scheduler()).toCompletableFuture().get(70, TimeUnit.SECONDS);
  }

  /** A checkpoint asked for and not waited for: the coordinator writes it between steps while the pipeline goes on. */
  void checkpointInBackground() {
    node.coordinator().tell(new PsCoordinator.CheckpointNow(system.ignoreRef()));
  }
}
