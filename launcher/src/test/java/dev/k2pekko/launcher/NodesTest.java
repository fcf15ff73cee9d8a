package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Down;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.Test;

/**
 * What a node does when the cluster downs it while it waits for a run (the driving {@code k2 node}): it stops waiting at
 * once with {@link Nodes.Downed} (exit code 6) instead of waiting out the run's timeout for answers that cannot come,
 * and without waiting for its actor system to finish terminating, which may take long or never happen.
 * {@link PartitionTest} has a node downed by a real partition; this is the driver's side, on a cluster of one.
 */
class NodesTest {
  @Test void aDownedNodeStopsWaitingForItsRunAndSaysWhy() throws Exception {
    var system = node();
    // an actor that does not stop until the test lets it, as the partitioned minority's shard coordinator did (it waited
    // for a distributed-data update that needed the majority): the node must not wait for its system to terminate
    var release = new java.util.concurrent.CountDownLatch(1);
    system.systemActorOf(Behaviors.receive(Object.class).onSignal(org.apache.pekko.actor.typed.PostStop.class, s -> {
      release.await(30, TimeUnit.SECONDS);
      return Behaviors.same();
    }).build(), "slow-to-stop", org.apache.pekko.actor.typed.Props.empty());
    try {
      var cluster = Cluster.get(system);
      cluster.manager().tell(Join.create(cluster.selfMember().address()));
      dev.k2pekko.agents.K2Node.awaitMembersUp(system, 1, Duration.ofSeconds(30));
      var out = Nodes.outOfCluster(system);
      var run = new CompletableFuture<String>(); // a run whose answers will never come
      cluster.manager().tell(new Down(cluster.selfMember().address()));
      long t0 = System.nanoTime();
      var e = assertThrows(Nodes.Downed.class, () -> Nodes.awaitWhileMember(system, out, run, Duration.ofSeconds(120)));
      assertTrue(System.nanoTime() - t0 < Duration.ofSeconds(60).toNanos(), "it stopped waiting when the node was downed, not at the timeout");
      assertTrue(Nodes.downed(system));
      assertFalse(system.whenTerminated().isCompleted(), "the actor system is still stopping: the node did not wait for it");
      assertEquals(K2.DOWNED, K2.exitCode(e));
      assertTrue(e.getMessage().startsWith("this node (pekko://k2@127.0.0.1:") && e.getMessage().contains("was downed by the cluster"), e.getMessage());
      assertTrue(e.getMessage().contains("keep-majority"), e.getMessage());
    } finally {
      release.countDown();
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  @Test void aNodeAskedToStopWasNotDowned() throws Exception {
    var system = node();
    var cluster = Cluster.get(system);
    cluster.manager().tell(Join.create(cluster.selfMember().address()));
    dev.k2pekko.agents.K2Node.awaitMembersUp(system, 1, Duration.ofSeconds(30));
    assertFalse(Nodes.downed(system), "running");
    Nodes.stop(system);
    assertFalse(Nodes.downed(system), "stopped by terminate(), as the shutdown hook does");
  }

  private static ActorSystem<Void> node() {
    var config = ConfigFactory.parseMap(Map.of(
            "pekko.remote.artery.canonical.port", 0,
            "pekko.cluster.roles", List.of("tool"),
            "pekko.loglevel", "ERROR"))
        .withFallback(ConfigFactory.load());
    return ActorSystem.create(Behaviors.empty(), "k2", config);
  }
}
