package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import dev.k2pekko.agents.ClusterTls;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14 item 6: cluster nodes (ActorSystems on loopback in this JVM) with {@code k2.cluster.tls} set to directories
 * made by {@code k2 certs}. Two nodes whose certificates one authority signed form a cluster over TLS; a node whose
 * certificate another authority signed, and a node without TLS, cannot join it.
 */
class ClusterTlsTest {
  /** How long the strangers are given to get in (they retry their join every few seconds). */
  static final Duration STRANGER_WINDOW = Duration.ofSeconds(8);

  @Test void onlyNodesCertifiedByTheClustersAuthorityJoin(@TempDir Path dir) throws Exception {
    var ours = dir.resolve("ours");
    CertsCommand.make(ours, null, "seed");
    var member = dir.resolve("member");
    CertsCommand.make(member, ours, "member");
    var theirs = dir.resolve("theirs");
    CertsCommand.make(theirs, null, "stranger");

    int seedPort = freePort();
    var systems = new ArrayList<ActorSystem<Void>>();
    try {
      var seed = node(ours, seedPort, seedPort);
      systems.add(seed);
      assertTrue(ClusterTls.on(seed.settings().config()), "k2.cluster.tls switches Artery to tls-tcp");
      var second = node(member, 0, seedPort);
      systems.add(second);
      awaitUp(seed, 2, Duration.ofSeconds(60));
      awaitUp(second, 2, Duration.ofSeconds(60));

      var stranger = node(theirs, 0, seedPort);
      systems.add(stranger);
      var plain = node(null, 0, seedPort);
      systems.add(plain);
      long until = System.nanoTime() + STRANGER_WINDOW.toNanos();
      while (System.nanoTime() < until) {
        assertEquals(2, members(seed), "the seed sees only the two certified members: " + Cluster.get(seed).state().getMembers());
        Thread.sleep(200);
      }
      assertEquals(2, members(seed), "the seed's members: " + Cluster.get(seed).state().getMembers());
      for (var s : List.of(stranger, plain)) {
        assertNotEquals(MemberStatus.up(), Cluster.get(s).selfMember().status(), "a stranger is never up");
        assertEquals(0, count(s), "a stranger sees no member up: " + Cluster.get(s).state().getMembers());
      }
    } finally {
      for (var s : systems) s.terminate();
      for (var s : systems) s.getWhenTerminated().toCompletableFuture().get(30, java.util.concurrent.TimeUnit.SECONDS);
    }
  }

  /** A cluster node joining through {@code seedPort}; {@code tls}: its {@code k2 certs} directory, or null for plain TCP. */
  private static ActorSystem<Void> node(Path tls, int port, int seedPort) {
    var config = ConfigFactory.parseMap(Map.of(
            "pekko.remote.artery.canonical.port", port,
            "pekko.cluster.seed-nodes", List.of("pekko://k2@127.0.0.1:" + seedPort),
            "pekko.cluster.roles", List.of("tool"),
            "pekko.loglevel", "ERROR",
            "k2.cluster.tls", tls == null ? "" : tls.toString()))
        .withFallback(ConfigFactory.load());
    return ActorSystem.create(Behaviors.empty(), "k2", ClusterTls.apply(config));
  }

  /** Members in any state (a stranger that got as far as joining would be one). */
  private static long members(ActorSystem<?> system) {
    long n = 0;
    for (var ignored : Cluster.get(system).state().getMembers()) n++;
    return n;
  }

  private static long count(ActorSystem<?> system) {
    long up = 0;
    for (var m : Cluster.get(system).state().getMembers()) if (m.status() == MemberStatus.up()) up++;
    return up;
  }

  private static void awaitUp(ActorSystem<?> system, int n, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (count(system) < n) {
      assertTrue(System.nanoTime() < deadline, n + " members up within " + timeout + ": " + Cluster.get(system).state().getMembers());
      Thread.sleep(50);
    }
  }

  private static int freePort() throws Exception {
    try (var s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }
}
