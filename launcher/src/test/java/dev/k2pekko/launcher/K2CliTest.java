package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The k2 command as a user runs it: run, replay --count and export agree; a damaged journal is named and left alone. */
class K2CliTest {
  record Result(int code, String out, String err) {
    JsonNode lastJson() throws Exception {
      var lines = out.strip().split("\n");
      return new ObjectMapper().readTree(lines[lines.length - 1]);
    }
  }

  static synchronized Result k2(String... args) {
    var out = new ByteArrayOutputStream();
    var err = new ByteArrayOutputStream();
    var oldOut = System.out;
    var oldErr = System.err;
    System.setOut(new PrintStream(out, true));
    System.setErr(new PrintStream(err, true));
    try {
      var cl = K2.commandLine();
      cl.setOut(new java.io.PrintWriter(out, true));
      cl.setErr(new java.io.PrintWriter(err, true));
      return new Result(cl.execute(args), out.toString(), err.toString());
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
  }

  @Test void runReplayAndExportAgree(@TempDir Path dir) throws Exception {
    var data = dir.resolve("data").toString();
    var run = k2("run", "--synthesis-only", "--data-dir", data, "--agents", "25", "--episodes", "4", "--json", "--quiet");
    assertEquals(0, run.code(), run.err());
    var summary = run.lastJson();
    for (var f : new String[] {"agents", "episodes", "tool_calls", "accepted", "rejected", "persisted"}) assertTrue(summary.has(f), f);
    assertEquals(25, summary.get("agents").asInt());
    assertEquals(100, summary.get("episodes").asInt());
    assertEquals(summary.get("accepted").asLong(), summary.get("persisted").asLong());

    var count = k2("replay", "--data-dir", data, "--count", "--json");
    assertEquals(0, count.code(), count.err());
    assertEquals(summary.get("persisted").asLong(), count.lastJson().get("count").asLong());

    var file = dir.resolve("out.jsonl");
    var export = k2("export", "--data-dir", data, "--format", "jsonl", "--out", file.toString());
    assertEquals(0, export.code(), export.err());
    var lines = Files.readAllLines(file);
    assertEquals(summary.get("persisted").asLong(), lines.size());
    for (var line : lines) dev.k2pekko.agents.ChatExport.validate(line);
  }

  /**
   * A journal truncated to a quarter (the case): every command that reads it, and `run`, names the damage and
   * exits 5, and the file stays byte for byte as it was, with nothing created next to it. The intact journal checks
   * clean; a sequence gap and an undecodable event made in a copy are each found by `journal check`.
   */
  @Test void aDamagedJournalIsNamedAndLeftAsItIs(@TempDir Path dir) throws Exception {
    var data = dir.resolve("data");
    var run = k2("run", "--synthesis-only", "--data-dir", data.toString(), "--agents", "20", "--episodes", "4", "--json", "--quiet");
    assertEquals(0, run.code(), run.err());
    long persisted = run.lastJson().get("persisted").asLong();
    var clean = k2("journal", "check", "--data-dir", data.toString(), "--json");
    assertEquals(0, clean.code(), clean.err());
    assertEquals(persisted, clean.lastJson().get("trajectories").asLong());
    assertTrue(clean.lastJson().get("clean").asBoolean());

    var journal = data.resolve("k2-journal.mv.db");
    byte[] whole = Files.readAllBytes(journal);
    var damagedDir = dir.resolve("damaged");
    Files.createDirectories(damagedDir);
    var damaged = damagedDir.resolve("k2-journal.mv.db");
    Files.write(damaged, java.util.Arrays.copyOf(whole, whole.length / 4));
    byte[] quarter = Files.readAllBytes(damaged);
    var d = damagedDir.toString();
    var out = dir.resolve("out");
    Files.createDirectories(out);
    String[][] commands = {
        {"replay", "--count", "--data-dir", d}, {"export", "--out", out.resolve("t.jsonl").toString(), "--data-dir", d},
        {"report", "--data-dir", d, "--out", out.resolve("report").toString()}, {"journal", "check", "--data-dir", d},
        {"run", "--synthesis-only", "--agents", "1", "--episodes", "1", "--data-dir", d}, {"run", "--eval-tasks", "1", "--data-dir", d}};
    for (var c : commands) {
      var r = k2(c);
      assertEquals(5, r.code(), String.join(" ", c) + ": " + r.err());
      assertTrue(r.err().contains(damaged.toAbsolutePath() + " is damaged"), r.err());
      assertTrue(r.err().lines().count() == 1, "one line: " + r.err());
      assertTrue(java.util.Arrays.equals(quarter, Files.readAllBytes(damaged)), String.join(" ", c) + " changed the journal");
      try (var files = Files.list(damagedDir)) {
        assertEquals(java.util.List.of(damaged), files.toList(), String.join(" ", c) + " created files next to the journal");
      }
      try (var files = Files.list(out)) {
        assertEquals(0, files.count(), String.join(" ", c) + " wrote output");
      }
    }

    // a gap in a collector's sequence numbers, and an event that does not decode: journal check names both
    var copy = dir.resolve("edited");
    Files.createDirectories(copy);
    Files.write(copy.resolve("k2-journal.mv.db"), whole);
    try (var c = java.sql.DriverManager.getConnection("jdbc:h2:file:" + copy.resolve("k2-journal").toAbsolutePath(), "sa", "");
         var st = c.createStatement()) {
      st.execute("UPDATE \"event_journal\" SET \"sequence_number\" = \"sequence_number\" + 1 WHERE \"ordering\" = (SELECT max(\"ordering\") FROM \"event_journal\")");
      st.execute("UPDATE \"event_journal\" SET \"event_payload\" = X'00ff00' WHERE \"ordering\" = (SELECT min(\"ordering\") FROM \"event_journal\")");
    }
    var found = k2("journal", "check", "--data-dir", copy.toString());
    assertEquals(5, found.code(), found.out() + found.err());
    assertTrue(found.out().contains("was expected (a gap hides what follows it)"), found.out());
    assertTrue(found.out().contains("cannot decode"), found.out());
  }

  @Test void anUnreachableDatabaseIsOneClearMessage() {
    var r = k2("run", "--synthesis-only", "--journal", "postgres", "--jdbc-url", "jdbc:postgresql://127.0.0.1:1/test", "--agents", "1");
    assertEquals(4, r.code());
    assertTrue(r.err().contains("cannot reach the journal database at jdbc:postgresql://127.0.0.1:1/test"), r.err());
    assertTrue(r.err().lines().count() < 5, "no wall of stack traces: " + r.err());
  }
}
