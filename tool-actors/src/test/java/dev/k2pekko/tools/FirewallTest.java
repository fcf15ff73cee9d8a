package dev.k2pekko.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.CallsRefused;
import dev.k2pekko.protocol.EndEpisode;
import dev.k2pekko.protocol.OpenEpisode;
import dev.k2pekko.protocol.ToolCall;
import dev.k2pekko.protocol.ToolError;
import dev.k2pekko.protocol.ToolResult;
import dev.k2pekko.protocol.WorldSnapshot;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every kind of refusal, each shown not to reach the tool: the refused calls are writes (notes.append, files.write),
 * and the episode's world state at its end holds exactly the writes of the calls that passed.
 */
class FirewallTest {
  static final ActorTestKit KIT = ActorTestKit.create(com.typesafe.config.ConfigFactory.parseString(
      "pekko.actor.provider = local\npekko.actor.serialize-messages = on").withFallback(com.typesafe.config.ConfigFactory.load()));
  static final ToolUniverse U = ToolUniverse.generate(7, Stochasticity.NONE);
  static final ToolWorker.Settings WORKER = new ToolWorker.Settings(7, 4096, Duration.ofMinutes(1));
  static final List<String> OFFERED = List.of("notes.append", "notes.read", "files.write", "calc.add");

  @AfterAll static void stop() { KIT.shutdownTestKit(); }

  @TempDir Path tmp;

  private final List<CallsRefused.Refusal> audit = Collections.synchronizedList(new ArrayList<>());
  private int callNo;

  private ActorRef<dev.k2pekko.protocol.ToolCommand> worker(Firewall.Limit perAgent, Firewall.Limit perTool, Path sandbox) {
    var fw = new Firewall(new Firewall.Settings(true, perAgent, perTool, 4096, sandbox, Set.of("path", "paths", "source", "destination")));
    return KIT.spawn(ToolWorker.create(U, WORKER, fw, audit::add));
  }

  private ToolResult call(ActorRef<dev.k2pekko.protocol.ToolCommand> w, String episode, String tool, Map<String, Object> args) {
    var probe = KIT.<ToolResult>createTestProbe();
    w.tell(new ToolCall(episode, "call_" + callNo++, tool, args, probe.getRef()));
    return probe.receiveMessage();
  }

  private Map<String, String> end(ActorRef<dev.k2pekko.protocol.ToolCommand> w, String episode) {
    var probe = KIT.<WorldSnapshot>createTestProbe();
    w.tell(new EndEpisode(episode, probe.getRef()));
    return probe.receiveMessage().state();
  }

  private static void assertRefused(ToolError kind, ToolResult r) {
    assertEquals(kind, r.error(), r.content());
    assertTrue(kind.refusal());
    assertTrue(r.content().contains("\"refused\":\"" + kind.name() + "\""), r.content());
  }

  @Test void onlyOfferedToolsOfAnOpenedEpisodeRun() {
    var w = worker(Firewall.Limit.NONE, Firewall.Limit.NONE, null);
    // never opened: nothing was offered
    assertRefused(ToolError.NOT_OFFERED, call(w, "stray", "notes.append", Map.of("text", "stray")));
    assertEquals(Map.of(), end(w, "stray"));

    w.tell(new OpenEpisode("ep", "agent-1", OFFERED));
    assertRefused(ToolError.NOT_OFFERED, call(w, "ep", "notes.write", Map.of("text", "overwritten")));
    assertRefused(ToolError.NOT_OFFERED, call(w, "ep", "calc.max", Map.of("a", 1L, "b", 2L)));
    assertRefused(ToolError.NOT_OFFERED, call(w, "ep", "no.such.tool", Map.of()));
    assertTrue(call(w, "ep", "notes.append", Map.of("text", "one")).ok());
    assertEquals("3", call(w, "ep", "calc.add", Map.of("a", 1L, "b", 2L)).content());
    assertEquals(Map.of("notes:notes", "one"), end(w, "ep"));
    assertEquals(List.of("NOT_OFFERED", "NOT_OFFERED", "NOT_OFFERED", "NOT_OFFERED"), audit.stream().map(CallsRefused.Refusal::reason).toList());
    assertEquals("calc.max", audit.get(2).tool());
    assertEquals("agent-1", audit.get(2).agentId());
    assertNull(audit.get(0).agentId());
  }

  @Test void perAgentAndPerToolTokenBuckets() {
    // refill so slow (one token in 1000 s) that only the burst passes
    var w = worker(new Firewall.Limit(0.001, 3), Firewall.Limit.NONE, null);
    w.tell(new OpenEpisode("a1", "agent-1", OFFERED));
    w.tell(new OpenEpisode("a2", "agent-2", OFFERED));
    int passed = 0;
    for (int i = 0; i < 10; i++) {
      var r = call(w, "a1", "notes.append", Map.of("text", "line" + i));
      if (r.ok()) passed++;
      else assertRefused(ToolError.RATE_LIMITED, r);
    }
    assertEquals(3, passed);
    assertTrue(call(w, "a2", "notes.append", Map.of("text", "other agent")).ok(), "another agent has its own bucket");
    assertEquals(Map.of("notes:notes", "line0\nline1\nline2"), end(w, "a1"));
    assertEquals(7, audit.size());

    var t = worker(Firewall.Limit.NONE, new Firewall.Limit(0.001, 2), null);
    for (int i = 0; i < 4; i++) t.tell(new OpenEpisode("t" + i, "agent-" + i, OFFERED));
    var outcomes = new ArrayList<ToolError>();
    for (int i = 0; i < 4; i++) outcomes.add(call(t, "t" + i, "notes.append", Map.of("text", "x" + i)).error());
    assertEquals(java.util.Arrays.asList(null, null, ToolError.RATE_LIMITED, ToolError.RATE_LIMITED), outcomes);
    assertTrue(call(t, "t3", "calc.add", Map.of("a", 1L, "b", 1L)).ok(), "another tool has its own bucket");
    assertEquals(Map.of(), end(t, "t2"));
    assertEquals(Map.of(), end(t, "t3"));
    assertEquals(Map.of("notes:notes", "x1"), end(t, "t1"));
  }

  /** Episodes take their agent's tokens a few at a time; what an episode leaves goes back, so the burst is the burst. */
  @Test void leasedTokensAreNeitherLostNorMultiplied() {
    var limit = new Firewall.Limit(0.001, 80);
    assertEquals(8, Firewall.leaseSize(limit));
    assertEquals(1, Firewall.leaseSize(new Firewall.Limit(0.001, 3)));
    var fw = new Firewall(new Firewall.Settings(true, limit, Firewall.Limit.NONE, 4096, null, Set.of()));
    var e1 = fw.open("agent", List.of("t"));
    for (int i = 0; i < 5; i++) assertNull(fw.check(e1, "t", Map.of(), null));
    fw.close(e1);
    var e2 = fw.open("agent", List.of("t"));
    assertEquals(75, passes(fw, e2, 100), "the 3 tokens e1 leased and did not spend came back");
    fw.close(e2);

    // two episodes of one agent at once: the one holding a lease makes the other's refusal come early, never late
    var e3 = fw.open("busy", List.of("t"));
    var e4 = fw.open("busy", List.of("t"));
    assertNull(fw.check(e3, "t", Map.of(), null));
    assertEquals(72, passes(fw, e4, 100));
    fw.close(e3);
    assertEquals(7, passes(fw, e4, 100)); // 1 + 72 + 7: the burst of 80, no more
  }

  private static int passes(Firewall fw, Firewall.Gate gate, int tries) {
    int n = 0;
    for (int i = 0; i < tries; i++) {
      var r = fw.check(gate, "t", Map.of(), null);
      if (r == null) n++;
      else assertEquals(ToolError.RATE_LIMITED, r.reason());
    }
    return n;
  }

  @Test void payloadCap() {
    var w = worker(Firewall.Limit.NONE, Firewall.Limit.NONE, null);
    w.tell(new OpenEpisode("ep", "agent-1", OFFERED));
    assertRefused(ToolError.PAYLOAD_TOO_LARGE, call(w, "ep", "notes.append", Map.of("text", "x".repeat(5000))));
    assertEquals(Map.of(), end(w, "ep"));
  }

  @Test void virtualSandboxTakesOnlyRelativePathsWithoutDotDot() {
    var w = worker(Firewall.Limit.NONE, Firewall.Limit.NONE, null);
    w.tell(new OpenEpisode("ep", "agent-1", OFFERED));
    for (var bad : List.of("../secret.txt", "reports/../../x", "/etc/passwd", "~/x", "a\0b")) {
      assertRefused(ToolError.PATH_OUTSIDE_SANDBOX, call(w, "ep", "files.write", Map.of("path", bad, "content", "pwned")));
    }
    // a path argument the tool does not declare is not looked at by the firewall (only declared ones are), and the
    // schema check refuses the call before it reaches the tool
    var undeclared = call(w, "ep", "notes.append", Map.of("text", "x", "path", "../secret.txt"));
    assertEquals(ToolError.INVALID_ARGUMENTS, undeclared.error());
    assertTrue(call(w, "ep", "files.write", Map.of("path", "reports/r1.txt", "content", "12")).ok());
    assertEquals(Map.of("files:file:reports/r1.txt", "12"), end(w, "ep"));
  }

  @Test void dotDotSegmentsAreFoundWhereverTheyStand() {
    for (var bad : List.of("..", "../x", "a/..", "a/../b", "a\\..\\b", "a//../b", "/..")) assertTrue(Firewall.hasDotDotSegment(bad), bad);
    for (var fine : List.of("", ".", "...", "..a", "a..", "a/.../b", "a/.b/..c", "./x", "a/b.")) assertFalse(Firewall.hasDotDotSegment(fine), fine);
  }

  @Test void aGateOfManyToolsOffersExactlyThose() {
    var fw = new Firewall(new Firewall.Settings(true, Firewall.Limit.NONE, Firewall.Limit.NONE, 4096, null, Set.of()));
    var many = new java.util.ArrayList<String>();
    for (int i = 0; i < 40; i++) many.add("t.tool" + i);
    var gate = fw.open("a", many);
    assertNull(fw.check(gate, "t.tool39", Map.of(), null));
    assertEquals(ToolError.NOT_OFFERED, fw.check(gate, "t.tool40", Map.of(), null).reason());
    var few = fw.open("a", List.of(new String("t.tool1"), "t.tool2"));
    assertNull(fw.check(few, new String("t.tool1"), Map.of(), null), "names are compared by value, not by instance");
    assertEquals(ToolError.NOT_OFFERED, fw.check(few, "t.tool3", Map.of(), null).reason());
  }

  @Test void realSandboxRefusesEscapesAndSymlinksOut() throws Exception {
    var sandbox = Files.createDirectories(tmp.resolve("sandbox"));
    var outside = Files.createDirectories(tmp.resolve("outside"));
    Files.createDirectories(sandbox.resolve("reports"));
    Files.createSymbolicLink(sandbox.resolve("escape"), outside);
    Files.createSymbolicLink(sandbox.resolve("dangling"), outside.resolve("not-yet"));
    Files.createSymbolicLink(sandbox.resolve("inner"), sandbox.resolve("reports"));
    var w = worker(Firewall.Limit.NONE, Firewall.Limit.NONE, sandbox);
    w.tell(new OpenEpisode("ep", "agent-1", OFFERED));
    for (var bad : List.of("../outside/x.txt", "reports/../../outside/x", outside.resolve("x.txt").toString(), "/etc/passwd",
        "escape/x.txt", "escape", "dangling", "dangling/deeper/x.txt")) {
      assertRefused(ToolError.PATH_OUTSIDE_SANDBOX, call(w, "ep", "files.write", Map.of("path", bad, "content", "pwned")));
    }
    // array-valued path arguments are checked element by element
    assertNull(Firewall.outside("reports/a", sandbox));
    var fw = new Firewall(new Firewall.Settings(true, Firewall.Limit.NONE, Firewall.Limit.NONE, 4096, sandbox, Set.of("paths")));
    assertEquals(ToolError.PATH_OUTSIDE_SANDBOX,
        fw.check(fw.open("a", Set.of("fs.read_multiple")), "fs.read_multiple", Map.of("paths", List.of("reports/a", "escape/b")), null).reason());
    assertNull(fw.check(fw.open("a", Set.of("fs.read_multiple")), "fs.read_multiple", Map.of("paths", List.of("reports/a", "inner/b")), null));

    assertTrue(call(w, "ep", "files.write", Map.of("path", "reports/r1.txt", "content", "12")).ok());
    assertTrue(call(w, "ep", "files.write", Map.of("path", "inner/r2.txt", "content", "13")).ok(), "a symlink inside the sandbox is fine");
    assertTrue(call(w, "ep", "files.write", Map.of("path", sandbox.resolve("new.txt").toString(), "content", "14")).ok(),
        "an absolute path inside the sandbox is fine");
    assertEquals(Set.of("files:file:reports/r1.txt", "files:file:inner/r2.txt", "files:file:" + sandbox.resolve("new.txt")),
        end(w, "ep").keySet());
    assertEquals(8, audit.size());
    try (var listing = Files.list(outside)) {
      assertEquals(0, listing.count());
    }
  }

  @Test void offWhenDisabled() {
    var fw = new Firewall(new Firewall.Settings(true, Firewall.Limit.NONE, Firewall.Limit.NONE, 4096, null, Set.of("path")));
    fw.setEnabled(false);
    var w = KIT.spawn(ToolWorker.create(U, WORKER, fw, audit::add));
    assertTrue(call(w, "never-opened", "notes.write", Map.of("text", "ok")).ok());
    assertEquals(0, audit.size());
  }
}
