package dev.k2pekko.launcher;

import com.typesafe.config.Config;
import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.inference.OpenAiPolicy;
import java.util.HashMap;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * Who plays the episodes of a synthesis run ({@code k2 run --synthesis-only}, {@code k2 node --run-agents},
 * {@code k2 bench sim}): the scripted teacher, or a served LLM that speaks OpenAI's chat-completions API, driven over
 * HTTP by the node's {@link OpenAiPolicy} ({@code --policy openai --base-url URL --model M}).
 */
final class PolicyOptions {
  static final java.util.List<String> FLAGS = java.util.List.of("--policy", "--base-url", "--model", "--temperature", "--tasks");

  @Option(names = "--policy", paramLabel = "teacher|openai", defaultValue = "teacher",
      description = "who plays the episodes: the scripted teacher, or a served LLM over OpenAI's chat-completions API (default ${DEFAULT-VALUE})")
  String policy;

  @Option(names = "--base-url", paramLabel = "URL", description = "--policy openai: the API root of the server, e.g. http://127.0.0.1:8000/v1 "
      + "(k2.policy.openai.base-url; its key from $OPENAI_API_KEY)")
  String baseUrl;

  @Option(names = "--model", paramLabel = "ID", description = "--policy openai: the model the server serves (k2.policy.openai.model)")
  String model;

  @Option(names = "--temperature", paramLabel = "T", description = "--policy openai: sampling temperature, 0 to 2 (default ${DEFAULT-VALUE})",
      defaultValue = "1.0")
  double temperature;

  @Option(names = "--tasks", paramLabel = "universe|core|kg|fs", defaultValue = "universe",
      description = "the run's tasks: over the whole tool universe, the core tools' training tasks (those k2's own policy knows, "
          + "for a served k2 serve), knowledge-graph tasks on the MCP memory server named by k2.mcp.knowledge-graph, or file tasks "
          + "on the MCP filesystem server named by k2.mcp.files (default ${DEFAULT-VALUE})")
  String tasks;

  @picocli.CommandLine.Spec(picocli.CommandLine.Spec.Target.MIXEE) picocli.CommandLine.Model.CommandSpec command;

  /** The config overrides of the flags: the adapter's base URL and model. Bad combinations are refused here. */
  Map<String, Object> config() {
    if (!Agent.EpisodeSpec.POLICIES.contains(policy) || policy.equals("learned")) {
      throw new NodeConfig.UsageError("--policy must be teacher or openai, got '" + policy + "'");
    }
    if (!java.util.Set.of("universe", "core", "kg", "fs").contains(tasks)) throw new NodeConfig.UsageError("--tasks must be universe, core, kg or fs, got '" + tasks + "'");
    var parsed = command.commandLine().getParseResult();
    if (!openAi()) {
      for (var f : FLAGS.subList(1, FLAGS.size() - 1)) {
        if (parsed.hasMatchedOption(f)) throw new NodeConfig.UsageError(f + " applies to --policy openai");
      }
      return Map.of();
    }
    if (!(temperature >= 0 && temperature <= 2)) throw new NodeConfig.UsageError("--temperature must be from 0 to 2, got " + temperature);
    var o = new HashMap<String, Object>();
    if (baseUrl != null) o.put("k2.policy.openai.base-url", baseUrl);
    if (model != null) o.put("k2.policy.openai.model", model);
    return o;
  }

  boolean openAi() { return policy.equals("openai"); }

  /**
   * Checks the adapter's settings in the built config (a missing URL or model, a bad URL, a limit out of range), also
   * where a --config file alone sets them (the node then starts the adapter): one line, before anything boots.
   */
  void check(Config config) {
    if (tasks.equals("kg")) {
      String kg = config.getString("k2.mcp.knowledge-graph");
      if (kg.isEmpty()) throw new NodeConfig.UsageError("--tasks kg needs k2.mcp.knowledge-graph = NAME, the --mcp server that runs @modelcontextprotocol/server-memory");
    }
    if (tasks.equals("fs")) {
      if (config.getString("k2.mcp.files").isEmpty() || config.getString("k2.tools.firewall.sandbox").isEmpty()) {
        throw new NodeConfig.UsageError("--tasks fs needs k2.mcp.files = NAME, the --mcp server that runs @modelcontextprotocol/server-filesystem, "
            + "and k2.tools.firewall.sandbox = the directory that server is given");
      }
    }
    OpenAiPolicy.Settings s;
    try {
      s = OpenAiPolicy.Settings.fromConfig(config.getConfig("k2"));
    } catch (IllegalArgumentException | com.typesafe.config.ConfigException e) {
      throw new NodeConfig.UsageError(e.getMessage());
    }
    if (s == null && openAi()) throw new NodeConfig.UsageError("--policy openai needs --base-url URL (the server's API root, e.g. http://127.0.0.1:8000/v1)");
  }

  /** What the node's adapter did: requests, retries, failures by kind, answers with log-probabilities. */
  static String servedLine(org.apache.pekko.actor.typed.ActorSystem<?> system) throws Exception {
    var services = dev.k2pekko.agents.NodeServices.get(system);
    var s = org.apache.pekko.actor.typed.javadsl.AskPattern.<OpenAiPolicy.Command, OpenAiPolicy.Stats>ask(services.openAi(), OpenAiPolicy.GetStats::new,
        java.time.Duration.ofSeconds(10), system.scheduler()).toCompletableFuture().get(15, java.util.concurrent.TimeUnit.SECONDS);
    var failed = new java.util.TreeMap<String, Long>();
    s.failed().forEach((k, v) -> failed.put(k.reason, v));
    return String.format("served LLM %s at %s: %,d requests, %,d actions answered (%,d with logprobs), %,d retries, %,d actions failed%s",
        services.openAiSettings().model(), services.openAiSettings().baseUrl(), s.requests(), s.answered(), s.withLogprobs(), s.retries(),
        s.failedTotal(), failed.isEmpty() ? "" : " " + failed);
  }

  /** The episodes of a synthesis run, played by this policy: on the whole tool universe, or the core tools' training tasks. */
  Agent.EpisodeSpec episodes() {
    Agent.Tasks t = switch (tasks) {
      case "core" -> Agent.Tasks.TRAIN;
      case "kg" -> Agent.Tasks.KG;
      case "fs" -> Agent.Tasks.FS;
      default -> Agent.Tasks.UNIVERSE;
    };
    if (!openAi()) return t == Agent.Tasks.UNIVERSE ? Agent.EpisodeSpec.SYNTHESIS : new Agent.EpisodeSpec(t, "teacher", 0, 1);
    return new Agent.EpisodeSpec(t, "openai", temperature, 1);
  }
}
