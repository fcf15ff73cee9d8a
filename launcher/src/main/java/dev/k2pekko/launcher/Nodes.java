package dev.k2pekko.launcher;

import com.typesafe.config.Config;
import dev.k2pekko.agents.K2Node;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;

/** Starting and stopping k2 nodes from the launcher. */
final class Nodes {
  private Nodes() {}

  /** A node that forms a cluster of one: every role in this JVM. */
  static ActorSystem<Void> single(Config config, Duration timeout) throws Exception {
    var system = K2Node.start("k2", config);
    var cluster = Cluster.get(system);
    cluster.manager().tell(Join.create(cluster.selfMember().address()));
    K2Node.awaitMembersUp(system, 1, timeout);
    return system;
  }

  /** A node outside any cluster, for commands that only read the journal (replay, export). */
  static ActorSystem<Void> local(Config config, String name) {
    return ActorSystem.create(org.apache.pekko.actor.typed.javadsl.Behaviors.empty(), name,
        config.withValue("pekko.actor.provider", com.typesafe.config.ConfigValueFactory.fromAnyRef("local")));
  }

  static void stop(ActorSystem<?> system) {
    system.terminate();
    try {
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      System.err.println("k2: the actor system did not stop within 30 s: " + e);
    }
  }

  static <T> T await(CompletableFuture<T> f, Duration timeout) throws Exception {
    return f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  /**
   * The cluster downed this node (the Split Brain Resolver put it on the minority side of a partition, or found it
   * unreachable for longer than its stable-after, or an operator downed it): it has left the cluster for good, and only
   * a new start joins again. Exit code {@link K2#DOWNED}.
   */
  static final class Downed extends RuntimeException {
    Downed(ActorSystem<?> system) {
      super("this node (" + system.address() + ") was downed by the cluster and has left it: the Split Brain Resolver ("
          + system.settings().config().getString("pekko.cluster.split-brain-resolver.active-strategy")
          + ") downs the nodes on the minority side of a partition and nodes unreachable for longer than "
          + system.settings().config().getString("pekko.cluster.split-brain-resolver.stable-after")
          + "; what it ran moves to the nodes that remain. Start it again to join as a new member");
    }
  }

  /** Whether this node's actor system stopped because the cluster downed it (rather than being asked to stop). */
  static boolean downed(ActorSystem<?> system) {
    return system.whenTerminated().isCompleted()
        && org.apache.pekko.actor.CoordinatedShutdown.get(system).getShutdownReason()
            .filter(r -> r.equals(org.apache.pekko.actor.CoordinatedShutdown.clusterDowningReason())).isPresent();
  }

  /**
   * {@code f}'s result; {@link Downed} at once if the cluster downs this node first (what {@code f} waits for would
   * never come: this node has left the cluster), a timeout after {@code timeout}.
   */
  static <T> T awaitWhileMember(ActorSystem<?> system, CompletableFuture<T> f, Duration timeout) throws Exception {
    var stopped = system.getWhenTerminated().toCompletableFuture();
    try {
      CompletableFuture.anyOf(f, stopped).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      // f failed: get() below throws its failure
    }
    if (!f.isDone() && downed(system)) throw new Downed(system);
    return f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }
}
