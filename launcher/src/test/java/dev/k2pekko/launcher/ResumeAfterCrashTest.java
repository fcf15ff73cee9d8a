package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 13's RL row: `k2 run` in a JVM of its own, killed (destroyForcibly, SIGKILL) once the journal holds part of
 * RL round 2, then `k2 run --resume`. The resumed run must end with the counts of an uninterrupted one: every round's
 * rl-tasks x K rollouts in the journal, each once, every trajectory consumed once, a success rate for both rounds,
 * and the summary saying what it resumed. On PostgreSQL, so that this test can watch the journal while the run writes it.
 */
class ResumeAfterCrashTest {
  static final String PG = "jdbc:postgresql://127.0.0.1:5432/";

  @Test void anRlRoundKilledMidwayIsCompletedOnResume(@TempDir Path dir) throws Exception {
    try (var c = DriverManager.getConnection(PG + "test", "postgres", "")) {
      c.isValid(2);
    } catch (SQLException e) {
      if ("1".equals(System.getenv("K2_REQUIRE_POSTGRES"))) throw new AssertionError("PostgreSQL is required but unreachable", e);
      Assumptions.abort("PostgreSQL not reachable: " + e.getMessage());
    }
    var db = "k2resume_" + Long.toString(System.nanoTime(), 36);
    try (var c = DriverManager.getConnection(PG + "test", "postgres", ""); var st = c.createStatement()) {
      st.execute("CREATE DATABASE " + db);
    }
    Process child = null;
    try {
      var url = PG + db;
      var conf = dir.resolve("small.conf");
      Files.writeString(conf, """
          k2.journal.dir = "%s"
          pekko.remote.artery.canonical.port = 0
          pekko.loglevel = WARNING
          k2.judge.flush-interval = 20ms
          k2.ps.checkpoint-every = 5
          k2.pipeline { eval-tasks = 5, eval-trials = 2, synth-agents = 20, synth-episodes = 10, rl-rounds = 2, rl-tasks = 100, rl-rollouts = 2,
                        stage-timeout = 3 minutes }
          k2.open.eval-tasks = 4
          """.formatted(dir.toAbsolutePath()));
      String[] run = {"run", "--config", conf.toString(), "--jdbc-url", url, "--seed", "7", "--quiet", "--json"};

      var cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow()));
      cmd.addAll(List.of("-Xss2m", "-XX:+UseParallelGC", "--enable-native-access=ALL-UNNAMED", "--add-opens", "java.base/java.lang=ALL-UNNAMED",
          "--add-opens", "java.base/java.util=ALL-UNNAMED", "--add-opens", "java.base/java.nio=ALL-UNNAMED", "--add-opens",
          "java.base/sun.nio.ch=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), K2.class.getName()));
      cmd.addAll(List.of(run));
      var log = dir.resolve("first-run.log");
      child = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();

      // wait for round 1 to be recorded, then for the first trajectories of round 2 (evaluations persist nothing; the
      // run record's events are not trajectories)
      long deadline = System.nanoTime() + Duration.ofMinutes(6).toNanos();
      long afterRound1 = -1, round2Events = 0;
      try (var c = DriverManager.getConnection(url, "postgres", "")) {
        while (true) {
          assertTrue(child.isAlive(), "the run ended before it could be killed in round 2:\n" + Files.readString(log));
          assertTrue(System.nanoTime() < deadline, "round 2 did not start within 6 minutes:\n" + Files.readString(log));
          try (var st = c.createStatement()) {
            if (afterRound1 < 0) {
              try (var rs = st.executeQuery("SELECT count(*) FROM k2_pipeline_stages WHERE stage = 'rl-1'")) {
                rs.next();
                if (rs.getLong(1) > 0) {
                  try (var m = st.executeQuery("SELECT coalesce(max(ordering), 0) FROM event_journal")) {
                    m.next();
                    afterRound1 = m.getLong(1);
                  }
                }
              }
            } else {
              try (var rs = st.executeQuery("SELECT count(*) FROM event_journal WHERE persistence_id LIKE 'collector|%' AND ordering > " + afterRound1)) {
                rs.next();
                round2Events = rs.getLong(1);
              }
              if (round2Events > 0) break;
            }
          } catch (SQLException notYet) {
            // the run has not created its tables yet
          }
          Thread.sleep(50);
        }
      }
      child.destroyForcibly();
      assertTrue(child.waitFor(30, TimeUnit.SECONDS), "the killed JVM did not go");

      var before = K2CliTest.k2("journal", "check", "--jdbc-url", url, "--config", conf.toString(), "--json");
      assertEquals(0, before.code(), before.out() + before.err());
      long inJournal = before.lastJson().get("trajectories").asLong();

      var resumed = K2CliTest.k2(run[0], "--resume", run[1], run[2], run[3], run[4], run[5], run[6], run[7], run[8]);
      assertEquals(0, resumed.code(), resumed.err());
      var j = resumed.lastJson();
      long synthesized = j.get("synthesized").asLong(), rollouts = j.get("rollouts").asLong();
      assertEquals(2 * 100 * 2, rollouts, "rounds x tasks x K rollouts, as an uninterrupted run has");
      for (var s : j.get("rl_round_success")) assertFalse(s.isNull(), "a success rate for every round: " + j.get("rl_round_success"));
      assertTrue(j.get("resumed").toString().contains("rl 2: completed"), j.get("resumed").toString());
      assertTrue(j.get("resumed").toString().contains("rl 1: done before"), j.get("resumed").toString());
      // the open evaluation after SFT was recorded before the kill and taken from the record; the one after RL was run
      assertTrue(j.get("resumed").toString().contains("eval open-sft: done before"), j.get("resumed").toString());
      assertEquals(4, j.get("open").get("rl").get("tasks").asInt(), j.get("open").toString());
      assertTrue(inJournal > synthesized + rollouts / 2 && inJournal < synthesized + rollouts, "the kill left round 2 part-done: " + inJournal);

      var after = K2CliTest.k2("journal", "check", "--jdbc-url", url, "--config", conf.toString(), "--json");
      assertEquals(0, after.code(), after.out() + after.err());
      assertEquals(synthesized + rollouts, after.lastJson().get("trajectories").asLong(), "the journal holds every trajectory once");
      var ps = j.get("ps");
      assertEquals(0, ps.path("duplicates").asLong());
      assertEquals(synthesized + rollouts, ps.path("trajectories").asLong() + ps.path("trajectories_rejected").asLong(), "every trajectory consumed once");
    } finally {
      if (child != null && child.isAlive()) child.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
      try (var c = DriverManager.getConnection(PG + "test", "postgres", ""); var st = c.createStatement()) {
        st.execute("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
      }
    }
  }
}
