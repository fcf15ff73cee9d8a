package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.agents.PostgresTestDatabase;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.DriverManager;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Issue 14 item 4: a network partition of a three-node cluster, for real. Three {@code k2 node} JVMs, each in a network
 * namespace of its own ({@link PartitionNetwork}), the third driving a synthesis run on the PostgreSQL journal. Once a
 * tenth of the run is done, nftables rules cut the first node (the seed and oldest: it hosts the shard coordinators)
 * off from the other two, both ways. The Split Brain Resolver (keep-majority) must down it: that node exits on its own
 * with exit code 6 and one line saying why; the majority removes it, the coordinators move to the next oldest node once,
 * never running on both sides at once; its agents' episodes not done go to the other nodes; and the run completes with
 * every accepted trajectory in the journal once, the same trajectories (accepted count and fingerprint) as the same
 * run undisturbed.
 */
class PartitionTest {
  static final int AGENTS = 200, EPISODES = 15;
  static final int PORT = 2551, JOURNAL_PORT = 5432;
  /** The Split Brain Resolver's stable-after here (20 s by default): the partition test's minutes are CI's. */
  static final String STABLE_AFTER = "5s";

  @Test void theMinorityIsDownedAndTheRunLosesAndDuplicatesNothing() throws Exception {
    // the nodes' output stays in the module's build directory: what a failure in CI needs looked at
    var dir = Files.createDirectories(Path.of("target", "partition-test").toAbsolutePath());
    var database = PostgresTestDatabase.create("k2part");
    var children = new ArrayList<Child>();
    try (var net = PartitionNetwork.create(3)) {
      try {
        partition(dir, net, database, children);
      } finally {
        Child.stopAll(children); // before their namespaces go
      }
    } finally {
      database.close();
    }
  }

  private static void partition(Path dir, PartitionNetwork net, PostgresTestDatabase database, List<Child> children) throws Exception {
    var socket = unixSocket();
    var journalUrl = "jdbc:postgresql://127.0.0.1:" + JOURNAL_PORT + "/" + database.url().substring(database.url().lastIndexOf('/') + 1);
    var conf = dir.resolve("partition.conf");
    Files.writeString(conf, """
        pekko.cluster.split-brain-resolver.stable-after = %s
        # the shard coordinators' allocations are DEBUG lines; partition-logback.xml lets only theirs through
        pekko.loglevel = DEBUG
        """.formatted(STABLE_AFTER));
    var seeds = PartitionNetwork.address(1) + ":" + PORT;
    long t0 = System.currentTimeMillis();
    // node 1 is the seed: it forms the cluster, the others join through it, so it is the oldest and hosts the coordinators
    for (int i = 1; i <= 2; i++) children.add(Child.start(dir, "node-" + i, net.in(i), socket, "node", "--host", PartitionNetwork.address(i),
        "--port", Integer.toString(PORT), "--seeds", seeds, "--jdbc-url", journalUrl, "--config", conf.toString()));
    children.add(Child.start(dir, "node-3", net.in(3), socket, "node", "--host", PartitionNetwork.address(3),
        "--port", Integer.toString(PORT), "--seeds", seeds, "--jdbc-url", journalUrl, "--config", conf.toString(),
        "--run-agents", Integer.toString(AGENTS), "--episodes", Integer.toString(EPISODES), "--min-members", "3", "--json", "--timeout", "240"));
    var minority = children.get(0);
    var driver = children.get(2);

    var progress = Pattern.compile("\\] ([\\d,]+)/([\\d,]+) episodes");
    var tenth = driver.await(l -> {
      var m = progress.matcher(l.text());
      return m.find() && number(m, 1) >= AGENTS * EPISODES / 10;
    }, Duration.ofSeconds(180), "a tenth of the run done");
    net.split(Set.of(1));
    long cut = System.currentTimeMillis();
    System.out.printf("partition test: cluster up and a tenth of the run done %.1f s after the start; node 1 cut off at %s%n",
        (cut - t0) / 1e3, tenth.text().strip());

    // the minority downs itself and exits: code 6, one line saying so
    assertTrue(minority.exited(Duration.ofSeconds(90)), "node 1 did not exit within 90 s of the partition:\n" + minority.tail());
    long minorityExit = System.currentTimeMillis();
    assertEquals(K2.DOWNED, minority.process().exitValue(), minority.tail());
    // keep-majority on each side: the minority downs itself, the majority's leader downs the unreachable minority
    var selfDown = minority.find(l -> l.logged() > 0 && l.text().contains("SBR took decision DownReachable and is downing [pekko://k2@" + PartitionNetwork.address(1)));
    assertTrue(selfDown != null && selfDown.text().contains("including myself"), "node 1's Split Brain Resolver downed node 1:\n" + minority.tail());
    var downedLine = minority.find(l -> l.text().startsWith("k2 node: this node (pekko://k2@" + PartitionNetwork.address(1)));
    assertTrue(downedLine != null && downedLine.text().contains("was downed by the cluster"), "one line saying why:\n" + minority.tail());
    net.heal();

    // the majority: the driver saw node 1 downed and removed, and finished the run without it
    assertTrue(driver.exited(Duration.ofSeconds(240)), "the run did not finish within 240 s of the partition:\n" + driver.tail());
    long finished = System.currentTimeMillis();
    assertEquals(0, driver.process().exitValue(), driver.tail());
    var node1 = "pekko://k2@" + PartitionNetwork.address(1) + ":" + PORT;
    var down = driver.find(l -> l.text().startsWith("member " + node1 + " Down"));
    var removed = driver.find(l -> l.text().startsWith("member " + node1 + " Removed"));
    assertTrue(down != null && removed != null, "the driver saw node 1 downed and removed:\n" + driver.tail());
    assertTrue(children.get(1).process().isAlive(), "node 2, on the majority side, is still up:\n" + children.get(1).tail());

    var json = driver.find(l -> l.text().startsWith("{\"run_id\""));
    assertTrue(json != null, "the driver printed its summary:\n" + driver.tail());
    var summary = new com.fasterxml.jackson.databind.ObjectMapper().readTree(json.text());
    assertTrue(summary.get("complete").asBoolean(), summary.toString());
    assertEquals(AGENTS * EPISODES, summary.get("episodes").asLong(), "every planned episode counted once");
    assertTrue(summary.get("reassigned").asLong() > 0, "agents of the downed node were given to others: " + summary);
    long accepted = summary.get("accepted").asLong();
    assertEquals(accepted, summary.get("persisted").asLong());

    // Until the driver leaves at the end (a graceful leave that hands its shards, and its singletons if it is the
    // oldest, to node 2), the partition alone decides what moves.
    var driverLeaving = driver.find(l -> l.logged() > 0 && l.text().contains("Marked address [pekko://k2@" + PartitionNetwork.address(3) + ":" + PORT + "] as [Leaving]"));
    assertTrue(driverLeaving != null, "the driver left the cluster at the end:\n" + driver.tail());
    long end = driverLeaving.logged();

    // singletons: each shard coordinator started on node 1 when the cluster formed, stopped there when node 1 downed
    // itself, and started once more on one other node (the next oldest: node 2 or 3, whichever joined first), only
    // after node 1 had stopped its own
    var singletons = events(children, SINGLETON).stream().filter(e -> e.logged() < end).toList();
    var coordinators = singletons.stream().filter(e -> e.node() == 1).map(e -> e.group(2)).distinct().sorted().toList();
    assertTrue(coordinators.size() >= 2, "node 1 started the agents' and collectors' coordinators: " + singletons);
    var successors = singletons.stream().filter(e -> e.node() != 1).map(Event::node).distinct().toList();
    assertEquals(1, successors.size(), "one node took the coordinators over: " + singletons);
    int successor = successors.getFirst();
    var expected = new ArrayList<String>();
    for (var c : coordinators) {
      expected.add("node 1 starting " + c);
      expected.add("node 1 stopping " + c);
      expected.add("node " + successor + " starting " + c);
    }
    assertEquals(expected.stream().sorted().toList(), singletons.stream().map(e -> "node " + e.node() + " " + e.group(1) + " " + e.group(2)).sorted().toList(),
        "each coordinator started on node 1, stopped there, and started once on node " + successor);
    long node1Stopped = singletons.stream().filter(e -> e.node() == 1 && e.group(1).equals("stopping")).mapToLong(Event::logged).max().orElseThrow();
    long successorStarted = singletons.stream().filter(e -> e.node() == successor).mapToLong(Event::logged).min().orElseThrow();
    assertTrue(node1Stopped > cut && successorStarted > node1Stopped,
        "node " + successor + "'s coordinators started only after node 1 had stopped its own (never two at once): stopped " + node1Stopped + ", started " + successorStarted);

    // shards: from then until the driver leaves, each shard got a home at most once, and only a shard whose home was
    // node 1 or that had none yet; no shard of node 2 or 3 moved, nothing was handed off (rebalanced)
    var homes = new java.util.HashMap<String, Integer>(); // type/shard -> node of its home, as node 1's coordinator allocated it
    var moved = new java.util.HashMap<String, Integer>(); // type/shard -> homes the new coordinator gave it during the run
    for (var e : events(children, ALLOCATED)) {
      int home = e.group(3) == null ? e.node() : nodeOf(e.group(3));
      var shard = e.group(1) + "/" + e.group(2);
      if (e.node() == 1) homes.put(shard, home);
      else if (e.logged() < end) {
        assertEquals(successor, e.node(), "only node 1 and node " + successor + " ran coordinators: " + e);
        assertTrue(!homes.containsKey(shard) || homes.get(shard) == 1, "shard " + shard + " moved from node " + homes.get(shard) + ", which stayed up");
        moved.merge(shard, 1, Integer::sum);
      }
    }
    for (var m : moved.entrySet()) assertEquals(1, m.getValue(), "shard " + m.getKey() + " was given a home more than once");
    var handOffs = events(children, HAND_OFF).stream().filter(e -> e.logged() > successorStarted && e.logged() < end).toList();
    assertEquals(List.of(), handOffs, "no shard was handed off (rebalanced) after the partition while the run ran");
    // a shard of node 1 gets a new home when a message comes for it: the agents with episodes left, the collectors
    long node1Shards = homes.values().stream().filter(h -> h == 1).count();
    long rehomed = moved.keySet().stream().filter(k -> homes.get(k) != null).count();
    assertTrue(rehomed > 0, "node 1's shards got new homes: " + moved);

    var unreachable = events(children, UNREACHABLE).stream().filter(e -> e.node() != 1).mapToLong(Event::logged).min().orElseThrow();
    var majorityDecision = events(children, DOWN_UNREACHABLE).stream().filter(e -> e.node() != 1).mapToLong(Event::logged).min().orElseThrow();

    // the journal: every accepted trajectory once (journal check: no id twice, no gap), none lost
    var check = K2CliTest.k2("journal", "check", "--jdbc-url", database.url(), "--json");
    assertEquals(0, check.code(), check.out() + check.err());
    assertTrue(check.lastJson().get("clean").asBoolean(), check.out());
    assertEquals(accepted, check.lastJson().get("trajectories").asLong(), "accepted in the summary vs trajectories in the journal");

    // the same run undisturbed, on one node: the same episodes, so the same accepted count and fingerprint
    var reference = K2CliTest.k2("run", "--synthesis-only", "--agents", Integer.toString(AGENTS), "--episodes", Integer.toString(EPISODES),
        "--seed", "42", "--persist", "none", "--json", "--quiet", "--data-dir", Files.createTempDirectory(dir, "reference").toString());
    assertEquals(0, reference.code(), reference.err());
    assertEquals(reference.lastJson().get("accepted").asLong(), accepted, "accepted: the partitioned run vs the same run undisturbed");
    assertEquals(reference.lastJson().get("fingerprint").asText(), summary.get("fingerprint").asText(), "the partitioned run's episodes vs the same run's undisturbed");

    System.out.printf("partition test: node 1 cut off at %,d of %,d episodes; marked unreachable %.1f s, downed by the majority %.1f s and by itself %.1f s "
          + "after the cut; the driver saw it Down %.1f s and Removed %.1f s after the cut; "
            + "it exited %.1f s after the cut (code %d); node %d took the coordinators over %.1f s after the cut and gave %d of node 1's %d shards new homes; "
            + "the run finished %.1f s after the cut: "
            + "%,d accepted = %,d in the journal, %d agents reassigned, fingerprint %s = undisturbed%n",
        number(progressOf(tenth, progress), 1), AGENTS * EPISODES, (unreachable - cut) / 1e3, (majorityDecision - cut) / 1e3, (selfDown.logged() - cut) / 1e3,
      (down.seen() - cut) / 1e3, (removed.seen() - cut) / 1e3, (minorityExit - cut) / 1e3,
        minority.process().exitValue(), successor, (successorStarted - cut) / 1e3, rehomed, node1Shards, (finished - cut) / 1e3, accepted, accepted, summary.get("reassigned").asLong(),
        summary.get("fingerprint").asText());
  }

  /** ClusterSingletonManager's log line when it starts or stops a singleton (the shard coordinators are singletons). */
  static final Pattern SINGLETON = Pattern.compile("Singleton manager (starting|stopping) singleton actor \\[([^\\]]+)\\]");
  /** A node's failure detector giving up on node 1. */
  static final Pattern UNREACHABLE = Pattern.compile("Marking node as UNREACHABLE \\[Member\\(pekko://k2@" + Pattern.quote(PartitionNetwork.address(1)));
  /** The majority leader's Split Brain Resolver downing the unreachable side. */
  static final Pattern DOWN_UNREACHABLE = Pattern.compile("SBR took decision DownUnreachable and is downing \\[pekko://k2@" + Pattern.quote(PartitionNetwork.address(1)));
  /** A shard coordinator's (DEBUG) line when it gives a shard a home: type, shard, and the region's node (none: its own). */
  static final Pattern ALLOCATED = Pattern.compile("- ([\\w-]+): Shard \\[(\\w+)\\] allocated at \\[Actor\\[pekko://k2(@[\\d.]+:\\d+)?/system/sharding/");
  /** A shard coordinator's (DEBUG) line when it hands a shard off to move it (a rebalance, or a region leaving). */
  static final Pattern HAND_OFF = Pattern.compile("- ([\\w-]+): Shutting down shard \\[(\\w+)\\] from region");

  /** A log line of node {@code node} (1-based) that matched a pattern, with the time it was logged. */
  record Event(int node, long logged, List<String> groups) {
    String group(int i) {
      return groups.get(i - 1);
    }
  }

  /** The lines of every node's log that match {@code p}, in the order each node logged them. */
  private static List<Event> events(List<Child> children, Pattern p) {
    var events = new ArrayList<Event>();
    for (int i = 0; i < children.size(); i++) {
      for (var l : children.get(i).lines()) {
        var m = p.matcher(l.text());
        if (l.logged() == 0 || !m.find()) continue;
        var groups = new ArrayList<String>();
        for (int g = 1; g <= m.groupCount(); g++) groups.add(m.group(g));
        events.add(new Event(i + 1, l.logged(), java.util.Collections.unmodifiableList(groups)));
      }
    }
    return events;
  }

  /** Which node (1-based) has the address {@code @10.213.0.N:PORT}. */
  private static int nodeOf(String at) {
    return Integer.parseInt(at.substring(at.lastIndexOf('.') + 1, at.indexOf(':')));
  }

  private static Matcher progressOf(Line l, Pattern p) {
    var m = p.matcher(l.text());
    assertTrue(m.find());
    return m;
  }

  private static long number(Matcher m, int group) {
    return Long.parseLong(m.group(group).replace(",", ""));
  }

  /** The PostgreSQL server's unix socket: where the nodes' relays ({@link NamespacedK2}) reach it from their namespaces. */
  private static String unixSocket() throws Exception {
    try (var c = DriverManager.getConnection(PostgresTestDatabase.SERVER + "test", "postgres", ""); var st = c.createStatement()) {
      String dirs;
      String port;
      try (var rs = st.executeQuery("SHOW unix_socket_directories")) {
        rs.next();
        dirs = rs.getString(1);
      }
      try (var rs = st.executeQuery("SHOW port")) {
        rs.next();
        port = rs.getString(1);
      }
      for (var d : dirs.split(",")) {
        var socket = Path.of(d.strip(), ".s.PGSQL." + port);
        if (Files.exists(socket)) return socket.toString();
      }
      if ("1".equals(System.getenv("K2_REQUIRE_NETNS"))) throw new AssertionError("PostgreSQL has no unix socket here (" + dirs + ")");
      Assumptions.abort("PostgreSQL has no unix socket here (unix_socket_directories = '" + dirs + "'): the nodes' namespaces could not reach it");
      return null;
    }
  }

  /** A line a child printed: when the test read it, when the child logged it (0 if it is no log line), and the text. */
  record Line(long seen, long logged, String text) {}

  /** A node's JVM in its namespace: its output as timestamped lines, also written to {@code dir/NAME.log}. */
  record Child(String name, Process process, List<Line> lines, List<Thread> readers) {
    private static final Pattern LOGGED = Pattern.compile("^(\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}) ");

    static Child start(Path dir, String name, List<String> namespace, String socket, String... k2) throws Exception {
      var cmd = new ArrayList<>(namespace);
      cmd.addAll(List.of(ProcessHandle.current().info().command().orElseThrow(), "-Xmx512m", "-Xss2m", "-XX:+UseParallelGC",
          "--enable-native-access=ALL-UNNAMED", "--add-opens", "java.base/java.lang=ALL-UNNAMED", "--add-opens", "java.base/java.util=ALL-UNNAMED",
          "--add-opens", "java.base/java.nio=ALL-UNNAMED", "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
          "-Dlogback.configurationFile=" + Path.of(PartitionTest.class.getResource("/partition-logback.xml").toURI()),
          "-cp", System.getProperty("java.class.path"), NamespacedK2.class.getName(), socket, Integer.toString(JOURNAL_PORT)));
      cmd.addAll(List.of(k2));
      var p = new ProcessBuilder(cmd).start();
      p.getOutputStream().close();
      var child = new Child(name, p, new CopyOnWriteArrayList<>(), new CopyOnWriteArrayList<>());
      var log = new PrintWriter(Files.newBufferedWriter(dir.resolve(name + ".log")), true);
      child.readers().add(Thread.ofPlatform().daemon().name(name + "-out").start(() -> child.read(p.getInputStream(), log, true)));
      child.readers().add(Thread.ofPlatform().daemon().name(name + "-err").start(() -> child.read(p.getErrorStream(), log, false)));
      return child;
    }

    private void read(InputStream in, PrintWriter log, boolean stdout) {
      try (var r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
        for (String s; (s = r.readLine()) != null; ) {
          long logged = 0;
          var m = LOGGED.matcher(s);
          if (m.find()) logged = LocalDateTime.parse(m.group(1)).atZone(ZoneId.systemDefault()).toInstant().toEpochMilli();
          var line = new Line(System.currentTimeMillis(), logged, s);
          lines.add(line);
          log.println((stdout ? "out " : "err ") + s);
        }
      } catch (Exception e) {
        log.println("reader: " + e);
      }
    }

    /** The first line that matches, waiting for it at most {@code timeout}; fails, with the child's output, if none comes. */
    Line await(Predicate<Line> p, Duration timeout, String what) throws InterruptedException {
      long deadline = System.nanoTime() + timeout.toNanos();
      while (true) {
        var l = find(p);
        if (l != null) return l;
        assertTrue(process.isAlive() || find(p) != null, name + " ended before " + what + " (exit " + (process.isAlive() ? "-" : process.exitValue()) + "):\n" + tail());
        assertTrue(System.nanoTime() < deadline, name + ": no " + what + " within " + timeout + ":\n" + tail());
        Thread.sleep(50);
      }
    }

    /** Whether the JVM exited within {@code timeout}; if so, its last lines have been read too. */
    boolean exited(Duration timeout) throws InterruptedException {
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) return false;
      for (var r : readers) r.join(Duration.ofSeconds(10));
      return true;
    }

    Line find(Predicate<Line> p) {
      for (var l : lines) if (p.test(l)) return l;
      return null;
    }

    /** The last 60 lines, for a failure's message. */
    String tail() {
      var all = List.copyOf(lines);
      var b = new StringBuilder();
      for (var l : all.subList(Math.max(0, all.size() - 60), all.size())) b.append(name).append(": ").append(l.text()).append('\n');
      return b.toString();
    }

    /** SIGTERM to each (a node leaves the cluster and exits), SIGKILL to any still there 30 s later. */
    static void stopAll(List<Child> children) throws InterruptedException {
      for (var c : children) c.process().destroy();
      long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      for (var c : children) {
        if (!c.process().waitFor(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) c.process().destroyForcibly().waitFor(30, TimeUnit.SECONDS);
      }
    }
  }
}
