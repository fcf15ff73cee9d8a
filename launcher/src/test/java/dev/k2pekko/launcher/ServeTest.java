package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code k2 serve} in its own JVM on a small trained checkpoint: the official openai npm client calls it with tools
 * and gets valid tool calls back; bad requests get OpenAI error objects with their status codes, never a trace.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class ServeTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int MAX_BODY = 16_384, MAX_CONCURRENT = 2;
  private static final String TASK = "Calculate 7 + 5, then write it into the notes. Answer with the final value.";
  private static Path dir;
  private static Process serve;
  private static final LinkedBlockingQueue<String> output = new LinkedBlockingQueue<>();
  private static final List<String> log = new ArrayList<>();
  private static String base;
  private static final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

  @BeforeAll static void start() throws Exception {
    dir = Files.createTempDirectory("k2-serve-test");
    TinyPolicy.write(dir.resolve("checkpoints"), 300);
    var cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow(), "-Xss2m", "-cp", System.getProperty("java.class.path"),
        K2.class.getName(), "serve", "--checkpoint", dir.resolve("checkpoints").toString(), "--port", "0",
        "--max-body-bytes", Integer.toString(MAX_BODY), "--max-concurrent", Integer.toString(MAX_CONCURRENT), "--request-timeout", "20"));
    serve = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    var reader = new Thread(() -> {
      try (var in = serve.inputReader()) {
        for (String line; (line = in.readLine()) != null; ) output.add(line);
      } catch (IOException e) {
        output.add("(reading the server's output failed: " + e + ")");
      }
    }, "k2-serve-output");
    reader.setDaemon(true);
    reader.start();
    var url = Pattern.compile("k2 serve: .* on (http://127\\.0\\.0\\.1:\\d+/v1)$");
    long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
    while (base == null) {
      String line = output.poll(Math.max(1, (deadline - System.nanoTime()) / 1_000_000), TimeUnit.MILLISECONDS);
      assertNotNull(line, "k2 serve printed no address within 90 s: " + log);
      log.add(line);
      var m = url.matcher(line);
      if (m.find()) base = m.group(1);
    }
  }

  @AfterAll static void stop() throws Exception {
    if (serve != null) {
      serve.destroy(); // SIGTERM: the shutdown hook unbinds and terminates the actor system
      if (!serve.waitFor(20, TimeUnit.SECONDS)) serve.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }
    if (dir != null) {
      try (var files = Files.walk(dir)) {
        files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  @Test void theOpenAiNpmClientGetsValidToolCalls() throws Exception {
    var root = root();
    assertTrue(Files.isDirectory(root.resolve("node_modules/openai")), "node packages missing under " + root + ": run `npm ci` there (./k2 test does)");
    var proc = new ProcessBuilder("node", root.resolve("launcher/src/test/node/serve-openai-client.mjs").toString(), base, "k2-policy")
        .directory(root.toFile()).redirectErrorStream(true).start();
    var out = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(proc.waitFor(120, TimeUnit.SECONDS), "node did not finish in 120 s");
    assertEquals(0, proc.exitValue(), out);
    var lines = out.strip().split("\n");
    var counts = JSON.readTree(lines[lines.length - 1]);
    assertEquals(10, counts.path("completions").asInt(), out);
    // the tiny policy writes whole calls: under tool_choice required or named, at least these come back as tool calls
    assertTrue(counts.path("tool_calls").asInt() >= 4, out);
  }

  @Test void aCallForcedToANamedToolNamesItWithJsonArguments() throws Exception {
    var r = post(chat("\"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"calc.mul\"}}, \"temperature\": 0"));
    assertEquals(200, r.statusCode(), r.body());
    var choice = JSON.readTree(r.body()).path("choices").path(0);
    var call = choice.path("message").path("tool_calls").path(0);
    assertEquals("tool_calls", choice.path("finish_reason").asText(), r.body());
    assertEquals("calc.mul", call.path("function").path("name").asText(), r.body());
    assertTrue(JSON.readTree(call.path("function").path("arguments").asText()).isObject(), r.body());
  }

  @Test void malformedJsonIs400() throws Exception {
    var e = error(post("{\"model\": \"k2-policy\", \"messages\": [}"), 400);
    assertTrue(e.path("message").asText().contains("parse the JSON"), e.toString());
    error(post("[1, 2]"), 400);
    assertEquals("messages", error(post("{\"model\": \"k2-policy\", \"messages\": []}"), 400).path("param").asText());
    assertEquals("temperature", error(post(chat("\"temperature\": 5")), 400).path("param").asText());
    assertEquals("tool_choice", error(post(chat("\"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"web.search\"}}")), 400)
        .path("param").asText());
    assertEquals("max_tokens", error(post(chat("\"max_tokens\": 0")), 400).path("param").asText());
  }

  @Test void anUnknownModelIs404() throws Exception {
    var e = error(post("{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}"), 404);
    assertEquals("model_not_found", e.path("code").asText());
    assertEquals("model", e.path("param").asText());
    error(send(HttpRequest.newBuilder(URI.create(base + "/models/gpt-4o")).GET()), 404);
    error(send(HttpRequest.newBuilder(URI.create(base + "/embeddings")).POST(HttpRequest.BodyPublishers.ofString("{}"))), 404);
  }

  @Test void aBodyOverTheLimitIs413() throws Exception {
    String big = chat("\"user\": \"" + "x".repeat(MAX_BODY) + "\"");
    assertEquals("request_too_large", error(post(big), 413).path("code").asText());
    // without a Content-Length (chunked): found while reading
    var chunked = HttpRequest.newBuilder(URI.create(base + "/chat/completions")).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(big.getBytes(StandardCharsets.UTF_8))));
    error(send(chunked), 413);
  }

  @Test void aWrongMethodIs405() throws Exception {
    var r = send(HttpRequest.newBuilder(URI.create(base + "/chat/completions")).GET());
    error(r, 405);
    assertEquals("POST", r.headers().firstValue("Allow").orElse(""));
    var m = send(HttpRequest.newBuilder(URI.create(base + "/models")).POST(HttpRequest.BodyPublishers.ofString("{}")));
    error(m, 405);
    assertEquals("GET", m.headers().firstValue("Allow").orElse(""));
  }

  @Test void tooManyConcurrentRequestsAre429() throws Exception {
    // A client that sent its headers and part of a body holds a slot until its body is complete (or times out). Slow
    // clients are added one at a time until a request is refused: the refused one may be a later slow client itself
    // (it arrived while others held the slots) or a complete request sent after it; either is the limit at work.
    var slow = new ArrayList<Socket>();
    var answers = new ArrayList<StringBuilder>();
    String refused = null;
    try {
      // until the server has read enough slow clients' headers (a new connection can take a while on a loaded machine)
      long until = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (refused == null && System.nanoTime() < until) {
        if (slow.size() < MAX_CONCURRENT + 8) {
          var s = new Socket("127.0.0.1", URI.create(base).getPort());
          slow.add(s);
          OutputStream out = s.getOutputStream();
          out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":")
              .getBytes(StandardCharsets.US_ASCII));
          out.flush();
          if (slow.size() < MAX_CONCURRENT) continue;
        }
        var r = post(chat(""));
        if (r.statusCode() == 429) {
          refused = r.body();
          break;
        }
        assertEquals(200, r.statusCode(), r.body());
        for (int i = 0; i < slow.size(); i++) {
          if (answers.size() <= i) answers.add(new StringBuilder());
          var in = slow.get(i).getInputStream();
          String answer = answers.get(i).append(new String(in.readNBytes(in.available()), StandardCharsets.UTF_8)).toString();
          int body = answer.indexOf("\r\n\r\n");
          if (answer.startsWith("HTTP/1.1 429 ") && body > 0 && answer.endsWith("}}")) refused = answer.substring(body + 4);
        }
      }
      assertNotNull(refused, "no request refused with " + slow.size() + " slow clients holding or asking for slots");
      var e = JSON.readTree(refused).path("error");
      assertEquals("rate_limit_exceeded", e.path("code").asText(), refused);
      assertEquals("rate_limit_error", e.path("type").asText(), refused);
    } finally {
      for (var s : slow) s.close();
    }
    // the slots come back when those clients go away
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    int status;
    do status = post(chat("")).statusCode(); while (status == 429 && System.nanoTime() < deadline);
    assertEquals(200, status);
  }

  private static String chat(String more) {
    return "{\"model\": \"k2-policy\", \"messages\": [{\"role\": \"user\", \"content\": \"" + TASK + "\"}], \"tools\": ["
        + "{\"type\": \"function\", \"function\": {\"name\": \"calc.add\"}}, {\"type\": \"function\", \"function\": {\"name\": \"calc.mul\"}},"
        + "{\"type\": \"function\", \"function\": {\"name\": \"notes.write\"}}], \"seed\": 5" + (more.isEmpty() ? "" : ", " + more) + "}";
  }

  private static HttpResponse<String> post(String body) throws Exception {
    return send(HttpRequest.newBuilder(URI.create(base + "/chat/completions")).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)));
  }

  private static HttpResponse<String> send(HttpRequest.Builder request) throws Exception {
    return http.send(request.timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
  }

  /** The error object of a response with this status: OpenAI's four fields, JSON, and nothing of the server's insides. */
  private static JsonNode error(HttpResponse<String> r, int status) throws Exception {
    assertEquals(status, r.statusCode(), r.body());
    assertEquals("application/json", r.headers().firstValue("Content-Type").orElse(""), r.body());
    var root = JSON.readTree(r.body());
    var e = root.path("error");
    for (var f : new String[] {"message", "type", "param", "code"}) assertTrue(e.has(f), "no error." + f + ": " + r.body());
    assertEquals(1, root.size(), r.body());
    assertFalse(e.path("message").asText().isEmpty(), r.body());
    assertFalse(r.body().contains("dev.k2pekko") || r.body().contains("\tat ") || r.body().contains("Exception"), r.body());
    return e;
  }

  static Path root() {
    for (var p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isRegularFile(p.resolve("package-lock.json")) && Files.isDirectory(p.resolve("launcher"))) return p;
    }
    throw new AssertionError("no package-lock.json above " + Path.of("").toAbsolutePath());
  }
}
