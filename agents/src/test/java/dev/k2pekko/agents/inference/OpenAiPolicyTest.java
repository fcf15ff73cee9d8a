package dev.k2pekko.agents.inference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import com.typesafe.config.ConfigFactory;
import dev.k2pekko.agents.policy.Action;
import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The adapter to a served LLM against a real HTTP server on loopback (the JDK's {@code com.sun.net.httpserver}), each
 * test giving it a way to answer: the requests it writes, the actions it reads back, and every bad answer (500s,
 * malformed JSON, a hang, a tool not offered, arguments that are no object, an unreachable port) as one clear failed
 * {@link OpenAiPolicy.Reply} with its kind, retried only where a retry can help; at most max-concurrent in flight.
 */
class OpenAiPolicyTest {
  static final ActorTestKit kit = ActorTestKit.create(ConfigFactory.load(ConfigFactory.parseMap(Map.of("pekko.actor.provider", "local"))
      .withFallback(ConfigFactory.parseResources("application.conf"))));
  static final ToolUniverse U = ToolUniverse.generate(7, Stochasticity.NONE);
  static final ObjectMapper JSON = new ObjectMapper();
  /** A task whose first tool is a calc tool, offered with the others of its plan. */
  static final Task TASK = new TaskGenerator(U, 5).coreOnly(true).taskOfDifficulty(3, "t", 2);

  @AfterAll static void stopKit() { kit.shutdownTestKit(); }

  /** What the test server answers to one request: status, body, extra headers. */
  record Answer(int status, String body, Map<String, String> headers) {
    static Answer ok(String body) { return new Answer(200, body, Map.of()); }
  }

  interface Handler {
    Answer answer(JsonNode request, int n) throws Exception;
  }

  private final List<HttpServer> servers = new CopyOnWriteArrayList<>();
  private final List<JsonNode> requests = new CopyOnWriteArrayList<>();
  private final AtomicInteger count = new AtomicInteger();
  private final CountDownLatch release = new CountDownLatch(1);

  @AfterEach void stopServer() {
    release.countDown();
    for (var server : servers) server.stop(0);
  }

  private URI serve(Handler h) throws IOException {
    var server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 64);
    servers.add(server);
    server.setExecutor(Executors.newFixedThreadPool(16));
    server.createContext("/v1/chat/completions", ex -> handle(ex, h));
    server.start();
    return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/v1");
  }

  private void handle(HttpExchange ex, Handler h) throws IOException {
    try (ex) {
      var req = JSON.readTree(ex.getRequestBody().readAllBytes());
      requests.add(req);
      Answer a;
      try {
        a = h.answer(req, count.incrementAndGet());
      } catch (Exception e) {
        a = new Answer(599, "handler failed: " + e, Map.of());
      }
      if (a == null) return; // the exchange is dropped: the client sees the connection close
      a.headers().forEach((k, v) -> ex.getResponseHeaders().add(k, v));
      ex.getResponseHeaders().add("Content-Type", "application/json");
      byte[] body = a.body().getBytes(StandardCharsets.UTF_8);
      ex.sendResponseHeaders(a.status(), body.length == 0 ? -1 : body.length);
      if (body.length > 0) ex.getResponseBody().write(body);
    }
  }

  static OpenAiPolicy.Settings settings(URI base, int retries, Duration timeout) {
    return new OpenAiPolicy.Settings(base, "tiny", null, 4, timeout, retries, Duration.ofMillis(10), Duration.ofMillis(50),
        Duration.ofSeconds(20), true, 0, 1 << 20);
  }

  static String toolCall(String name, String arguments) {
    return "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
        + "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"" + name + "\",\"arguments\":" + JSON.valueToTree(arguments)
        + "}}]},\"finish_reason\":\"tool_calls\",\"logprobs\":{\"content\":[{\"token\":\"a\",\"logprob\":-0.5},{\"token\":\"b\",\"logprob\":-0.25}]}}],"
        + "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"total_tokens\":12}}";
  }

  static String text(String content) {
    return "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":" + JSON.valueToTree(content) + "},\"finish_reason\":\"stop\"}]}";
  }

  private OpenAiPolicy.Reply first(ActorRef<OpenAiPolicy.Command> policy, String episode) {
    var replies = kit.<OpenAiPolicy.Reply>createTestProbe();
    policy.tell(new OpenAiPolicy.Begin(episode, TASK, 5, 0.7, replies.getRef()));
    return replies.receiveMessage(Duration.ofSeconds(30));
  }

  private OpenAiPolicy.Stats stats(ActorRef<OpenAiPolicy.Command> policy) {
    var p = kit.<OpenAiPolicy.Stats>createTestProbe();
    policy.tell(new OpenAiPolicy.GetStats(p.getRef()));
    return p.receiveMessage(Duration.ofSeconds(10));
  }

  @Test void aConversationGoesOutAsChatMessagesAndToolCallsComeBackAsActions() throws Exception {
    String tool = TASK.toolsOffered().getFirst();
    String sent = tool.replace(".", "__");
    var base = serve((req, n) -> n == 1 ? Answer.ok(toolCall(sent, "{\"a\": 7, \"b\": 5}")) : Answer.ok(text("12")));
    var policy = kit.spawn(OpenAiPolicy.create(settings(base, 0, Duration.ofSeconds(10)), U));
    var replies = kit.<OpenAiPolicy.Reply>createTestProbe();
    policy.tell(new OpenAiPolicy.Begin("e1", TASK, 5, 0.7, replies.getRef()));
    var r1 = replies.receiveMessage(Duration.ofSeconds(30));
    assertNull(r1.error());
    var call = assertInstanceOf(Action.Call.class, r1.action());
    assertEquals(tool, call.tool(), "OpenAI's form of the name is read back as the universe's");
    assertEquals(Map.of("a", 7L, "b", 5L), call.arguments(), "integers as Long, as everywhere else");
    assertEquals(-0.75, r1.logProb(), 1e-12);
    assertEquals(2, r1.tokens());

    policy.tell(new OpenAiPolicy.Continue("e1", new Step("call_0", tool, call.arguments(), "12", null, false), replies.getRef()));
    var r2 = replies.receiveMessage(Duration.ofSeconds(30));
    assertEquals(new Action.Answer("12"), r2.action());
    assertTrue(Double.isNaN(r2.logProb()), "no logprobs in the answer: NaN, not 0");

    var req1 = requests.get(0);
    assertEquals("tiny", req1.path("model").asText());
    assertEquals("system", req1.path("messages").get(0).path("role").asText());
    assertEquals(TASK.prompt(), req1.path("messages").get(1).path("content").asText());
    assertEquals(TASK.toolsOffered().size(), req1.path("tools").size());
    assertTrue(req1.path("tools").findValuesAsText("name").contains(sent), req1.path("tools").toString());
    assertTrue(req1.path("logprobs").asBoolean());
    assertEquals(0.7, req1.path("temperature").asDouble());
    var msgs = requests.get(1).path("messages");
    assertEquals(4, msgs.size(), "system, user, the assistant's call, the tool's result: " + msgs);
    assertEquals(sent, msgs.get(2).path("tool_calls").get(0).path("function").path("name").asText());
    assertEquals("tool", msgs.get(3).path("role").asText());
    assertEquals(msgs.get(2).path("tool_calls").get(0).path("id").asText(), msgs.get(3).path("tool_call_id").asText());
    assertEquals("12", msgs.get(3).path("content").asText());
    assertEquals(2, stats(policy).answered());
  }

  @Test void aServerThatKeepsFailingWith500IsTriedRetriesPlusOneTimesThenOneClearFailure() throws Exception {
    var base = serve((req, n) -> new Answer(500, "{\"error\":{\"message\":\"the GPU fell over\",\"type\":\"server_error\"}}", Map.of()));
    var policy = kit.spawn(OpenAiPolicy.create(settings(base, 2, Duration.ofSeconds(10)), U));
    var r = first(policy, "e1");
    assertNull(r.action());
    assertTrue(r.error().startsWith("policy-http-status: HTTP 500"), r.error());
    assertTrue(r.error().contains("the GPU fell over") && r.error().contains("after 3 tries"), r.error());
    assertEquals(3, count.get());
    var s = stats(policy);
    assertEquals(2, s.retries());
    assertEquals(Map.of(OpenAiPolicy.Failure.HTTP_STATUS, 1L), s.failed());
  }

  @Test void a429ThenAnAnswerIsRetriedAndTheRetryAfterHeaderHonoured() throws Exception {
    var base = serve((req, n) -> n == 1 ? new Answer(429, "{\"error\":{\"message\":\"slow down\"}}", Map.of("Retry-After", "0.02"))
        : Answer.ok(text("done")));
    var policy = kit.spawn(OpenAiPolicy.create(settings(base, 2, Duration.ofSeconds(10)), U));
    var r = first(policy, "e1");
    assertEquals(new Action.Answer("done"), r.action());
    assertEquals(2, count.get());
    assertEquals(1, stats(policy).retries());
  }

  @Test void aClientErrorIsNotRetried() throws Exception {
    var base = serve((req, n) -> new Answer(400, "{\"error\":{\"message\":\"context too long\"}}", Map.of()));
    var policy = kit.spawn(OpenAiPolicy.create(settings(base, 3, Duration.ofSeconds(10)), U));
    var r = first(policy, "e1");
    assertTrue(r.error().startsWith("policy-http-status: HTTP 400") && r.error().contains("context too long"), r.error());
    assertEquals(1, count.get());
  }

  @Test void malformedJsonIsABadResponseAtOnce() throws Exception {
    var base = serve((req, n) -> Answer.ok("{\"choices\": [ {\"message\": "));
    var policy = kit.spawn(OpenAiPolicy.create(settings(base, 3, Duration.ofSeconds(10)), U));
    var r = first(policy, "e1");
    assertTrue(r.error().startsWith("policy-bad-response: the body is not JSON"), r.error());
    assertEquals(1, count.get());
    var base2 = serve((req, n) -> Answer.ok("{\"object\": \"chat.completion\", \"choices\": []}"));
    var policy2 = kit.spawn(OpenAiPolicy.create(settings(base2, 3, Duration.ofSeconds(10)), U));
    var r2 = first(policy2, "e2");
    assertTrue(r2.error().startsWith("policy-bad-response: no choices[0].message"), r2.error());
  }

  @Test void aServerThatHangsTimesOutOnEveryTry() throws Exception {
    var base = serve((req, n) -> {
      release.await(60, TimeUnit.SECONDS); // until the test ends: never within the client's timeout
      return Answer.ok(text("too late"));
    });
    var policy = kit.spawn(OpenAiPolicy.create(settings(base, 1, Duration.ofMillis(300)), U));
    var r = first(policy, "e1");
    assertTrue(r.error().startsWith("policy-http-timeout: ") && r.error().contains("after 2 tries"), r.error());
    // the client gave up on its second try after 300 ms; on a loaded machine the server's handler may not have been
    // scheduled yet to count it
    kit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
      assertEquals(2, count.get());
      return null;
    });
    assertEquals(Map.of(OpenAiPolicy.Failure.TIMEOUT, 1L), stats(policy).failed());
  }

  @Test void aToolNotOfferedAndArgumentsThatAreNoObjectFailTheAction() throws Exception {
    var base = serve((req, n) -> n == 1 ? Answer.ok(toolCall("calc__max_of_everything", "{}")) : Answer.ok(toolCall(
        TASK.toolsOffered().getFirst().replace(".", "__"), "[1, 2]")));
    var policy = kit.spawn(OpenAiPolicy.create(settings(base, 3, Duration.ofSeconds(10)), U));
    var r = first(policy, "e1");
    assertTrue(r.error().startsWith("policy-unknown-tool: the model called calc__max_of_everything"), r.error());
    var r2 = first(policy, "e2");
    assertTrue(r2.error().startsWith("policy-bad-arguments: "), r2.error());
    assertEquals(2, count.get(), "neither is retried");
  }

  @Test void aResponseOverTheLimitIsABadResponse() throws Exception {
    var base = serve((req, n) -> Answer.ok(text("x".repeat(2 << 20))));
    var policy = kit.spawn(OpenAiPolicy.create(settings(base, 3, Duration.ofSeconds(10)), U));
    var r = first(policy, "e1");
    assertTrue(r.error().startsWith("policy-bad-response: the response is over 1048576 bytes"), r.error());
    assertEquals(1, count.get());
  }

  @Test void anUnreachableServerIsRetriedThenReported() throws Exception {
    int port;
    try (var s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    } // closed: nothing listens there now
    var policy = kit.spawn(OpenAiPolicy.create(settings(URI.create("http://127.0.0.1:" + port + "/v1"), 2, Duration.ofSeconds(5)), U));
    var r = first(policy, "e1");
    assertTrue(r.error().startsWith("policy-unreachable: cannot connect to http://127.0.0.1:" + port), r.error());
    assertEquals(2, stats(policy).retries());
  }

  @Test void atMostMaxConcurrentRequestsAreInFlight() throws Exception {
    int episodes = 10;
    var inFlight = new AtomicInteger();
    var maxSeen = new AtomicInteger();
    var lock = new Object();
    var base = serve((req, n) -> {
      int now = inFlight.incrementAndGet();
      maxSeen.accumulateAndGet(now, Math::max);
      // an odd request waits for the next one to arrive: the pairs in flight together show that 2 run at once, and never 3
      synchronized (lock) {
        lock.notifyAll();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (n % 2 == 1 && count.get() <= n && System.nanoTime() < deadline) lock.wait(100);
      }
      inFlight.decrementAndGet();
      return Answer.ok(text("ok"));
    });
    var s = new OpenAiPolicy.Settings(base, "tiny", null, 2, Duration.ofSeconds(10), 0, Duration.ofMillis(10), Duration.ofMillis(50),
        Duration.ofSeconds(30), false, 0, 1 << 20);
    var policy = kit.spawn(OpenAiPolicy.create(s, U));
    var replies = kit.<OpenAiPolicy.Reply>createTestProbe();
    for (int i = 0; i < episodes; i++) policy.tell(new OpenAiPolicy.Begin("e" + i, TASK, i, 1.0, replies.getRef()));
    var got = replies.receiveSeveralMessages(episodes, Duration.ofSeconds(60));
    for (var r : got) assertNull(r.error(), r.error());
    assertEquals(2, maxSeen.get(), "requests in flight at once");
    assertTrue(requests.stream().noneMatch(r -> r.has("logprobs")), "logprobs off: not asked for");
  }

  @Test void aLateAnswerOfAnEndedEpisodeIsDropped() throws Exception {
    var arrived = new CountDownLatch(1);
    var base = serve((req, n) -> {
      arrived.countDown();
      release.await(60, TimeUnit.SECONDS);
      return Answer.ok(text("late"));
    });
    var policy = kit.spawn(OpenAiPolicy.create(settings(base, 0, Duration.ofSeconds(30)), U));
    var replies = kit.<OpenAiPolicy.Reply>createTestProbe();
    policy.tell(new OpenAiPolicy.Begin("e1", TASK, 5, 1.0, replies.getRef()));
    assertTrue(arrived.await(30, TimeUnit.SECONDS));
    policy.tell(new OpenAiPolicy.End("e1"));
    release.countDown();
    var p = kit.<OpenAiPolicy.Stats>createTestProbe();
    p.awaitAssert(Duration.ofSeconds(30), () -> {
      assertEquals(0, stats(policy).inFlight());
      return null;
    });
    // the adapter handled the late answer before it answered GetStats, so a reply to it would be queued already
    replies.expectNoMessage(Duration.ofMillis(10));
  }
}
