package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.JournalSchema;
import dev.k2pekko.agents.NodeServices;
import dev.k2pekko.agents.RunDriver;
import dev.k2pekko.agents.inference.InferenceServer;
import dev.k2pekko.agents.inference.OpenAiPolicy;
import dev.k2pekko.protocol.Trajectory;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Agents driving {@code k2 serve} over HTTP: the real ChatServer on a loopback port with a small trained checkpoint,
 * a node whose agents play core tasks with {@code --policy openai} through its {@link OpenAiPolicy}; every episode
 * completes, is judged, and carries the server's log-probabilities. Then the server goes away mid-life: the next run
 * still completes, every episode rejected with the adapter's reason, counted in the run summary.
 */
class ServedPolicyTest {
  static final int AGENTS = 6, EPISODES = 4;

  @Test void agentsDriveKServeOverHttp(@TempDir Path dir) throws Exception {
    TinyPolicy.write(dir.resolve("checkpoints"), 300);
    var serve = new ServeCommand();
    serve.checkpoint = dir.resolve("checkpoints").toString();
    serve.port = 0;
    serve.host = "127.0.0.1";
    serve.modelName = "k2-policy";
    serve.maxBodyBytes = 1 << 20;
    serve.maxConcurrent = 64;
    serve.requestTimeout = 30;
    var running = serve.start();
    ActorSystem<Void> node = null;
    try {
      var o = new HashMap<String, Object>();
      o.put("pekko-persistence-jdbc.shared-databases.slick.db.url", "jdbc:h2:file:" + dir.resolve("journal").toAbsolutePath() + ";DB_CLOSE_ON_EXIT=FALSE");
      o.put("pekko.remote.artery.canonical.port", 0);
      o.put("pekko.loglevel", "WARNING");
      o.put("k2.policy.openai.base-url", "http://127.0.0.1:" + running.port() + "/v1");
      o.put("k2.policy.openai.model", "k2-policy");
      o.put("k2.policy.openai.max-concurrent", 8);
      o.put("k2.policy.openai.retries", 1);
      o.put("k2.policy.openai.min-backoff", "20ms");
      o.put("k2.policy.openai.max-backoff", "100ms");
      o.put("k2.policy.openai.timeout", "20s");
      var config = ConfigFactory.load(ConfigFactory.parseMap(o).withFallback(ConfigFactory.parseResources("application.conf")));
      JournalSchema.ensure(config);
      node = Nodes.single(config, Duration.ofSeconds(30));
      var judged = new ConcurrentLinkedQueue<Trajectory>();
      var all = new CountDownLatch(AGENTS * EPISODES);
      NodeServices.get(node).onJudged(node.systemActorOf(Behaviors.<Trajectory>receiveMessage(t -> {
        judged.add(t);
        all.countDown();
        return Behaviors.same();
      }), "judged-listener", Props.empty()));

      var es = new Agent.EpisodeSpec(Agent.Tasks.TRAIN, "openai", 1.0, 1);
      var summary = RunDriver.start(node, new RunDriver.RunSpec("served-" + System.nanoTime(), AGENTS, EPISODES, 11, Agent.PersistMode.NONE,
          Duration.ofMinutes(3), es), s -> {}).get(4, TimeUnit.MINUTES);
      assertTrue(summary.complete(), summary.toString());
      assertEquals(AGENTS * EPISODES, summary.get("episodes"));
      var policyFailures = summary.counters().keySet().stream().filter(k -> k.startsWith("reason/policy-") || k.startsWith("reason/no-policy")).toList();
      assertTrue(policyFailures.isEmpty(), "no episode failed at the adapter: " + summary.counters());

      assertTrue(all.await(60, TimeUnit.SECONDS), "every episode judged: " + judged.size());
      long actions = 0, calls = 0;
      for (var t : judged) {
        assertEquals("openai:k2-policy", t.policy());
        assertNotNull(t.verdict());
        var served = t.served();
        assertNotNull(served, "the served model's numbers are kept");
        int n = t.steps().size() + (t.finalAnswer() != null ? 1 : 0);
        assertEquals(n, served.logProbs().length, "one entry per action of " + t.trajectoryId());
        for (int i = 0; i < n; i++) {
          // k2 serve returns logprobs: each action's sum is a real log-probability, and it sampled at least one token
          assertTrue(served.logProbs()[i] <= 0 && Double.isFinite(served.logProbs()[i]), "logprob " + served.logProbs()[i]);
          assertTrue(served.tokens()[i] >= 1);
        }
        for (var s : t.steps()) assertTrue(t.tools().contains(s.tool()), "a call of an offered tool: " + s.tool());
        actions += n;
        calls += t.steps().size();
      }
      assertTrue(calls > 0, "the policy behind the API called tools");
      // exported with the served model's numbers, in a line the format's own check accepts
      var any = judged.peek();
      String line = new dev.k2pekko.agents.ChatExport(dev.k2pekko.tools.ToolDirectory.get(node).universe()).toLine(any, null);
      dev.k2pekko.agents.ChatExport.validate(line);
      var meta = new com.fasterxml.jackson.databind.ObjectMapper().readTree(line).path("metadata");
      assertEquals("openai:k2-policy", meta.path("policy").asText());
      assertEquals(any.served().logProbs().length, meta.path("served").path("logprobs").size(), line);
      assertEquals(any.served().logProbs()[0], meta.path("served").path("logprobs").get(0).asDouble(), 1e-12);
      var stats = AskPattern.<OpenAiPolicy.Command, OpenAiPolicy.Stats>ask(NodeServices.get(node).openAi(), OpenAiPolicy.GetStats::new,
          Duration.ofSeconds(10), node.scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS);
      assertEquals(actions, stats.answered(), "every action was one answered request");
      assertEquals(actions, stats.withLogprobs());
      var served = AskPattern.<InferenceServer.Command, InferenceServer.Stats>ask(running.inference(), InferenceServer.GetStats::new,
          Duration.ofSeconds(10), running.system().scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS);
      assertEquals(actions, served.requests(), "k2 serve's inference server decoded each of them");

      // k2 serve's logprobs as a client sees them: one entry per completion token when asked, null when not
      var http = java.net.http.HttpClient.newHttpClient();
      for (boolean ask : new boolean[] {true, false}) {
        var body = "{\"model\":\"k2-policy\",\"seed\":3,\"logprobs\":" + ask + ",\"messages\":[{\"role\":\"user\",\"content\":"
            + "\"Calculate 7 + 5, then write it into the notes. Answer with the final value.\"}],\"tools\":[{\"type\":\"function\","
            + "\"function\":{\"name\":\"calc__add\"}}]}";
        var r = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + running.port() + "/v1/chat/completions"))
            .header("Content-Type", "application/json").timeout(Duration.ofSeconds(30)).POST(java.net.http.HttpRequest.BodyPublishers.ofString(body)).build(),
            java.net.http.HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        var root = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.body());
        var lp = root.path("choices").path(0).path("logprobs");
        if (!ask) {
          assertTrue(lp.isNull(), r.body());
          continue;
        }
        assertEquals(root.path("usage").path("completion_tokens").asInt(), lp.path("content").size(), r.body());
        for (var e : lp.path("content")) assertTrue(e.path("logprob").asDouble() <= 0 && e.path("token").isTextual(), r.body());
      }

      // the server goes away: the adapter cannot connect, retries, and every episode fails with that reason, counted
      running.stop();
      var down = RunDriver.start(node, new RunDriver.RunSpec("down-" + System.nanoTime(), 3, 2, 12, Agent.PersistMode.NONE,
          Duration.ofMinutes(2), es), s -> {}).get(3, TimeUnit.MINUTES);
      assertTrue(down.complete(), down.toString());
      assertEquals(6, down.get("episodes"));
      assertEquals(0, down.get("accepted"));
      assertEquals(6, down.get("reason/policy-unreachable"), down.counters().toString());
    } finally {
      if (node != null) Nodes.stop(node);
      running.stop();
    }
  }
}
