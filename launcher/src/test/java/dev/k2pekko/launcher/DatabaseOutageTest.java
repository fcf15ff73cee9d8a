package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.agents.ThrowawayPostgres;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14 item 3, for real: `k2 run --synthesis-only` in a JVM of its own against a PostgreSQL server of the test's
 * own ({@link ThrowawayPostgres}), which the test stops mid-run. Back after 20 s: the run completes, and the journal
 * holds every trajectory the summary counts as accepted, each once. Never back: the run ends with exit code 4 and
 * says so, and what it counted as persisted is in the journal once the database is back.
 */
class DatabaseOutageTest {
  static final Duration OUTAGE = Duration.ofSeconds(20);

  @Test void aRunOutlivesTwentySecondsWithoutItsDatabase(@TempDir Path dir) throws Exception {
    try (var pg = ThrowawayPostgres.start()) {
      var conf = config(dir, "");
      var run = start(dir, conf, pg.url());
      try {
      waitForJournalWrites(pg.url(), run);

      pg.stop();
      long stopped = System.currentTimeMillis();
      // the outage itself: the scenario is a database away for this long, not a wait for something to happen
      Thread.sleep(OUTAGE.toMillis());
      assertTrue(run.process().isAlive(), "the run did not outlive the outage:\n" + run.err());
      pg.startAgain();
      long back = System.currentTimeMillis();

      assertTrue(run.process().waitFor(4, TimeUnit.MINUTES), "the run did not finish within 4 minutes of the database's return:\n" + run.err());
      assertEquals(0, run.process().exitValue(), run.err());
      assertTrue(run.err().contains("did not record batch"), "writes failed during the outage and were sent again:\n" + run.err());
      var summary = new K2CliTest.Result(0, run.out(), "").lastJson();
      assertTrue(summary.get("complete").asBoolean(), summary.toString());
      long accepted = summary.get("accepted").asLong();
      assertEquals(accepted, summary.get("persisted").asLong(), "--persist accepted: every accepted trajectory, and only those");

      // the journal holds each accepted trajectory once (journal check: no id twice), none lost
      var check = K2CliTest.k2("journal", "check", "--jdbc-url", pg.url(), "--config", conf.toString(), "--json");
      assertEquals(0, check.code(), check.out() + check.err());
      assertEquals(accepted, check.lastJson().get("trajectories").asLong(), "accepted trajectories in the journal");

      try (var c = DriverManager.getConnection(pg.url(), "postgres", ""); var st = c.createStatement();
           var rs = st.executeQuery("SELECT min(write_timestamp) FROM event_journal WHERE persistence_id LIKE 'collector|%' AND write_timestamp > " + back)) {
        rs.next();
        long firstWrite = rs.getLong(1);
        assertTrue(firstWrite > 0, "the collectors wrote after the database came back");
        System.out.printf("database outage: down %.1f s; first trajectories written %.1f s after it was back; %,d accepted, all in the journal; "
                + "fingerprint %s, rejections %s%n",
            (back - stopped) / 1000.0, (firstWrite - back) / 1000.0, accepted, summary.get("fingerprint").asText(), summary.get("rejection_reasons"));
      }
      } finally {
        run.kill();
      }
    }
  }

  @Test void aDatabaseThatNeverReturnsEndsTheRunWithExitCode4(@TempDir Path dir) throws Exception {
    try (var pg = ThrowawayPostgres.start()) {
      var conf = config(dir, "k2.journal.give-up-after = 10s");
      var run = start(dir, conf, pg.url());
      try {
      waitForJournalWrites(pg.url(), run);
      waitForRecordWritesAfterTheFirstBatches(pg.url(), run);
      pg.stop();

      assertTrue(run.process().waitFor(3, TimeUnit.MINUTES), "the run did not give up within 3 minutes:\n" + run.err());
      assertEquals(K2.UNREACHABLE, run.process().exitValue(), run.err());
      var m = Pattern.compile("k2 run: the journal database \\(.*\\) has confirmed no write for \\d+ s \\(k2.journal.give-up-after = 10 s\\): "
          + "run \\S+ stopped with [\\d,]+ of 60,000 episodes done; the ([\\d,]+) trajectories it counted as persisted").matcher(run.err());
      assertTrue(m.find(), "one line saying why:\n" + run.err());
      long counted = Long.parseLong(m.group(1).replace(",", ""));

      pg.startAgain();
      var check = K2CliTest.k2("journal", "check", "--jdbc-url", pg.url(), "--config", conf.toString(), "--json");
      assertEquals(0, check.code(), check.out() + check.err());
      long inJournal = check.lastJson().get("trajectories").asLong();
      // counted: those of the first batches at least (the record wrote three times after them), and none not in the
      // journal; the journal may hold more (written before the outage, confirmed too late to be counted)
      assertTrue(counted > 0 && inJournal >= counted, m.group() + "...: what the run counted before the outage is in the journal: " + counted + " counted, " + inJournal + " there");
      System.out.printf("database never back: %,d trajectories counted as persisted, %,d in the journal%n", counted, inJournal);
      } finally {
        run.kill();
      }
    }
  }

  private static Path config(Path dir, String extra) throws Exception {
    var conf = dir.resolve("outage.conf");
    Files.writeString(conf, """
        k2.journal.dir = "%s"
        pekko.loglevel = WARNING
        %s
        """.formatted(dir.toAbsolutePath(), extra));
    return conf;
  }

  record Child(Process process, Path outFile, Path errFile) {
    String out() throws Exception { return Files.readString(outFile); }
    String err() throws Exception { return Files.readString(errFile); }

    /** Ends the run's JVM if a failed assertion left it running. */
    void kill() throws InterruptedException {
      if (process.isAlive()) process.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
    }
  }

  /**
   * Waits until the run's record has written three times since the collectors wrote their first eight batches: the
   * record takes the outcomes of kept trajectories first, so by then it holds those of the batches' trajectories
   * whose confirmations reached the run (one write may have been under way when they came).
   */
  private static void waitForRecordWritesAfterTheFirstBatches(String url, Child run) throws Exception {
    long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
    while (true) {
      assertTrue(run.process().isAlive(), "the run ended before the outage:\n" + run.err());
      assertTrue(System.nanoTime() < deadline, "the run's record did not write three times after the first batches within 2 minutes:\n" + run.err());
      try (var c = DriverManager.getConnection(url, "postgres", ""); var st = c.createStatement();
           var rs = st.executeQuery("SELECT count(*) FROM event_journal WHERE persistence_id LIKE 'run|%' AND write_timestamp > "
               + "(SELECT max(write_timestamp) FROM (SELECT write_timestamp FROM event_journal WHERE persistence_id LIKE 'collector|%' ORDER BY ordering LIMIT 8) f)")) {
        rs.next();
        if (rs.getLong(1) >= 3) return;
      }
      Thread.sleep(50);
    }
  }

  /** 1,000 agents x 60 episodes (about 15 s of work undisturbed on 2 quiet cores), in a JVM of its own. */
  private static Child start(Path dir, Path conf, String url) throws Exception {
    var cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow()));
    cmd.addAll(List.of("-Xss2m", "-XX:+UseParallelGC", "--enable-native-access=ALL-UNNAMED", "--add-opens", "java.base/java.lang=ALL-UNNAMED",
        "--add-opens", "java.base/java.util=ALL-UNNAMED", "--add-opens", "java.base/java.nio=ALL-UNNAMED", "--add-opens",
        "java.base/sun.nio.ch=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), K2.class.getName()));
    cmd.addAll(List.of("run", "--synthesis-only", "--config", conf.toString(), "--jdbc-url", url, "--agents", "1000", "--episodes", "60",
        "--seed", "7", "--json", "--quiet"));
    var out = dir.resolve("run.out");
    var err = dir.resolve("run.err");
    return new Child(new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start(), out, err);
  }

  /**
   * Waits until the run's collectors have written batches to the journal and its record holds episodes (its plan is
   * the first event; the first outcomes may be rejections only), so that the outage comes mid-run.
   */
  private static void waitForJournalWrites(String url, Child run) throws Exception {
    long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
    while (true) {
      assertTrue(run.process().isAlive(), "the run ended before the outage:\n" + run.err());
      assertTrue(System.nanoTime() < deadline, "no journal write within 2 minutes:\n" + run.err());
      try (var c = DriverManager.getConnection(url, "postgres", ""); var st = c.createStatement();
           var rs = st.executeQuery("SELECT count(*) FILTER (WHERE persistence_id LIKE 'collector|%'), count(*) FILTER (WHERE persistence_id LIKE 'run|%') FROM event_journal")) {
        rs.next();
        if (rs.getLong(1) >= 8 && rs.getLong(2) >= 10) return;
      } catch (SQLException notYet) {
        // the run has not created the journal's tables yet
      }
      Thread.sleep(50);
    }
  }
}
