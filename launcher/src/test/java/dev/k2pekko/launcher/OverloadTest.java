package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.agents.ThrowawayPostgres;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14 item 5: a node with ten times the agents of the default run (10,000 against 1,000, which already keep its
 * cores busy) in a JVM with a 512 MB heap, whose journal stops answering for 20 s (its own PostgreSQL, stopped), so
 * that finished episodes pile up faster than they can be written. The judge's backlog stays under
 * k2.judge.max-backlog plus one episode per agent, agents wait ({@code k2_agent_waits_total}), the heap stays under the
 * JVM's bound, /ready keeps answering (its p99 is printed), and the run completes with every accepted trajectory in the
 * journal once.
 */
class OverloadTest {
  static final int AGENTS = 10_000, MAX_BACKLOG = 2_000;
  static final long HEAP_BOUND = 512L << 20;

  @Test void tenTimesTheAgentsAndNoJournalFor20Seconds(@TempDir Path dir) throws Exception {
    try (var pg = ThrowawayPostgres.start()) {
      var conf = dir.resolve("overload.conf");
      Files.writeString(conf, """
          k2.journal.dir = "%s"
          pekko.loglevel = WARNING
          k2.judge.max-backlog = %d
          """.formatted(dir.toAbsolutePath(), MAX_BACKLOG));
      var cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow()));
      cmd.addAll(List.of("-Xmx512m", "-Xss2m", "-XX:+UseParallelGC", "--enable-native-access=ALL-UNNAMED", "--add-opens", "java.base/java.lang=ALL-UNNAMED",
          "--add-opens", "java.base/java.util=ALL-UNNAMED", "--add-opens", "java.base/java.nio=ALL-UNNAMED", "--add-opens",
          "java.base/sun.nio.ch=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), K2.class.getName()));
      cmd.addAll(List.of("run", "--synthesis-only", "--config", conf.toString(), "--jdbc-url", pg.url(), "--agents", Integer.toString(AGENTS),
          "--episodes", "6", "--seed", "3", "--json", "--quiet", "--http-port", "0"));
      var out = dir.resolve("run.out");
      var err = dir.resolve("run.err");
      var run = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
      try {
        var ops = opsUrl(err, run);
        awaitJournalWrites(pg.url(), run, err);
        pg.stop();
        var http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        var ready = new ArrayList<Double>();
        double maxBacklog = 0, maxHeap = 0, waits = 0;
        long outageEnd = System.nanoTime() + DatabaseOutageTest.OUTAGE.toNanos(), nextScrape = 0;
        // during the outage: /ready every 100 ms, /metrics every second (each request's own time; /metrics is slow under load)
        while (System.nanoTime() < outageEnd) {
          assertTrue(run.isAlive(), "the run died during the outage:\n" + Files.readString(err));
          long t0 = System.nanoTime();
          var r = http.send(HttpRequest.newBuilder(ops.resolve("ready")).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
          ready.add((System.nanoTime() - t0) / 1e6);
          assertEquals(200, r.statusCode(), "/ready during the overload: " + r.body());
          if (System.nanoTime() > nextScrape) {
            nextScrape = System.nanoTime() + 1_000_000_000L;
            var m = http.send(HttpRequest.newBuilder(ops.resolve("metrics")).timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString()).body();
            maxBacklog = Math.max(maxBacklog, sum(m, "k2_collector_backlog"));
            maxHeap = Math.max(maxHeap, sum(m, "jvm_memory_used_bytes{area=\"heap\""));
            waits = Math.max(waits, sum(m, "k2_agent_waits_total"));
          }
          Thread.sleep(100);
        }
        pg.startAgain();
        assertTrue(run.waitFor(5, TimeUnit.MINUTES), "the run did not finish within 5 minutes of the journal's return:\n" + Files.readString(err));
        assertEquals(0, run.exitValue(), Files.readString(err));
        var summary = new K2CliTest.Result(0, Files.readString(out), "").lastJson();
        assertTrue(summary.get("complete").asBoolean(), summary.toString());
        var check = K2CliTest.k2("journal", "check", "--jdbc-url", pg.url(), "--config", conf.toString(), "--json");
        assertEquals(0, check.code(), check.out() + check.err());
        assertEquals(summary.get("accepted").asLong(), check.lastJson().get("trajectories").asLong(), "every accepted trajectory in the journal, once");

        Collections.sort(ready);
        double p50 = ready.get(ready.size() / 2), p99 = ready.get((int) Math.ceil(ready.size() * 0.99) - 1);
        System.out.printf("overload: %,d agents, journal away %d s: judge backlog at most %,.0f (limit %,d + one per agent), %,.0f episodes put off, "
                + "heap at most %,.0f MB of %d MB; /ready p50 %.1f ms, p99 %.1f ms over %d requests; %,d accepted, all in the journal%n",
            AGENTS, DatabaseOutageTest.OUTAGE.toSeconds(), maxBacklog, MAX_BACKLOG, waits, maxHeap / (1 << 20), HEAP_BOUND >> 20, p50, p99, ready.size(),
            summary.get("accepted").asLong());
        assertTrue(waits > 0, "agents waited for the journal (backpressure)");
        assertTrue(maxBacklog > 0 && maxBacklog <= MAX_BACKLOG + AGENTS, "the judge's backlog stays under its limit plus one episode per agent: " + maxBacklog);
        assertTrue(maxHeap > 0 && maxHeap < HEAP_BOUND, "heap " + maxHeap);
        assertTrue(p99 < 5_000, "/ready answers within 5 s (p99 " + p99 + " ms)");
      } finally {
        if (run.isAlive()) run.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
      }
    }
  }

  /** The sum of the samples of a metric family (lines starting with {@code prefix}) in the Prometheus text. */
  static double sum(String metrics, String prefix) {
    double s = 0;
    for (var line : metrics.split("\n")) {
      if (line.startsWith(prefix) && (line.charAt(prefix.length()) == ' ' || line.charAt(prefix.length()) == '{' || line.charAt(prefix.length()) == ',')) {
        s += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
      }
    }
    return s;
  }

  private static URI opsUrl(Path err, Process run) throws Exception {
    var p = Pattern.compile("k2: operations on (http://127\\.0\\.0\\.1:\\d+/)");
    long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
    while (true) {
      var m = p.matcher(Files.readString(err));
      if (m.find()) return URI.create(m.group(1));
      assertTrue(run.isAlive() && System.nanoTime() < deadline, "no operations endpoint within 2 minutes:\n" + Files.readString(err));
      Thread.sleep(50);
    }
  }

  private static void awaitJournalWrites(String url, Process run, Path err) throws Exception {
    long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
    while (true) {
      assertTrue(run.isAlive(), "the run ended before the outage:\n" + Files.readString(err));
      assertTrue(System.nanoTime() < deadline, "no journal write within 2 minutes:\n" + Files.readString(err));
      try (var c = DriverManager.getConnection(url, "postgres", ""); var st = c.createStatement();
           var rs = st.executeQuery("SELECT count(*) FROM event_journal WHERE persistence_id LIKE 'collector|%'")) {
        rs.next();
        if (rs.getLong(1) >= 4) return;
      } catch (SQLException notYet) {
        // no tables yet
      }
      Thread.sleep(50);
    }
  }
}
