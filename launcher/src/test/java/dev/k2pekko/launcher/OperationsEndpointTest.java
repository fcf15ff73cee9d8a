package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The operations endpoint of a real {@code k2 run} (a small pipeline in its own JVM, {@code --http-port 0}): the
 * Prometheus figures are there and move while it runs, the health routes answer, bad requests get 404/405 without a
 * trace, and the dashboard, opened in headless Chromium (Debian's, driven by playwright-core from npm), updates live
 * and draws a heatmap cell per attention head. The run is stopped once the checks are done.
 */
class OperationsEndpointTest {
  @TempDir static Path dir;
  static Process child;
  static String base;
  static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
  static final List<String> log = java.util.Collections.synchronizedList(new ArrayList<>());

  @BeforeAll static void startARun() throws Exception {
    var conf = dir.resolve("small.conf");
    Files.writeString(conf, """
        pekko.loglevel = WARNING
        k2.ps.tau = 4
        k2.pipeline { eval-tasks = 5, eval-trials = 2, synth-agents = 20, synth-episodes = 10, rl-rounds = 1, rl-tasks = 50, rl-rollouts = 2 }
        k2.open.eval-tasks = 4
        """);
    var cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow()));
    cmd.addAll(List.of("-Xss2m", "-XX:+UseParallelGC", "--enable-native-access=ALL-UNNAMED", "--add-opens", "java.base/java.lang=ALL-UNNAMED",
        "--add-opens", "java.base/java.util=ALL-UNNAMED", "--add-opens", "java.base/java.nio=ALL-UNNAMED", "--add-opens",
        "java.base/sun.nio.ch=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), K2.class.getName(),
        "run", "--config", conf.toString(), "--data-dir", dir.resolve("data").toString(), "--http-port", "0", "--quiet"));
    child = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    var url = new CompletableFuture<String>();
    var pattern = Pattern.compile("k2: operations on (http://\\S+/) ");
    Thread.ofVirtual().start(() -> {
      try (var in = new BufferedReader(new InputStreamReader(child.getInputStream()))) {
        for (String line; (line = in.readLine()) != null; ) {
          log.add(line);
          var m = pattern.matcher(line);
          if (m.find()) url.complete(m.group(1));
        }
      } catch (Exception e) {
        url.completeExceptionally(e);
      }
      url.completeExceptionally(new IllegalStateException("k2 run ended without an operations line: " + String.join("\n", log)));
    });
    base = url.get(120, TimeUnit.SECONDS);
  }

  @AfterAll static void stopTheRun() throws Exception {
    if (child == null) return;
    child.destroy();
    if (!child.waitFor(30, TimeUnit.SECONDS)) child.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
  }

  static HttpResponse<String> send(String method, String path) throws Exception {
    var req = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(10)).method(method, HttpRequest.BodyPublishers.noBody()).build();
    return HTTP.send(req, HttpResponse.BodyHandlers.ofString());
  }

  /** Every sample of the text format: {@code name{labels}} -> value. */
  static Map<String, Double> scrape() throws Exception {
    var r = send("GET", "metrics");
    assertEquals(200, r.statusCode());
    assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("text/plain; version=0.0.4"), r.headers().toString());
    var out = new HashMap<String, Double>();
    for (var line : r.body().lines().toList()) {
      if (line.startsWith("#") || line.isBlank()) continue;
      int space = line.lastIndexOf(' ');
      out.put(line.substring(0, space), Double.parseDouble(line.substring(space + 1)));
    }
    return out;
  }

  static double sum(Map<String, Double> samples, String name) {
    return samples.entrySet().stream().filter(e -> e.getKey().equals(name) || e.getKey().startsWith(name + "{"))
        .mapToDouble(Map.Entry::getValue).filter(Double::isFinite).sum();
  }

  /** Scrapes until {@code done} holds, at most {@code timeout}. */
  static Map<String, Double> scrapeUntil(Predicate<Map<String, Double>> done, Duration timeout, String what) throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      var s = scrape();
      if (done.test(s)) return s;
      assertTrue(System.nanoTime() < deadline, what + " within " + timeout + "; last scrape: " + s + "\nrun log: " + String.join("\n", log));
      Thread.sleep(250);
    }
  }

  @Test void theFiguresAreThereAndMoveDuringTheRun() throws Exception {
    var first = scrapeUntil(s -> sum(s, "k2_tool_calls_total") > 0, Duration.ofSeconds(120), "tool calls counted");
    int layers = ConfigFactory.load().getInt("k2.model.layers"), heads = ConfigFactory.load().getInt("k2.model.heads");
    for (int l = 0; l < layers; l++) {
      for (int h = 0; h < heads; h++) assertTrue(first.containsKey("k2_clip_max_logit{head=\"" + h + "\",layer=\"" + l + "\"}"), first.keySet().toString());
    }
    for (var name : List.of("k2_tool_calls_total{outcome=\"ok\"}", "k2_firewall_refusals_total{reason=\"NOT_OFFERED\"}", "k2_clip_tau",
        "k2_ps_version", "k2_ps_refused_stale_total", "k2_ps_step_seconds_count", "k2_collector_backlog", "k2_dispatcher_delay_seconds_count{dispatcher=\"default\"}",
        "jvm_memory_used_bytes{area=\"heap\",id=\"PS Eden Space\"}", "jvm_threads_live_threads")) {
      assertTrue(first.containsKey(name), name + " in " + first.keySet());
    }
    assertEquals(4.0, first.get("k2_clip_tau"));
    // while it runs: more tool calls and episodes, then journal writes, learner steps and new weights versions
    double calls = sum(first, "k2_tool_calls_total"), version = first.get("k2_ps_version");
    scrapeUntil(s -> sum(s, "k2_tool_calls_total") > calls && sum(s, "k2_episodes_total") > 0, Duration.ofSeconds(120), "more tool calls and episodes");
    // the figures of one scrape are read one after another while the run goes on: wait for all of them together
    var later = scrapeUntil(s -> s.getOrDefault("k2_ps_version", 0.0) > version && sum(s, "k2_learner_tokens_total") > 0
        && sum(s, "k2_journal_write_seconds_count") > 0 && sum(s, "k2_ps_step_seconds_count") > 0,
        Duration.ofSeconds(300), "a new weights version from the learners' steps");
    assertTrue(sum(later, "k2_learner_step_seconds_count") > 0, later.toString());
    assertTrue(sum(later, "k2_ps_step_seconds_count") > 0, later.toString());
    assertTrue(sum(later, "k2_stage_done") > 0, later.toString());
  }

  @Test void healthAndMembers() throws Exception {
    var ready = send("GET", "ready");
    assertEquals(200, ready.statusCode(), ready.body());
    assertEquals(200, send("GET", "alive").statusCode());
    var members = new ObjectMapper().readTree(send("GET", "cluster/members").body());
    assertEquals(1, members.get("members").size(), members.toString());
    assertEquals("Up", members.get("members").get(0).get("status").asText());
    var roles = members.get("members").get(0).get("roles").toString();
    for (var role : List.of("agent", "tool", "learner", "ps", "monitor")) assertTrue(roles.contains("\"" + role + "\""), roles);
  }

  @Test void badRequestsGet404Or405AndNoTrace() throws Exception {
    for (var r : List.of(send("GET", "nope"), send("GET", "metrics/more"), send("GET", "dashboard.js.map"))) {
      assertEquals(404, r.statusCode(), r.uri() + ": " + r.body());
      assertNoTrace(r);
    }
    for (var r : List.of(send("POST", "metrics"), send("DELETE", ""), send("PUT", "events"), send("POST", "ready"))) {
      assertEquals(405, r.statusCode(), r.request().method() + " " + r.uri() + ": " + r.body());
      assertNoTrace(r);
    }
    // the management routes are read-only: no member can be downed or made to leave through them
    var down = send("DELETE", "cluster/members/pekko://k2@127.0.0.1:1");
    assertTrue(down.statusCode() == 404 || down.statusCode() == 405, down.statusCode() + " " + down.body());
  }

  private static void assertNoTrace(HttpResponse<String> r) {
    assertFalse(r.body().contains("Exception") || r.body().contains("\tat "), r.body());
    assertTrue(r.body().lines().count() <= 1, r.body());
  }

  @Test void theDashboardUpdatesLiveInAHeadlessBrowser() throws Exception {
    Path root = Path.of("..").toAbsolutePath().normalize();
    assertTrue(Files.isDirectory(root.resolve("node_modules/playwright-core")), "node packages missing under " + root + ": run `npm ci` there (./k2 test does)");
    String chromium = System.getenv().getOrDefault("K2_CHROMIUM", "/usr/bin/chromium");
    assertTrue(Files.isExecutable(Path.of(chromium)), "no Chromium at " + chromium + ": `apt-get install chromium` (.ci/run does), or set K2_CHROMIUM");
    var proc = new ProcessBuilder("node", root.resolve("launcher/src/test/node/dashboard-browser.mjs").toString(), base)
        .redirectErrorStream(true).start();
    var out = CompletableFuture.supplyAsync(() -> {
      try {
        return new String(proc.getInputStream().readAllBytes());
      } catch (Exception e) {
        return e.toString();
      }
    });
    assertTrue(proc.waitFor(240, TimeUnit.SECONDS), "the browser script did not finish in 240 s");
    String text = out.get(10, TimeUnit.SECONDS);
    assertEquals(0, proc.exitValue(), text);
    var lines = text.strip().lines().toList();
    var seen = new ObjectMapper().readTree(lines.getLast());
    var first = seen.get("first");
    var second = seen.get("second");
    assertNotNull(first, text);
    assertEquals("live", second.get("live").asText(), text);
    assertTrue(second.get("updates").asInt() > first.get("updates").asInt(), text);
    assertTrue(!second.get("toolCalls").asText().equals(first.get("toolCalls").asText())
        || !second.get("version").asText().equals(first.get("version").asText()), "a live figure changed: " + text);
    int layers = ConfigFactory.load().getInt("k2.model.layers"), heads = ConfigFactory.load().getInt("k2.model.heads");
    assertEquals(layers * heads, second.get("cells").asInt(), "a heatmap cell per head: " + text);
    assertEquals(1, second.get("members").size(), text);
    assertTrue(second.get("members").get(0).asText().contains("(this node)Upagent, learner, monitor, ps, tool"), text);
    assertTrue(second.get("stages").size() >= 1, text);
    assertEquals(0, seen.get("errors").size(), "no errors in the page: " + text);
    assertEquals(0, seen.get("offsite").size(), "nothing loaded from elsewhere: " + text);
  }
}
