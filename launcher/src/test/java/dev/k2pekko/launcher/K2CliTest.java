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

/** The k2 command as a user runs it: run, replay --count and export agree; bad flags give usage and exit 2. */
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

  @Test void badFlagsGiveUsageAndExitTwo() {
    var unknown = k2("run", "--bogus");
    assertEquals(2, unknown.code());
    assertTrue(unknown.err().contains("Usage: k2 run"), unknown.err());
    assertEquals(2, k2("run", "--synthesis-only", "--agents", "0").code());
    assertEquals(2, k2("run", "--synthesis-only", "--persist", "sometimes").code());
    assertEquals(2, k2("run", "--agents", "many").code());
    assertEquals(2, k2("run", "--mode", "sometimes").code());
    assertEquals(2, k2("run", "--learners", "0").code());
    assertEquals(2, k2("run", "--eval-tasks", "0").code());
    assertEquals(2, k2("run", "--resume", "--data-dir", "/nonexistent-k2-dir").code());
    assertEquals(2, k2("report", "--data-dir", "/nonexistent-k2-dir").code());
    assertEquals(2, k2("node", "--port", "2551", "--seeds", "nonsense", "--journal", "h2").code());
    assertEquals(2, k2("export", "--format", "csv", "--out", "x").code());
  }

  @Test void anUnreachableDatabaseIsOneClearMessage() {
    var r = k2("run", "--synthesis-only", "--journal", "postgres", "--jdbc-url", "jdbc:postgresql://127.0.0.1:1/test", "--agents", "1");
    assertEquals(4, r.code());
    assertTrue(r.err().contains("cannot reach the journal database at jdbc:postgresql://127.0.0.1:1/test"), r.err());
    assertTrue(r.err().lines().count() < 5, "no wall of stack traces: " + r.err());
  }
}
