package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kill -9 of a node mid-run, on PostgreSQL: three nodes (this JVM drives; two more JVMs run agents, tools and
 * collectors), one of the other two killed with SIGKILL once a tenth of the run is durable and 100 of its episodes
 * are. The Split Brain Resolver downs it, its agents' episodes not done go to agents elsewhere, and the run
 * finishes: every planned episode counted once, the summary's accepted count equal to the journal's trajectories of
 * the run and to the run record, no trajectory twice in the journal, and the whole run equal (accepted count and
 * fingerprint) to the same run undisturbed, which runs first on the same cluster.
 */
class NodeCrashTest {
  /** How long the Split Brain Resolver waits for a stable membership before it downs the unreachable node (20 s by default). */
  static final String STABLE_AFTER = "5s";

  /** Messages between nodes are serialized anyway; checking every local one as well would halve the runs' speed. */
  static final Map<String, Object> NODE = Map.of("pekko.actor.serialize-messages", "off", "pekko.cluster.split-brain-resolver.stable-after", STABLE_AFTER);

  @Test void killNineOfANodeLosesAndDuplicatesNothing(@TempDir Path dir) throws Exception {
    var database = PostgresTestDatabase.create("k2crash");
    var url = database.url();
    ActorSystem<Void> driver = null;
    var children = new ArrayList<Process>();
    try {
      int[] ports = freePorts(3);
      var overrides = new java.util.HashMap<String, Object>(NODE);
      overrides.put("pekko.remote.artery.canonical.port", ports[0]);
      driver = K2Node.start("k2", TestNodes.postgres(url, overrides));
      JournalSchema.ensure(driver.settings().config());
      Cluster.get(driver).manager().tell(Join.create(Cluster.get(driver).selfMember().address()));
      for (int i = 1; i <= 2; i++) children.add(startNode(url, ports[i], ports[0], dir.resolve("node-" + i + ".log")));
      long t0 = System.nanoTime();
      K2Node.awaitMembersUp(driver, 3, Duration.ofSeconds(90));
      System.out.printf("crash test: three members up after %.1f s%n", (System.nanoTime() - t0) / 1e9);

      // The same run undisturbed first: the reference the crashed run must equal (episodes are deterministic), and a
      // warm-up (every collector recovered, every node's journal connections open, so the run below is durable as it goes)
      // Long enough that the run tracker's first progress (every 250 ms) comes while the victim still has episodes to
      // play: with 15 episodes an agent a CI run had played 2,731 of 3,000 at the first progress, the victim had
      // finished its share before the kill, and no agent was reassigned (60: 6,043 of 12,000; 100: 2,301 of 20,000)
      int agents = 200, episodes = 100;
      var reference = RunDriver.start(driver, new RunDriver.RunSpec("reference-" + System.nanoTime(), agents, episodes, 5,
          Agent.PersistMode.ACCEPTED, Duration.ofSeconds(120)), s -> {}).get(150, TimeUnit.SECONDS);
      assertTrue(reference.complete(), "reference run: " + reference.counters());
      System.out.printf("crash test: reference run done after %.1f s%n", (System.nanoTime() - t0) / 1e9);

      String runId = "crash-" + System.nanoTime();
      String victim = "node/k2@127.0.0.1:" + ports[2];
      var spec = new RunDriver.RunSpec(runId, agents, episodes, 5, Agent.PersistMode.ACCEPTED, Duration.ofSeconds(150));
      var third = new CompletableFuture<RunTracker.Summary>();
      var done = RunDriver.start(driver, spec, s -> {
        if (s.get("episodes") >= agents * episodes / 10 && s.get(victim) >= 100) third.complete(s);
      });
      var atKill = third.get(120, TimeUnit.SECONDS);
      children.get(1).destroyForcibly(); // SIGKILL
      children.get(1).waitFor(30, TimeUnit.SECONDS);
      long killedAt = System.nanoTime();
      System.out.printf("crash test: killed %s at %d of %d episodes, %.1f s into the run%n", victim, atKill.get("episodes"),
          agents * episodes, atKill.elapsed().toMillis() / 1e3);

      var summary = done.get(180, TimeUnit.SECONDS);
      assertTrue(summary.complete(), "the run did not finish without the killed node: " + summary.get("episodes") + " of "
          + summary.expectedEpisodes() + " episodes; killed at " + atKill.get("episodes"));
      assertEquals(agents * episodes, summary.get("episodes"), "every planned episode counted once");
      assertEquals(summary.get("episodes"), summary.get("accepted") + summary.get("rejected"));
      assertTrue(summary.get("reassigned") > 0, "agents of the killed node should have been given to others: " + summary.counters());
      assertTrue(summary.get("accepted") > 0);

      var ids = new HashSet<String>();
      long[] rows = new long[1];
      new TrajectoryReplay(driver).forEach(TrajectoryReplay.Filter.ALL, Duration.ofSeconds(60), (tag, t) -> {
        if (!t.trajectoryId().startsWith(runId + "/")) return;
        rows[0]++;
        ids.add(t.trajectoryId());
        assertTrue(t.verdict().accepted());
      });
      assertEquals(rows[0], ids.size(), "a trajectory is in the journal twice");
      assertEquals(summary.get("accepted"), rows[0], "accepted in the summary vs trajectories of the run in the journal");
      assertEquals(summary.get("accepted"), summary.get("persisted"));

      var record = RunRecord.read(driver, runId, Duration.ofSeconds(30)).get(40, TimeUnit.SECONDS);
      assertEquals(agents * episodes, record.done().size(), "episodes in the run record");
      assertEquals(summary.get("accepted"), record.get("accepted"), "accepted in the run record");
      assertEquals(summary.get("fingerprint"), record.get("fingerprint"));
      if (summary.get("fingerprint") != reference.get("fingerprint")) {
        var ref = trajectories(driver, reference.runId());
        var got = trajectories(driver, runId);
        var diff = new java.util.TreeSet<String>(ref.keySet());
        diff.addAll(got.keySet());
        diff.removeIf(k -> java.util.Objects.equals(ref.get(k), got.get(k)));
        for (var k : diff.stream().limit(5).toList()) System.out.println("differs: " + k + "\n  reference " + ref.get(k) + "\n  crashed   " + got.get(k));
      }
      assertEquals(reference.get("accepted"), summary.get("accepted"), "accepted: the crashed run vs the same run undisturbed");
      assertEquals(reference.get("fingerprint"), summary.get("fingerprint"), "the crashed run's episodes vs the same run's undisturbed");
      System.out.printf("crash test: killed at %d of %d episodes; finished %.1f s after the kill; %d accepted, %d agents reassigned%n",
          atKill.get("episodes"), agents * episodes, (System.nanoTime() - killedAt) / 1e9, rows[0], summary.get("reassigned"));
    } finally {
      for (var p : children) {
        try {
          p.getOutputStream().close(); // its stdin: the node leaves and exits
        } catch (Exception ignored) {
          // already gone
        }
      }
      for (var p : children) if (!p.waitFor(30, TimeUnit.SECONDS)) p.destroyForcibly();
      if (driver != null) {
        driver.terminate();
        driver.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
      }
      database.close();
    }
  }

  /** The run's trajectories in the journal by id without the run, as text. */
  private static Map<String, String> trajectories(ActorSystem<?> system, String runId) throws Exception {
    var out = new java.util.HashMap<String, String>();
    new TrajectoryReplay(system).forEach(TrajectoryReplay.Filter.ALL, Duration.ofSeconds(60), (tag, t) -> {
      if (t.trajectoryId().startsWith(runId + "/")) out.put(t.trajectoryId().substring(runId.length() + 1), t.steps() + " " + t.finalAnswer() + " " + t.verdict());
    });
    return out;
  }

  private static Process startNode(String url, int port, int seedPort, Path log) throws Exception {
    var java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    var cmd = new ArrayList<>(List.of(java, "-Xmx768m", "-Xss2m", "-XX:+UseParallelGC", "--enable-native-access=ALL-UNNAMED",
        "--add-opens", "java.base/java.lang=ALL-UNNAMED", "--add-opens", "java.base/java.util=ALL-UNNAMED",
        "--add-opens", "java.base/java.nio=ALL-UNNAMED", "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
        "-cp", System.getProperty("java.class.path"), CrashTestNode.class.getName(), url, Integer.toString(port), Integer.toString(seedPort)));
    return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
  }

  private static int[] freePorts(int n) throws Exception {
    var sockets = new ArrayList<ServerSocket>();
    try {
      int[] ports = new int[n];
      for (int i = 0; i < n; i++) {
        var s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress());
        sockets.add(s);
        ports[i] = s.getLocalPort();
      }
      return ports;
    } finally {
      for (var s : sockets) s.close();
    }
  }
}
