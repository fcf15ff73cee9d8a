package dev.k2pekko.ps.server;

import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.protocol.PsProtocol;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.typed.ClusterSingleton;
import org.apache.pekko.cluster.typed.ClusterSingletonSettings;
import org.apache.pekko.cluster.typed.SingletonActor;

/**
 * Where a node finds the parameter-server coordinator: the cluster singleton on {@code ps} nodes (restarted with
 * back-off after a failure, from its last checkpoint) and, on every node, the proxy to it that the groups use (a node's
 * learners are given the same proxy when they start).
 */
public final class CoordinatorAddress {
  private CoordinatorAddress() {}

  /** By the system's address: several ActorSystems (test nodes) share a JVM, and each must reach its own proxy. */
  private static final Map<String, ActorRef<PsProtocol.ToCoordinator>> PROXIES = new ConcurrentHashMap<>();

  /** Starts the singleton (on this node if it is the oldest {@code ps} node) and returns this node's proxy to it. */
  public static ActorRef<PsProtocol.ToCoordinator> init(ActorSystem<?> system, PsSettings settings, ActorRef<ClipMonitorProtocol.Command> monitor) {
    return ClusterSingleton.get(system).init(SingletonActor.of(
            Behaviors.supervise(PsCoordinator.create(settings, monitor))
                .onFailure(SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(5), 0.2)),
            "ps-coordinator")
        .withSettings(ClusterSingletonSettings.create(system).withRole("ps")));
  }

  /** Makes {@code proxy} the coordinator of this node's groups. */
  public static void register(ActorSystem<?> system, ActorRef<PsProtocol.ToCoordinator> proxy) {
    PROXIES.put(system.address().toString(), proxy);
  }

  /** This node's proxy, once {@link #register} ran here. */
  public static ActorRef<PsProtocol.ToCoordinator> of(ActorSystem<?> system) {
    var p = PROXIES.get(system.address().toString());
    if (p == null) throw new IllegalStateException("the parameter-server coordinator was not initialised on this node");
    return p;
  }
}
