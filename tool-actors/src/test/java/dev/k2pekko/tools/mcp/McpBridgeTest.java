package dev.k2pekko.tools.mcp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.CallsRefused;
import dev.k2pekko.protocol.EndEpisode;
import dev.k2pekko.protocol.OpenEpisode;
import dev.k2pekko.protocol.ToolCall;
import dev.k2pekko.protocol.ToolCommand;
import dev.k2pekko.protocol.ToolError;
import dev.k2pekko.protocol.ToolResult;
import dev.k2pekko.protocol.WorldSnapshot;
import dev.k2pekko.tools.Firewall;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import dev.k2pekko.tools.ToolWorker;
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
 * The MCP bridge against the real npm servers of package-lock.json (memory, filesystem, everything), started as
 * processes by the SDK's stdio transport, with calls going agent -> tool worker (firewall) -> server actor -> server;
 * and against bad servers: one that does not exist, one that hangs, one that prints garbage, one that dies mid-call,
 * answers a huge result or lists an invalid schema. Every failure is a structured error naming the server.
 */
class McpBridgeTest {
  static final ActorTestKit KIT = ActorTestKit.create(com.typesafe.config.ConfigFactory.parseString(
      "pekko.actor.provider = local").withFallback(com.typesafe.config.ConfigFactory.load()));
  static final ToolUniverse U = ToolUniverse.generate(7, Stochasticity.NONE);
  static final McpServer.Settings SETTINGS = new McpServer.Settings(Duration.ofSeconds(30), Duration.ofSeconds(10),
      Duration.ofMillis(200), Duration.ofSeconds(2), 256 * 1024, 16 << 20);

  @AfterAll static void stop() { KIT.shutdownTestKit(); }

  @TempDir Path tmp;
  private final List<CallsRefused.Refusal> audit = Collections.synchronizedList(new ArrayList<>());
  private int callNo;

  static Path root() {
    for (var p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isRegularFile(p.resolve("package-lock.json")) && Files.isDirectory(p.resolve("tool-actors"))) {
        if (!Files.isDirectory(p.resolve("node_modules/@modelcontextprotocol"))) {
          throw new AssertionError("the MCP servers are not installed under " + p + "/node_modules: run `npm ci` there (./k2 test does)");
        }
        return p;
      }
    }
    throw new AssertionError("no package-lock.json above " + Path.of("").toAbsolutePath());
  }

  static String server(String pkg) { return root().resolve("node_modules/@modelcontextprotocol/" + pkg + "/dist/index.js").toString(); }

  private McpServer.Tools start(McpTools registry, McpServer.Spec spec, McpServer.Settings settings) {
    var ref = KIT.spawn(McpServer.create(spec, settings, registry));
    var probe = KIT.<McpServer.Tools>createTestProbe();
    ref.tell(new McpServer.GetTools(probe.getRef()));
    return probe.receiveMessage(Duration.ofSeconds(60));
  }

  private ActorRef<ToolCommand> worker(McpTools registry, Path sandbox) {
    var fw = new Firewall(new Firewall.Settings(true, Firewall.Limit.NONE, Firewall.Limit.NONE, 4096, sandbox,
        Set.of("path", "paths", "source", "destination")));
    return KIT.spawn(ToolWorker.create(U, new ToolWorker.Settings(7, 4096, Duration.ofMinutes(1)), fw, audit::add, registry));
  }

  private ToolResult call(ActorRef<ToolCommand> w, String episode, String tool, Map<String, Object> args) {
    var probe = KIT.<ToolResult>createTestProbe();
    w.tell(new ToolCall(episode, "call_" + callNo++, tool, args, probe.getRef()));
    return probe.receiveMessage(Duration.ofSeconds(30));
  }

  @Test void realServersBehindToolActors() throws Exception {
    var registry = new McpTools();
    var sandbox = Files.createDirectories(tmp.resolve("sandbox"));
    var outside = Files.createDirectories(tmp.resolve("outside"));
    Files.createSymbolicLink(sandbox.resolve("escape"), outside);
    var mem = start(registry, McpServer.Spec.parse("mem=env MEMORY_FILE_PATH=" + tmp.resolve("memory.jsonl") + " node " + server("server-memory")), SETTINGS);
    var fs = start(registry, McpServer.Spec.parse("fs=node " + server("server-filesystem") + " " + sandbox), SETTINGS);
    var every = start(registry, McpServer.Spec.parse("every=node " + server("server-everything")), SETTINGS);
    for (var t : List.of(mem, fs, every)) assertNull(t.error(), t.toString());
    var names = registry.all().stream().map(McpTools.Tool::name).toList();
    assertTrue(names.containsAll(List.of("mem.create_entities", "mem.read_graph", "fs.write_file", "fs.read_text_file", "every.echo")), names.toString());
    assertEquals("object", registry.tool("mem.create_entities").inputSchema().get("type"));
    assertTrue(registry.tool("fs.write_file").toOpenAi().path("function").path("parameters").path("properties").has("path"));

    var w = worker(registry, sandbox);
    w.tell(new OpenEpisode("ep/1", "agent-1", List.of("mem.create_entities", "mem.read_graph", "fs.write_file",
        "fs.read_text_file", "every.echo")));
    var created = call(w, "ep/1", "mem.create_entities", Map.of("entities", List.of(Map.of("name", "Ada", "entityType", "person",
        "observations", List.of("wrote the first program")))));
    assertTrue(created.ok(), created.content());
    var graph = call(w, "ep/1", "mem.read_graph", Map.of());
    assertTrue(graph.ok() && graph.content().contains("Ada") && graph.content().contains("wrote the first program"), graph.content());

    var written = call(w, "ep/1", "fs.write_file", Map.of("path", "a.txt", "content", "12"));
    assertTrue(written.ok(), written.toString());
    var read = call(w, "ep/1", "fs.read_text_file", Map.of("path", "a.txt"));
    assertEquals("12", read.content().strip(), read.toString());
    var missing = call(w, "ep/1", "fs.read_text_file", Map.of("path", "none.txt"));
    assertEquals(ToolError.TOOL_FAILED, missing.error(), missing.toString());

    // the firewall stops escapes before the server sees them
    for (var bad : List.of("../outside/x.txt", "/etc/passwd", outside.resolve("y.txt").toString(),
        sandbox.resolve("escape/z.txt").toString(), sandbox.resolve("other-episode.txt").toString())) {
      var r = call(w, "ep/1", "fs.write_file", Map.of("path", bad, "content", "pwned"));
      assertEquals(ToolError.PATH_OUTSIDE_SANDBOX, r.error(), bad + ": " + r);
    }
    assertEquals(ToolError.NOT_OFFERED, call(w, "ep/1", "fs.move_file", Map.of("source", "a.txt", "destination", "b.txt")).error());
    try (var listing = Files.list(outside)) {
      assertEquals(0, listing.count(), "nothing may reach outside the sandbox");
    }
    assertEquals(6, audit.size());

    var echo = call(w, "ep/1", "every.echo", Map.of("message", "hello"));
    assertTrue(echo.ok() && echo.content().contains("hello"), echo.toString());

    // the episode's files are its end state, then gone
    var snap = KIT.<WorldSnapshot>createTestProbe();
    w.tell(new EndEpisode("ep/1", snap.getRef()));
    var state = snap.receiveMessage(Duration.ofSeconds(10)).state();
    assertEquals("12", state.get("fs:a.txt"), state.toString());
    try (var listing = Files.list(sandbox)) {
      assertEquals(List.of("escape"), listing.map(p -> p.getFileName().toString()).toList());
    }
  }

  /** Entities kept in the memory server's graph after {@code n} agents each create one at the same time. */
  private long concurrentCreates(McpServer.Settings settings, String file, int n) {
    var registry = new McpTools();
    var mem = start(registry, McpServer.Spec.parse("mem=env MEMORY_FILE_PATH=" + tmp.resolve(file) + " node " + server("server-memory")), settings);
    assertNull(mem.error(), mem.toString());
    var w = worker(registry, null);
    var probe = KIT.<ToolResult>createTestProbe();
    for (int i = 0; i < n; i++) {
      w.tell(new OpenEpisode("ep/" + i, "agent-" + i, List.of("mem.create_entities", "mem.read_graph")));
      w.tell(new ToolCall("ep/" + i, "call_0", "mem.create_entities", Map.of("entities", List.of(Map.of("name", "E" + i, "entityType", "thing",
          "observations", List.of("number " + i)))), probe.getRef()));
    }
    for (var r : probe.receiveSeveralMessages(n, Duration.ofSeconds(60))) assertTrue(r.ok(), r.toString());
    var graph = call(w, "ep/0", "mem.read_graph", Map.of());
    return java.util.stream.IntStream.range(0, n).filter(i -> graph.content().contains("\"E" + i + "\"")).count();
  }

  @Test void theMemoryServerKeepsConcurrentWritesOnlyOneAtATime() {
    int n = 40;
    // the server reads its file, adds, and rewrites it per call: overlapping calls overwrite each other's entities
    long overlapping = concurrentCreates(SETTINGS, "overlapping.jsonl", n);
    assertTrue(overlapping < n, "without k2.mcp.one-at-a-time some writes are lost (kept " + overlapping + " of " + n + ")");
    var serial = new McpServer.Settings(SETTINGS.startTimeout(), SETTINGS.callTimeout(), SETTINGS.minBackoff(), SETTINGS.maxBackoff(),
        SETTINGS.maxResultBytes(), SETTINGS.maxMessageBytes(), Set.of("mem"));
    assertEquals(n, concurrentCreates(serial, "serial.jsonl", n), "one at a time, every entity is kept");
  }

  @Test void episodesOnTheKnowledgeGraphAreKeptApartAndReadBack() throws Exception {
    var registry = new McpTools();
    var file = tmp.resolve("graph.jsonl");
    var serial = new McpServer.Settings(SETTINGS.startTimeout(), SETTINGS.callTimeout(), SETTINGS.minBackoff(), SETTINGS.maxBackoff(),
        SETTINGS.maxResultBytes(), SETTINGS.maxMessageBytes(), Set.of("mem"));
    assertNull(start(registry, McpServer.Spec.parse("mem=env MEMORY_FILE_PATH=" + file + " node " + server("server-memory")), serial).error());
    var fw = new Firewall(new Firewall.Settings(true, Firewall.Limit.NONE, Firewall.Limit.NONE, 4096, null, Set.of("path")));
    var w = KIT.spawn(ToolWorker.create(U, new ToolWorker.Settings(7, 4096, Duration.ofMinutes(1), "mem"), fw, audit::add, registry));
    var tools = List.of("mem.create_entities", "mem.create_relations", "mem.open_nodes");
    var results = KIT.<ToolResult>createTestProbe();
    // two episodes at once, both about "Ada": each sees only its own
    for (var ep : List.of("kg/1", "kg/2")) {
      w.tell(new OpenEpisode(ep, "agent-" + ep, tools));
      w.tell(new ToolCall(ep, "call_0", "mem.create_entities", Map.of("entities", List.of(
          Map.of("name", "Ada", "entityType", "person", "observations", List.of("episode " + ep)),
          Map.of("name", "Acme", "entityType", "organization", "observations", List.of()))), results.getRef()));
    }
    for (var r : results.receiveSeveralMessages(2, Duration.ofSeconds(30))) {
      assertTrue(r.ok() && r.content().contains("\"Ada\"") && !r.content().contains("~"), "the agent sees its own names: " + r);
    }
    var rel = call(w, "kg/1", "mem.create_relations", Map.of("relations", List.of(Map.of("from", "Ada", "to", "Acme", "relationType", "works_at"))));
    assertTrue(rel.ok(), rel.toString());
    var open = call(w, "kg/2", "mem.open_nodes", Map.of("names", List.of("Ada")));
    assertTrue(open.content().contains("episode kg/2") && !open.content().contains("episode kg/1") && !open.content().contains("works_at"), open.content());
    try (var lines = Files.lines(file)) {
      assertEquals(4, lines.filter(l -> l.contains("\"type\":\"entity\"")).count(), "on the server: two of each, apart");
    }

    var snap = KIT.<WorldSnapshot>createTestProbe();
    w.tell(new EndEpisode("kg/1", snap.getRef()));
    var one = snap.receiveMessage(Duration.ofSeconds(30)).state();
    assertEquals(Map.of("kg:entity:Ada", "person|episode kg/1", "kg:entity:Acme", "organization|", "kg:relation:Ada|works_at|Acme", "present"), one);
    w.tell(new EndEpisode("kg/2", snap.getRef()));
    assertEquals(Map.of("kg:entity:Ada", "person|episode kg/2", "kg:entity:Acme", "organization|"), snap.receiveMessage(Duration.ofSeconds(30)).state());
    // read back, then deleted from the server
    snap.awaitAssert(Duration.ofSeconds(30), () -> {
      try (var lines = Files.lines(file)) {
        assertEquals(0, lines.filter(l -> !l.isBlank()).count(), "the episodes' entities and relations are gone");
      } catch (java.io.IOException e) {
        throw new AssertionError(e);
      }
      return null;
    });
    // read_graph would show other episodes' entities: a kg task never offers it, and the firewall refuses it
    assertEquals(ToolError.NOT_OFFERED, call(w, "kg/3", "mem.read_graph", Map.of()).error());
  }

  @Test void badServersGiveClearErrorsNamingThem() throws Exception {
    var registry = new McpTools();
    var quick = new McpServer.Settings(Duration.ofSeconds(3), Duration.ofSeconds(2), Duration.ofMillis(200), Duration.ofSeconds(1), 64 * 1024, 16 << 20);
    var none = start(registry, McpServer.Spec.parse("nope=/nonexistent/mcp-server"), quick);
    assertNotNull(none.error());
    assertEquals("MCP server nope failed to start: command not found or not executable: /nonexistent/mcp-server", none.error());
    var hung = start(registry, McpServer.Spec.parse("hung=sleep 600"), quick);
    assertTrue(hung.error().contains("MCP server hung") && hung.error().contains("no answer to initialize"), hung.error());
    var script = Path.of(getClass().getResource("/bad-mcp-server.mjs").toURI()).toString();
    var garbage = start(registry, McpServer.Spec.parse("garbage=node " + script + " garbage"), quick);
    assertTrue(garbage.error().contains("MCP server garbage"), garbage.error());
    assertTrue(registry.isEmpty(), "no tools from servers that never came up");

    var bad = start(registry, McpServer.Spec.parse("bad=node " + script + " crash"), quick);
    assertNull(bad.error(), bad.toString());
    assertEquals(List.of("bad.crash", "bad.hang", "bad.huge", "bad.ping"), registry.all().stream().map(McpTools.Tool::name).toList(),
        "the tool with an invalid schema is skipped");
    var w = worker(registry, null);
    w.tell(new OpenEpisode("ep", "agent-1", List.of("bad.ping", "bad.crash", "bad.huge", "bad.hang")));
    assertEquals("pong", call(w, "ep", "bad.ping", Map.of()).content());
    var huge = call(w, "ep", "bad.huge", Map.of());
    assertEquals(ToolError.PAYLOAD_TOO_LARGE, huge.error());
    assertTrue(huge.content().contains("MCP server bad returned"), huge.content());
    var hang = call(w, "ep", "bad.hang", Map.of());
    assertEquals(ToolError.TIMEOUT, hang.error());
    assertTrue(hang.content().contains("MCP server bad gave no answer to hang"), hang.content());
    var crash = call(w, "ep", "bad.crash", Map.of());
    assertEquals(ToolError.INTERNAL, crash.error(), crash.toString());
    assertTrue(crash.content().contains("MCP server bad exited") && crash.content().contains("crash"), crash.content());
    // restarted with backoff: pong again (calls meanwhile get a structured, retryable error)
    var probe = KIT.createTestProbe();
    probe.awaitAssert(Duration.ofSeconds(20), Duration.ofMillis(200), () -> {
      var r = call(w, "ep", "bad.ping", Map.of());
      if (!r.ok()) {
        assertEquals(ToolError.TRANSIENT_FAILURE, r.error(), r.toString());
        assertTrue(r.content().contains("MCP server bad"), r.content());
      }
      assertTrue(r.ok(), r.toString());
      assertEquals("pong", r.content());
      return null;
    });
    assertFalse(audit.stream().anyMatch(r -> true), "no refusals here");
  }
}
