package dev.k2pekko.agents;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.UserPrincipalNotFoundException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * A PostgreSQL server of a test's own, which the test may stop and start: the shared server at 127.0.0.1:5432 must
 * never be stopped (other tests and helpers use it). It runs Debian's binaries ({@code /usr/lib/postgresql/N/bin},
 * the newest; {@code K2_PG_BIN} names another directory): {@code initdb} into a fresh temporary directory, then
 * {@code pg_ctl} on a free loopback port with trust authentication (user postgres, database postgres), fsync off.
 * PostgreSQL refuses to run as root, so as root it runs as the {@code postgres} user through {@code runuser}.
 * {@link #close} stops it and deletes the directory. Without the binaries the test is skipped, unless CI says they
 * must be there ({@code K2_REQUIRE_POSTGRES=1}).
 */
public final class ThrowawayPostgres implements AutoCloseable {
  private static final long WAIT_SECONDS = 60;

  private final Path bin, dir;
  private final int port;
  private final boolean asPostgresUser;
  private boolean running;

  private ThrowawayPostgres(Path bin, Path dir, int port, boolean asPostgresUser) {
    this.bin = bin;
    this.dir = dir;
    this.port = port;
    this.asPostgresUser = asPostgresUser;
  }

  /** A new, initialised and started server. */
  public static ThrowawayPostgres start() throws Exception {
    var bin = binaries();
    boolean root = "root".equals(System.getProperty("user.name"));
    var dir = Files.createTempDirectory("k2-pg-");
    var pg = new ThrowawayPostgres(bin, dir, freePort(), root);
    try {
      if (root) {
        try {
          Files.setOwner(dir, dir.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("postgres"));
        } catch (UserPrincipalNotFoundException e) {
          throw new AssertionError("running as root, PostgreSQL needs a user 'postgres' to run as (Debian's postgresql package creates it)", e);
        }
      }
      pg.run(List.of(bin.resolve("initdb").toString(), "-D", pg.data().toString(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"));
      pg.startAgain();
      return pg;
    } catch (Throwable t) {
      pg.close();
      throw t;
    }
  }

  /** The directory of initdb and pg_ctl: {@code K2_PG_BIN}, or the newest {@code /usr/lib/postgresql/N/bin}. */
  static Path binaries() throws IOException {
    var env = System.getenv("K2_PG_BIN");
    Path found = null;
    if (env != null) {
      found = Path.of(env);
    } else if (Files.isDirectory(Path.of("/usr/lib/postgresql"))) {
      try (var versions = Files.list(Path.of("/usr/lib/postgresql"))) {
        found = versions.map(v -> v.resolve("bin")).filter(b -> Files.isExecutable(b.resolve("pg_ctl")))
            .max(Comparator.comparingInt(b -> versionOf(b.getParent().getFileName().toString()))).orElse(null);
      }
    }
    if (found == null || !Files.isExecutable(found.resolve("initdb")) || !Files.isExecutable(found.resolve("pg_ctl"))) {
      String why = "no PostgreSQL server binaries (initdb, pg_ctl) in " + (env != null ? env : "/usr/lib/postgresql/*/bin");
      if ("1".equals(System.getenv("K2_REQUIRE_POSTGRES"))) throw new AssertionError(why);
      Assumptions.abort(why);
    }
    return found;
  }

  private static int versionOf(String name) {
    try {
      return Integer.parseInt(name.split("\\.")[0]);
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  private static int freePort() throws IOException {
    try (var s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private Path data() { return dir.resolve("data"); }

  public int port() { return port; }

  /** The JDBC URL of its database {@code postgres} (user postgres, no password). */
  public String url() { return "jdbc:postgresql://127.0.0.1:" + port + "/postgres"; }

  /** Starts the server (again) and returns once it accepts connections. */
  public void startAgain() throws Exception {
    run(List.of(bin.resolve("pg_ctl").toString(), "-D", data().toString(), "-l", dir.resolve("server.log").toString(),
        "-o", "-p " + port + " -k " + dir + " -c listen_addresses=127.0.0.1 -c fsync=off", "-w", "-t", Long.toString(WAIT_SECONDS), "start"));
    running = true;
  }

  /**
   * Stops the server as an outage would: {@code fast} mode, so open connections are cut and transactions in progress
   * roll back; returns once it is down.
   */
  public void stop() throws Exception {
    run(List.of(bin.resolve("pg_ctl").toString(), "-D", data().toString(), "-m", "fast", "-w", "-t", Long.toString(WAIT_SECONDS), "stop"));
    running = false;
  }

  /** The server's log, for a failing test's message. */
  public String log() {
    try {
      return Files.readString(dir.resolve("server.log"));
    } catch (IOException e) {
      return "(no server log: " + e.getMessage() + ")";
    }
  }

  private void run(List<String> command) throws Exception {
    var cmd = new ArrayList<String>();
    if (asPostgresUser) cmd.addAll(List.of("runuser", "-u", "postgres", "--"));
    cmd.addAll(command);
    var out = dir.resolve("command.log");
    var p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
    if (!p.waitFor(WAIT_SECONDS + 10, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError(String.join(" ", cmd) + " did not finish within " + (WAIT_SECONDS + 10) + " s");
    }
    if (p.exitValue() != 0) {
      throw new AssertionError(String.join(" ", cmd) + " failed (exit " + p.exitValue() + "):\n" + Files.readString(out) + "\n" + log());
    }
  }

  /** Stops the server if it runs (immediately: its data is thrown away) and deletes its directory. */
  @Override public void close() {
    try {
      if (running) run(List.of(bin.resolve("pg_ctl").toString(), "-D", data().toString(), "-m", "immediate", "-w", "stop"));
    } catch (Exception e) {
      System.err.println("could not stop the test's PostgreSQL in " + dir + ": " + e.getMessage());
    }
    running = false;
    try (var files = Files.walk(dir)) {
      for (var f : files.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
    } catch (IOException e) {
      System.err.println("could not delete " + dir + ": " + e);
    }
  }
}
