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
}
