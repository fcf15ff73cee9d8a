package dev.k2pekko.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.NodeServices;
import dev.k2pekko.agents.RunDriver;
import dev.k2pekko.agents.RunTracker;
import dev.k2pekko.agents.inference.OpenAiPolicy;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * Agents driven over HTTP against agents driven in-process, in one run ({@code k2 bench serve --agents N}): the same
 * node, the same weights, the same tasks (core-tool training tasks of one seed per pair), the same temperature; one
 * side's agents ask the node's own inference server ({@code --policy learned}), the other's ask {@code k2 serve} in
 * this JVM through the node's {@link OpenAiPolicy} ({@code --policy openai}). Runs alternate in-process / HTTP, so
 * that the machine's drift hits both alike. What differs is the transport: per action, a JSON request over loopback
 * HTTP with the whole conversation, parsed and read back into the policy's view by {@code k2 serve}, and a JSON
 * response parsed by the adapter; against two messages in the JVM and the episode's steps kept in its session. Both
 * decode with the same weights on the same batching inference server code (k2 serve runs its own).
 */
public final class ServedAgentsBench {
  private static final ObjectMapper JSON = new ObjectMapper();

  private ServedAgentsBench() {}

  /** The node must run agents, hold the served checkpoint's weights in its inference server, and have k2.policy.openai set. */
  public static ObjectNode run(ActorSystem<?> node, int agents, int episodes, int pairs, double temperature) throws Exception {
    var adapter = NodeServices.get(node).openAi();
    if (adapter == null) throw new IllegalStateException("the node has no k2.policy.openai.base-url");
    var learned = new Agent.EpisodeSpec(Agent.Tasks.TRAIN, "learned", temperature, 1);
    var served = new Agent.EpisodeSpec(Agent.Tasks.TRAIN, "openai", temperature, 1);
    // warm-up of both paths (JIT, HTTP connections), not counted
    run(node, agents, Math.max(1, episodes / 4), 1, learned, "warmup-in");
    run(node, agents, Math.max(1, episodes / 4), 1, served, "warmup-http");
    var before = stats(node, adapter);
    double[] secs = new double[2];
    long[] eps = new long[2], calls = new long[2], accepted = new long[2], failed = new long[2];
    var perRun = JSON.createArrayNode();
    boolean complete = true;
    for (int i = 0; i < 2 * pairs; i++) {
      int k = i % 2; // 0: in-process, 1: HTTP
      long seed = 100 + i / 2; // a pair plays the same tasks
      var s = run(node, agents, episodes, seed, k == 0 ? learned : served, k == 0 ? "in-process" : "http");
      complete &= s.complete();
      double t = s.elapsed().toNanos() / 1e9;
      secs[k] += t;
      eps[k] += s.get("episodes");
      calls[k] += s.get("tool_calls");
      accepted[k] += s.get("accepted");
      long policyFailures = s.counters().entrySet().stream().filter(e -> e.getKey().startsWith("reason/policy-")).mapToLong(java.util.Map.Entry::getValue).sum();
      failed[k] += policyFailures;
      perRun.add(JSON.createObjectNode().put("transport", k == 0 ? "in-process" : "http").put("seed", seed)
          .put("episodes_per_s", Math.round(10 * s.get("episodes") / t) / 10.0).put("tool_calls_per_s", Math.round(10 * s.get("tool_calls") / t) / 10.0)
          .put("accepted", s.get("accepted")).put("policy_failures", policyFailures));
    }
    var after = stats(node, adapter);
    var o = JSON.createObjectNode();
    o.put("agents", agents).put("episodes_per_agent", episodes).put("pairs", pairs).put("temperature", temperature);
    String[] side = {"in_process", "http"};
    for (int k = 0; k < 2; k++) {
      // actions: every tool call and the answer of each episode that got one (an episode ends with an answer, a budget or a failure)
      o.put(side[k] + "_episodes_per_s", Math.round(10 * eps[k] / secs[k]) / 10.0)
          .put(side[k] + "_tool_calls_per_s", Math.round(10 * calls[k] / secs[k]) / 10.0)
          .put(side[k] + "_accepted_pct", Math.round(1000.0 * accepted[k] / Math.max(1, eps[k])) / 10.0)
          .put(side[k] + "_policy_failures", failed[k]);
    }
    o.put("http_over_in_process_episodes_per_s", Math.round(1000 * (eps[1] / secs[1]) / (eps[0] / secs[0])) / 1000.0);
    o.put("http_requests", after.requests() - before.requests()).put("http_retries", after.retries() - before.retries())
        .put("http_with_logprobs", after.withLogprobs() - before.withLogprobs());
    o.set("runs", perRun);
    o.put("complete", complete);
    return o;
  }

  private static OpenAiPolicy.Stats stats(ActorSystem<?> node, org.apache.pekko.actor.typed.ActorRef<OpenAiPolicy.Command> adapter) throws Exception {
    return AskPattern.<OpenAiPolicy.Command, OpenAiPolicy.Stats>ask(adapter, OpenAiPolicy.GetStats::new, Duration.ofSeconds(10), node.scheduler())
        .toCompletableFuture().get(15, TimeUnit.SECONDS);
  }

  private static RunTracker.Summary run(ActorSystem<?> node, int agents, int episodes, long seed, Agent.EpisodeSpec es, String name) throws Exception {
    var spec = new RunDriver.RunSpec(name + "-" + System.nanoTime(), agents, episodes, seed, Agent.PersistMode.NONE, Duration.ofMinutes(10), es);
    return RunDriver.start(node, spec, s -> {}).get(11, TimeUnit.MINUTES);
  }
}
