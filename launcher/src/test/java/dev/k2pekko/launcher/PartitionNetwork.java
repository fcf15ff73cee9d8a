package dev.k2pekko.launcher;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * A network of a test's own in which nodes can be split apart: one Linux network namespace per node, each with a
 * veth link to a bridge in a hub namespace, addresses 10.213.0.1.. (in these namespaces only: nothing outside them
 * routes there). {@link #split} loads nftables rules inside the nodes' namespaces that drop every packet between the
 * two sides, both ways; {@link #heal} deletes them. {@link #close} deletes the namespaces, and with them every link
 * and rule (a shutdown hook does it too if the JVM ends first). The root namespace is never changed.
 *
 * <p>Needs root, {@code ip} (iproute2) and {@code nft} (Debian's {@code nftables}). Without them {@link #create}
 * skips the test with the reason, unless {@code K2_REQUIRE_NETNS=1} (CI) makes that a failure.
 */
final class PartitionNetwork implements AutoCloseable {
  static final String SUBNET = "10.213.0.";
  private static final String TABLE = "k2partition";

  private final String prefix;
  private final int nodes;
  private final String ip;
  private final String nft;
  private final List<String> namespaces = new ArrayList<>();
  private final Thread cleanup = new Thread(this::deleteNamespaces, "partition-network-cleanup");

  private PartitionNetwork(int nodes, String ip, String nft) {
    this.prefix = "k2p" + Long.toString(ProcessHandle.current().pid(), 36);
    this.nodes = nodes;
    this.ip = ip;
    this.nft = nft;
  }

  /** Namespaces for nodes 1..{@code nodes}, linked through the hub's bridge; skips the test when the machine cannot. */
  static PartitionNetwork create(int nodes) {
    if (!"root".equals(System.getProperty("user.name"))) unable("network namespaces and nftables need root; this runs as " + System.getProperty("user.name"));
    var ip = executable("ip", "iproute2");
    var nft = executable("nft", "nftables");
    deleteOrphans(ip);
    var net = new PartitionNetwork(nodes, ip, nft);
    Runtime.getRuntime().addShutdownHook(net.cleanup);
    try {
      net.add(net.hub());
      net.sh(ip, "-n", net.hub(), "link", "add", "br0", "type", "bridge");
      net.sh(ip, "-n", net.hub(), "link", "set", "br0", "up");
      for (int i = 1; i <= nodes; i++) {
        var ns = net.namespace(i);
        net.add(ns);
        var hubSide = net.prefix + "-" + i;
        net.sh(ip, "link", "add", hubSide, "netns", net.hub(), "type", "veth", "peer", "name", "eth0", "netns", ns);
        net.sh(ip, "-n", net.hub(), "link", "set", hubSide, "master", "br0");
        net.sh(ip, "-n", net.hub(), "link", "set", hubSide, "up");
        net.sh(ip, "-n", ns, "addr", "add", address(i) + "/24", "dev", "eth0");
        net.sh(ip, "-n", ns, "link", "set", "eth0", "up");
        net.sh(ip, "-n", ns, "link", "set", "lo", "up");
      }
      net.sh(ip, "netns", "exec", net.namespace(1), nft, "list", "ruleset"); // nf_tables works in a namespace
    } catch (RuntimeException e) {
      net.close();
      unable("could not build the test's network namespaces: " + e.getMessage());
    }
    return net;
  }

  /** Node {@code i}'s address (1-based), in its namespace. */
  static String address(int i) {
    return SUBNET + i;
  }

  String namespace(int i) {
    return prefix + "-n" + i;
  }

  private String hub() {
    return prefix + "-hub";
  }

  /** The command prefix that runs a program in node {@code i}'s namespace. */
  List<String> in(int i) {
    return List.of(ip, "netns", "exec", namespace(i));
  }

  /**
   * Splits the network in two: {@code side} and the other nodes. Each node drops every packet from or to the other
   * side's addresses (input and output hooks of an {@code inet} table in its own namespace): no connection, no
   * heartbeat, no reply crosses, as when a switch between two racks fails.
   */
  void split(Set<Integer> side) {
    for (int i = 1; i <= nodes; i++) {
      var others = new ArrayList<String>();
      for (int j = 1; j <= nodes; j++) if (side.contains(i) != side.contains(j)) others.add(address(j));
      var set = String.join(", ", others);
      var rules = """
          table inet %s {
            chain input { type filter hook input priority 0; policy accept; ip saddr { %s } drop; }
            chain output { type filter hook output priority 0; policy accept; ip daddr { %s } drop; }
          }
          """.formatted(TABLE, set, set);
      run(rules, true, ip, "netns", "exec", namespace(i), nft, "-f", "-");
    }
  }

  /** Deletes the split's rules: every node reaches every other again. */
  void heal() {
    for (int i = 1; i <= nodes; i++) {
      if (run(null, false, ip, "netns", "exec", namespace(i), nft, "list", "tables").contains(TABLE)) {
        sh(ip, "netns", "exec", namespace(i), nft, "delete", "table", "inet", TABLE);
      }
    }
  }

  /** Deletes every namespace this made (their links and rules go with them). */
  @Override public void close() {
    deleteNamespaces();
    try {
      Runtime.getRuntime().removeShutdownHook(cleanup);
    } catch (IllegalStateException shuttingDown) {
      // the hook is running or has run
    }
  }

  private synchronized void deleteNamespaces() {
    for (var ns : namespaces.reversed()) {
      var out = run(null, false, ip, "netns", "del", ns);
      if (!out.isBlank()) System.err.println("partition network: ip netns del " + ns + ": " + out.strip());
    }
    namespaces.clear();
  }

  /** Namespaces of earlier test JVMs that were killed before they could delete them (named after their process id). */
  private static void deleteOrphans(String ip) {
    var ours = java.util.regex.Pattern.compile("^(k2p([0-9a-z]+)-(?:hub|n\\d+))\\b");
    for (var line : run(null, false, ip, "netns", "list").lines().toList()) {
      var m = ours.matcher(line);
      if (!m.find()) continue;
      long pid;
      try {
        pid = Long.parseLong(m.group(2), 36);
      } catch (NumberFormatException notOurs) {
        continue;
      }
      if (ProcessHandle.of(pid).isEmpty()) run(null, false, ip, "netns", "del", m.group(1));
    }
  }

  private synchronized void add(String ns) {
    sh(ip, "netns", "add", ns);
    namespaces.add(ns);
  }

  private void sh(String... cmd) {
    run(null, true, cmd);
  }

  /** Runs a command (at most 30 s); its output. With {@code check}, a failure is an exception that shows it. */
  private static String run(String stdin, boolean check, String... cmd) {
    try {
      var p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      try (var in = p.getOutputStream()) {
        if (stdin != null) in.write(stdin.getBytes(StandardCharsets.UTF_8));
      }
      if (!p.waitFor(30, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IllegalStateException(String.join(" ", cmd) + ": no answer within 30 s");
      }
      var out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (check && p.exitValue() != 0) throw new IllegalStateException(String.join(" ", cmd) + ": exit " + p.exitValue() + ": " + out.strip());
      return out;
    } catch (java.io.IOException e) {
      throw new IllegalStateException(String.join(" ", cmd) + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(String.join(" ", cmd) + ": interrupted", e);
    }
  }

  private static String executable(String name, String debianPackage) {
    var dirs = new ArrayList<String>(List.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)));
    dirs.addAll(List.of("/usr/sbin", "/sbin"));
    for (var d : dirs) {
      if (d.isEmpty()) continue;
      var f = Path.of(d, name);
      if (Files.isExecutable(f)) return f.toString();
    }
    unable("no `" + name + "` on this machine (apt-get install " + debianPackage + ")");
    return null;
  }

  /** Skips the test with the reason; a failure instead where CI requires the partition test to run. */
  private static void unable(String why) {
    if ("1".equals(System.getenv("K2_REQUIRE_NETNS"))) throw new AssertionError("the partition test must run here (K2_REQUIRE_NETNS=1), but " + why);
    Assumptions.abort(why);
  }
}
