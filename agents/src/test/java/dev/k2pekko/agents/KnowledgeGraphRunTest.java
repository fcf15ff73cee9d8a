package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.agents.tasks.KnowledgeGraphTasks;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.tools.ToolDirectory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Knowledge-graph tasks on the real {@code @modelcontextprotocol/server-memory} (npm, package-lock.json): many agents at
 * once, names from small pools so that concurrent episodes use the same ones; the teacher solves them, the judge
 * verifies the graph as read back from the server, the trajectories are persisted and replayed like the synthetic ones,
 * and the server's graph is empty afterwards. With the teacher writing wrong arguments, the judge sees the wrong graph.
 */
class KnowledgeGraphRunTest {
  static Path root() {
    for (var p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isRegularFile(p.resolve("package-lock.json")) && Files.isDirectory(p.resolve("agents"))) {
        if (!Files.isDirectory(p.resolve("node_modules/@modelcontextprotocol/server-memory"))) {
          throw new AssertionError("the MCP servers are not installed under " + p + "/node_modules: run `npm ci` there (./k2 test does)");
        }
        return p;
      }
    }
    throw new AssertionError("no package-lock.json above " + Path.of("").toAbsolutePath());
  }

  private static ActorSystem<Void> start(Path dir, Path graph, Map<String, Object> extra) {
    var o = new HashMap<String, Object>(extra);
    o.put("k2.mcp.servers", List.of("mem=env MEMORY_FILE_PATH=" + graph + " node "
        + root().resolve("node_modules/@modelcontextprotocol/server-memory/dist/index.js")));
    o.put("k2.mcp.one-at-a-time", List.of("mem"));
    o.put("k2.mcp.knowledge-graph", "mem");
    var config = TestNodes.h2(dir, o);
    JournalSchema.ensure(config);
    var system = K2Node.start("k2", config);
    var cluster = Cluster.get(system);
    cluster.manager().tell(Join.create(cluster.selfMember().address()));
    var up = ToolDirectory.get(system).awaitMcpServers(system, Duration.ofSeconds(60));
    assertTrue(up.stream().allMatch(t -> t.error() == null), up.toString());
    return system;
  }

  private static long entitiesOnTheServer(Path graph) throws Exception {
    if (!Files.exists(graph)) return 0;
    try (var lines = Files.lines(graph)) {
      return lines.filter(l -> !l.isBlank()).count();
    }
  }

  @Test void theTeacherSolvesThemAndTheJudgeReadsTheGraphBack(@TempDir Path dir) throws Exception {
    var graph = dir.resolve("graph.jsonl");
    var system = start(dir, graph, Map.of("k2.teacher.wrong-argument", 0.0, "k2.teacher.skip-step", 0.0, "k2.teacher.wrong-tool", 0.0,
        "k2.teacher.premature-answer", 0.0));
    try {
      var kit = ActorTestKit.create(system);
      var judged = kit.<Trajectory>createTestProbe();
      NodeServices.get(system).onJudged(judged.getRef());
      int agents = 12, episodes = 3;
      String runId = "kg-" + System.nanoTime();
      var summary = RunDriver.start(system, new RunDriver.RunSpec(runId, agents, episodes, 5, Agent.PersistMode.ALL, Duration.ofMinutes(3),
          new Agent.EpisodeSpec(Agent.Tasks.KG, "teacher", 0, 1)), s -> {}).get(4, TimeUnit.MINUTES);
      assertTrue(summary.complete(), summary.toString());
      assertEquals(agents * episodes, summary.get("episodes"));
      assertEquals(agents * episodes, summary.get("accepted"), "every episode's graph as the task asked, read back from the server: " + summary.counters());
      var seen = judged.receiveSeveralMessages(agents * episodes, Duration.ofSeconds(60));
      var people = new HashMap<String, Integer>();
      var difficulties = new java.util.TreeSet<Integer>();
      for (var t : seen) {
        assertEquals(KnowledgeGraphTasks.CATEGORY, t.category());
        assertTrue(t.tools().contains("mem.create_entities") && !t.tools().contains("mem.read_graph"), t.tools().toString());
        assertEquals("done", t.finalAnswer());
        for (var s : t.steps()) assertTrue(s.error() == null && !s.result().contains("~"), "the agent never sees another episode's names: " + s);
        people.merge(t.prompt().split(" ")[6], 1, Integer::sum);
        difficulties.add(t.difficulty());
      }
      assertEquals(java.util.Set.of(1, 2, 3), difficulties);
      assertTrue(people.values().stream().anyMatch(n -> n > 1), "concurrent episodes used the same names: " + people);
      // persisted and replayed like the synthetic ones
      var replayed = new ArrayList<Trajectory>();
      new TrajectoryReplay(system).forEach(TrajectoryReplay.Filter.ALL, Duration.ofSeconds(60), (tag, t) -> {
        if (t.trajectoryId().startsWith(runId + "/")) replayed.add(t);
      });
      assertEquals(agents * episodes, replayed.size());
      // the server's graph is empty again: every episode's entities were deleted after they were read back
      judged.awaitAssert(Duration.ofSeconds(30), () -> {
        try {
          assertEquals(0, entitiesOnTheServer(graph));
        } catch (Exception e) {
          throw new AssertionError(e);
        }
        return null;
      });
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  @Test void aGraphMissingPartsIsRejectedOnWhatTheServerHolds(@TempDir Path dir) throws Exception {
    var graph = dir.resolve("graph.jsonl");
    // the teacher skips half its steps: an episode is right exactly when it skipped none
    var system = start(dir, graph, Map.of("k2.teacher.wrong-argument", 0.0, "k2.teacher.skip-step", 0.5, "k2.teacher.wrong-tool", 0.0,
        "k2.teacher.premature-answer", 0.0));
    try {
      var kit = ActorTestKit.create(system);
      var judged = kit.<Trajectory>createTestProbe();
      NodeServices.get(system).onJudged(judged.getRef());
      int n = 8 * 3;
      var summary = RunDriver.start(system, new RunDriver.RunSpec("kg-skip-" + System.nanoTime(), 8, 3, 6, Agent.PersistMode.NONE,
          Duration.ofMinutes(2), new Agent.EpisodeSpec(Agent.Tasks.KG, "teacher", 0, 1)), s -> {}).get(3, TimeUnit.MINUTES);
      assertTrue(summary.complete(), summary.toString());
      int skipped = 0;
      for (var t : judged.receiveSeveralMessages(n, Duration.ofSeconds(60))) {
        boolean complete = t.steps().size() == t.difficulty();
        assertEquals(complete, t.verdict().accepted(), t.verdict() + " " + t.steps());
        if (!complete) {
          skipped++;
          assertTrue(t.verdict().reasons().stream().anyMatch(r -> r.startsWith("end-state: kg:")), t.verdict().reasons().toString());
        }
      }
      assertTrue(skipped > 0 && skipped < n, "some episodes skipped a step, some none: " + skipped);
      assertEquals(n - skipped, summary.get("accepted"));
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  /**
   * A served model driving the same tasks over HTTP (--policy openai): a small scripted chat-completions server on
   * loopback that records a person from the prompt and then answers done. It gets the memory server's own input
   * schemas with the offered tools; the one-step tasks are accepted, the others rejected on the graph read back.
   */
  @Test void aServedModelPlaysThemOverHttp(@TempDir Path dir) throws Exception {
    var json = new com.fasterxml.jackson.databind.ObjectMapper();
    var schemaSent = new java.util.concurrent.atomic.AtomicBoolean();
    var http = com.sun.net.httpserver.HttpServer.create(new java.net.InetSocketAddress("127.0.0.1", 0), 64);
    http.setExecutor(java.util.concurrent.Executors.newFixedThreadPool(4));
    var person = java.util.regex.Pattern.compile("record that (\\w+) is a person who ([^,.;]+)");
    http.createContext("/v1/chat/completions", ex -> {
      try (ex) {
        var req = json.readTree(ex.getRequestBody().readAllBytes());
        for (var t : req.path("tools")) {
          if (t.path("function").path("name").asText().equals("mem__create_entities")
              && t.path("function").path("parameters").path("properties").has("entities")) schemaSent.set(true);
        }
        var messages = req.path("messages");
        boolean called = false;
        String prompt = "";
        for (var m : messages) {
          if (m.path("role").asText().equals("tool")) called = true;
          if (m.path("role").asText().equals("user")) prompt = m.path("content").asText();
        }
        var message = json.createObjectNode().put("role", "assistant");
        var mt = person.matcher(prompt);
        if (!called && mt.find()) {
          message.putNull("content");
          var args = json.createObjectNode();
          args.putArray("entities").addObject().put("name", mt.group(1)).put("entityType", "person").putArray("observations").add(mt.group(2));
          message.putArray("tool_calls").addObject().put("id", "call_1").put("type", "function")
              .putObject("function").put("name", "mem__create_entities").put("arguments", args.toString());
        } else {
          message.put("content", "done");
        }
        var body = json.createObjectNode();
        body.putArray("choices").addObject().put("index", 0).set("message", message);
        byte[] out = json.writeValueAsBytes(body);
        ex.getResponseHeaders().add("Content-Type", "application/json");
        ex.sendResponseHeaders(200, out.length);
        ex.getResponseBody().write(out);
      }
    });
    http.start();
    var graph = dir.resolve("graph.jsonl");
    var system = start(dir, graph, Map.of("k2.policy.openai.base-url", "http://127.0.0.1:" + http.getAddress().getPort() + "/v1",
        "k2.policy.openai.model", "scripted"));
    try {
      var kit = ActorTestKit.create(system);
      var judged = kit.<Trajectory>createTestProbe();
      NodeServices.get(system).onJudged(judged.getRef());
      var summary = RunDriver.start(system, new RunDriver.RunSpec("kg-http-" + System.nanoTime(), 6, 3, 9, Agent.PersistMode.NONE,
          Duration.ofMinutes(2), new Agent.EpisodeSpec(Agent.Tasks.KG, "openai", 1.0, 1)), s -> {}).get(3, TimeUnit.MINUTES);
      assertTrue(summary.complete(), summary.toString());
      int oneStep = 0;
      for (var t : judged.receiveSeveralMessages(18, Duration.ofSeconds(60))) {
        assertEquals("openai:scripted", t.policy());
        assertEquals(t.difficulty() == 1, t.verdict().accepted(), t.verdict().toString());
        if (t.difficulty() == 1) oneStep++;
        else assertTrue(t.verdict().reasons().stream().anyMatch(r -> r.startsWith("end-state: kg:")), t.verdict().reasons().toString());
      }
      assertTrue(oneStep > 0 && oneStep < 18, "both kinds of task: " + oneStep);
      assertEquals(oneStep, summary.get("accepted"));
      assertTrue(schemaSent.get(), "the memory server's input schema went out with its tools");
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
      http.stop(0);
    }
  }
}
