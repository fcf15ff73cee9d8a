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

  /** Whether the cluster downed this node: its coordinated shutdown runs (or ran) for that reason. */
  static boolean downed(ActorSystem<?> system) {
    return org.apache.pekko.actor.CoordinatedShutdown.get(system).getShutdownReason()
        .filter(r -> r.equals(org.apache.pekko.actor.CoordinatedShutdown.clusterDowningReason())).isPresent();
  }

  /**
   * Completes once this node is out of the cluster for good: its coordinated shutdown (after a downing, a leave or a
   * terminate) has run the cluster's phases and is about to terminate the actor system, or the system terminated.
   * Not the termination alone: a downed node's system can fail to terminate. In one of ten partition tests the
   * minority's shard coordinator was waiting for a distributed-data update that needs a majority it could no longer
   * reach, and deferred stopping until then; coordinated shutdown gave up on that phase after 10 s and the JVM, its
   * cluster already shut down, stayed up. Call it once, at the node's start (it adds a shutdown task).
   */
  static java.util.concurrent.CompletableFuture<Void> outOfCluster(ActorSystem<?> system) {
    var out = new CompletableFuture<Void>();
    system.getWhenTerminated().thenRun(() -> out.complete(null));
    org.apache.pekko.actor.CoordinatedShutdown.get(system).addTask(org.apache.pekko.actor.CoordinatedShutdown.PhaseBeforeActorSystemTerminate(),
        "k2-out-of-cluster", () -> {
          out.complete(null);
          return CompletableFuture.completedFuture(org.apache.pekko.Done.getInstance());
        });
    return out;
  }

  /**
   * {@code f}'s result; {@link Downed} at once if the cluster downs this node first ({@code out}: {@link #outOfCluster}),
   * since what {@code f} waits for would never come; a timeout after {@code timeout}.
   */
  static <T> T awaitWhileMember(ActorSystem<?> system, CompletableFuture<Void> out, CompletableFuture<T> f, Duration timeout) throws Exception {
    try {
      CompletableFuture.anyOf(f, out).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      // f failed: get() below throws its failure
    }
    if (!f.isDone() && downed(system)) throw new Downed(system);
    return f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  /**
   * The end of a driving node: it leaves the cluster (so that its shards and singletons are handed over) and stops;
   * nothing to do if the cluster downed it, whose system may never finish terminating (see {@link #outOfCluster}).
   */
  static void leaveAndStop(ActorSystem<?> system) throws InterruptedException {
    if (downed(system)) return;
    var cluster = Cluster.get(system);
    cluster.manager().tell(org.apache.pekko.cluster.typed.Leave.create(cluster.selfMember().address()));
    Thread.sleep(2000);
    stop(system);
  }
}
