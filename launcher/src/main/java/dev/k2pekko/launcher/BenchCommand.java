package dev.k2pekko.launcher;

import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import dev.k2pekko.agents.JournalSchema;
import dev.k2pekko.bench.ClipExperiment;
import dev.k2pekko.bench.MemoryBench;
import dev.k2pekko.bench.ModelBench;
import dev.k2pekko.bench.PersistBench;
import dev.k2pekko.bench.SimulationBench;
import java.time.Duration;
import java.util.HashMap;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code k2 bench}: the measurements recorded in BENCHMARKS.md; each prints a table or, with --json, one JSON line. The
 * command line lives here; what is measured lives in module {@code bench}.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks (see BENCHMARKS.md).",
    subcommands = {BenchCommand.Sim.class, BenchCommand.Mcp.class, BenchCommand.McpEchoServer.class, BenchCommand.Persist.class, BenchCommand.Memory.class, BenchCommand.Clip.class,
        BenchCommand.Model.class, BenchLoop.Learner.class, BenchLoop.Ps.class, BenchLoop.Optimizers.class, BenchCommand.Serve.class,
        BenchRl.SftPlateauCommand.class, BenchCommand.CriticOffline.class, BenchRl.OpenTasks.class,
        BenchRl.Pareto.class, BenchTls.class})
final class BenchCommand implements Runnable {
  @Override public void run() {
    picocli.CommandLine.usage(this, System.err);
  }

  static void print(ObjectNode result, boolean json) {
    if (json) {
      System.out.println(result);
      return;
    }
    result.fields().forEachRemaining(e -> System.out.printf("  %-34s %s%n", e.getKey(), e.getValue()));
  }

  @Command(name = "sim", mixinStandardHelpOptions = true,
      description = "Simulation throughput with the teacher policy and persistence off: a warm-up run, then the measured run; "
          + "around it, in the same JVM, a plain request/reply ceiling between two sets of actors, and tool calls/s over it.")
  static final class Sim implements java.util.concurrent.Callable<Integer> {
    @Mixin NodeConfig node;
    @Option(names = "--agents", defaultValue = "10000") int agents;
    @Option(names = "--episodes", defaultValue = "30", description = "episodes per agent in the measured run") int episodes;
    @Option(names = "--json") boolean json;
    @Option(names = "--firewall", defaultValue = "on",
        description = "on, off, or both: measured runs alternate off/on (--pairs times) in one JVM and the ratio is printed")
    String firewall;
    @Option(names = "--pairs", defaultValue = "2", description = "with --firewall both: pairs of measured runs (off-on, then on-off, ...); the summed ratio comes with a 95% bootstrap interval over the pairs") int pairs;
    @Mixin PolicyOptions policy;

    @Override public Integer call() throws Exception {
      if (!java.util.Set.of("on", "off", "both").contains(firewall)) throw new NodeConfig.UsageError("--firewall must be on, off or both, got " + firewall);
      if (pairs < 1) throw new NodeConfig.UsageError("--pairs must be at least 1");
      var mode = SimulationBench.FirewallMode.valueOf(firewall.toUpperCase());
      var config = node.build("h2", new HashMap<>(policy.config()));
      policy.check(config);
      JournalSchema.ensure(config); // the firewall's audit trail is written even with persistence off
      var system = Nodes.single(config, Duration.ofSeconds(30));
      try {
        var r = SimulationBench.run(system, agents, episodes, mode, pairs, policy.episodes());
        print(r.figures(), json);
        return r.complete() ? 0 : 1;
      } finally {
        Nodes.stop(system);
      }
    }
  }

  @Command(name = "mcp", mixinStandardHelpOptions = true,
      description = "MCP tools/call per server process: through the actor bridge and directly with the SDK, alternating in one run.")
  static final class Mcp implements java.util.concurrent.Callable<Integer> {
    @Mixin NodeConfig node;
    @Option(names = "--server", defaultValue = "every=node node_modules/@modelcontextprotocol/server-everything/dist/index.js",
        description = "NAME=COMMAND of the server (default: ${DEFAULT-VALUE})") String server;
    @Option(names = "--tool", defaultValue = "echo", description = "the server's tool to call") String tool;
    @Option(names = "--calls", defaultValue = "5000", description = "calls per measured round") int calls;
    @Option(names = "--concurrency", defaultValue = "16", description = "calls in flight at once") int concurrency;
    @Option(names = "--rounds", defaultValue = "3", description = "measured rounds of each (bridge, server actor and direct SDK take turns at going first)") int rounds;
    @Option(names = "--warmup-rounds", defaultValue = "2", description = "unmeasured rounds of each first (default ${DEFAULT-VALUE})") int warmupRounds;
    @Option(names = "--slice", defaultValue = "1000", description = "within a measured round the three alternate every this many "
        + "calls, so that a slow spell of the machine falls on all three; 0: each runs its whole round at once (default ${DEFAULT-VALUE})") int slice;
    @Option(names = "--json") boolean json;

    @Override public Integer call() throws Exception {
      if (calls < 1 || concurrency < 1 || rounds < 1) throw new NodeConfig.UsageError("--calls, --concurrency and --rounds must be at least 1");
      if (warmupRounds < 0) throw new NodeConfig.UsageError("--warmup-rounds must be at least 0");
      if (slice < 0) throw new NodeConfig.UsageError("--slice must be at least 0");
      var config = node.build("h2", new HashMap<>());
      var system = Nodes.local(config, "k2-bench-mcp");
      try {
        print(dev.k2pekko.bench.McpBench.run(config, system, new dev.k2pekko.bench.McpBench.Settings(server, tool, calls, concurrency, rounds, warmupRounds, slice)), json);
        return 0;
      } finally {
        Nodes.stop(system);
      }
    }
  }

  @Command(name = "mcp-echo-server", mixinStandardHelpOptions = true,
      description = "An MCP server on stdin/stdout with one tool, echo, built on the MCP Java SDK: the server for k2 bench mcp "
          + "where node is missing, e.g. --server \"echo=k2 bench mcp-echo-server\". Serves until stdin ends.")
  static final class McpEchoServer implements java.util.concurrent.Callable<Integer> {
    @Override public Integer call() throws Exception {
      dev.k2pekko.bench.EchoMcpServer.serve();
      return 0;
    }
  }

  @Command(name = "serve", mixinStandardHelpOptions = true,
      description = "k2 serve under load: requests/s and latency percentiles of POST /v1/chat/completions with N concurrent clients "
          + "(closed loop, HTTP/1.1 keep-alive, on loopback in this JVM), and how the inference server batched them.")
  static final class Serve implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--checkpoint", required = true, paramLabel = "DIR", description = "as for k2 serve") String checkpoint;
    @Option(names = "--clients", defaultValue = "64") int clients;
    @Option(names = "--warmup", defaultValue = "5", description = "seconds before measuring (default ${DEFAULT-VALUE})") int warmup;
    @Option(names = "--seconds", defaultValue = "20", description = "seconds measured (default ${DEFAULT-VALUE})") int seconds;
    @Option(names = "--agents", defaultValue = "0", description = "then, in the same JVM, agents driven over HTTP (--policy openai against this "
        + "server) against agents driven in-process (the node's own inference server, same weights), this many agents a run; 0: not "
        + "(default ${DEFAULT-VALUE})") int agents;
    @Option(names = "--episodes", defaultValue = "10", description = "with --agents: episodes per agent a run (default ${DEFAULT-VALUE})") int episodes;
    @Option(names = "--pairs", defaultValue = "2", description = "with --agents: in-process/HTTP pairs of runs (default ${DEFAULT-VALUE})") int pairs;
    @Option(names = "--skip-clients", description = "with --agents: only the agents' comparison, no client load") boolean skipClients;
    @Option(names = "--json") boolean json;

    @Override public Integer call() throws Exception {
      if (clients < 1 || warmup < 0 || seconds < 1) throw new NodeConfig.UsageError("--clients and --seconds must be positive, --warmup not negative");
      if (agents < 0 || episodes < 1 || pairs < 1) throw new NodeConfig.UsageError("--agents must be >= 0, --episodes and --pairs at least 1");
      if (skipClients && agents == 0) throw new NodeConfig.UsageError("--skip-clients needs --agents");
      var serve = new ServeCommand();
      serve.checkpoint = checkpoint;
      serve.port = 0;
      serve.host = "127.0.0.1";
      serve.modelName = "k2-policy";
      serve.maxBodyBytes = 1 << 20;
      serve.maxConcurrent = Math.max(256, clients);
      serve.requestTimeout = 30;
      var running = serve.start();
      try {
        var out = skipClients ? new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode() : clientLoad(running);
        boolean ok = !out.has("errors") || out.get("errors").asLong() == 0;
        if (agents > 0) {
          var agentsOut = agentsComparison(running);
          out.set("agents_http_vs_in_process", agentsOut);
          ok &= agentsOut.get("complete").asBoolean();
        }
        print(out, json);
        return ok ? 0 : 1;
      } finally {
        running.stop();
      }
    }

    /** Agents over HTTP against agents in-process: a node in this JVM whose adapter points at the running server. */
    private com.fasterxml.jackson.databind.node.ObjectNode agentsComparison(ServeCommand.Running running) throws Exception {
      var dir = java.nio.file.Files.createTempDirectory("k2-bench-serve-agents");
      var o = new HashMap<String, Object>();
      o.put("pekko-persistence-jdbc.shared-databases.slick.db.url", "jdbc:h2:file:" + dir.resolve("journal").toAbsolutePath() + ";DB_CLOSE_ON_EXIT=FALSE");
      o.put("k2.journal.dir", dir.toString());
      o.put("k2.policy.openai.base-url", "http://127.0.0.1:" + running.port() + "/v1");
      o.put("k2.policy.openai.model", "k2-policy");
      // as many requests in flight as agents: the adapter's limit is not what is measured
      o.put("k2.policy.openai.max-concurrent", Math.max(1, agents));
      var config = com.typesafe.config.ConfigFactory.load(com.typesafe.config.ConfigFactory.parseMap(o)
          .withFallback(com.typesafe.config.ConfigFactory.parseResources("application.conf")));
      JournalSchema.ensure(config); // persistence is off; the firewall's audit trail still has its table
      var node = Nodes.single(config, Duration.ofSeconds(30));
      try {
        dev.k2pekko.agents.NodeServices.get(node).inference().tell(new dev.k2pekko.agents.inference.InferenceServer.NewWeights(running.snapshot()));
        return dev.k2pekko.bench.ServedAgentsBench.run(node, agents, episodes, pairs, 1.0);
      } finally {
        Nodes.stop(node);
      }
    }

    private com.fasterxml.jackson.databind.node.ObjectNode clientLoad(ServeCommand.Running running) throws Exception {
      var r = dev.k2pekko.bench.ServeLoad.run(java.net.URI.create("http://127.0.0.1:" + running.port() + "/v1/chat/completions"), "k2-policy",
          clients, Duration.ofSeconds(warmup), Duration.ofSeconds(seconds));
      var stats = org.apache.pekko.actor.typed.javadsl.AskPattern.<dev.k2pekko.agents.inference.InferenceServer.Command,
              dev.k2pekko.agents.inference.InferenceServer.Stats>ask(running.inference(), dev.k2pekko.agents.inference.InferenceServer.GetStats::new,
              Duration.ofSeconds(10), running.system().scheduler()).toCompletableFuture().get(15, java.util.concurrent.TimeUnit.SECONDS);
      var out = new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode();
      out.put("checkpoint_version", running.version()).put("clients", r.clients()).put("seconds", r.seconds()).put("requests", r.requests())
          .put("errors", r.errors()).put("tool_calls", r.toolCalls())
          .put("requests_per_second", Math.round(r.requestsPerSecond() * 10) / 10.0).put("p50_ms", Math.round(r.p50Ms() * 100) / 100.0)
          .put("p99_ms", Math.round(r.p99Ms() * 100) / 100.0).put("max_ms", Math.round(r.maxMs() * 100) / 100.0)
          .put("inference_batches", stats.batches()).put("mean_batch", stats.batches() == 0 ? 0 : Math.round(10.0 * stats.requests() / stats.batches()) / 10.0)
          .put("max_batch", stats.maxBatchSeen());
      if (r.firstError() != null) out.put("first_error", r.firstError().length() > 300 ? r.firstError().substring(0, 300) : r.firstError());
      return out;
    }
  }

  @Command(name = "persist", mixinStandardHelpOptions = true,
      description = "Trajectories persisted/s through the collectors into the journal, next to a plain JDBC batch insert of "
          + "the same rows (same serialized events, same batch size) into the same database in the same run; then replay/s.")
  static final class Persist implements java.util.concurrent.Callable<Integer> {
    @Mixin NodeConfig node;
    @Option(names = "--trajectories", defaultValue = "20000") int count;
    @Option(names = "--json") boolean json;

    @Override public Integer call() throws Exception {
      Config config = node.build("h2", new HashMap<>());
      JournalSchema.ensure(config);
      var system = Nodes.single(config, Duration.ofSeconds(30));
      try {
        print(PersistBench.run(system, config, count), json);
        return 0;
      } finally {
        Nodes.stop(system);
      }
    }
  }

  @Command(name = "memory", mixinStandardHelpOptions = true, description = "Heap per idle agent actor (a child of a sharded cohort) on one node.")
  static final class Memory implements java.util.concurrent.Callable<Integer> {
    @Mixin NodeConfig node;
    @Option(names = "--agents", defaultValue = "100000") int agents;
    @Option(names = "--json") boolean json;
    @Option(names = "--baseline", description = "measure one sharded entity per agent that does nothing (Behaviors.ignore) instead of agents: "
        + "what Pekko and Cluster Sharding cost per entity")
    boolean baseline;
    @Option(names = "--after-run", description = "measure agents idle again after each ran one episode (teacher, persistence off), "
        + "which keeps what a run leaves in an agent")
    boolean afterRun;

    @Override public Integer call() throws Exception {
      if (baseline && afterRun) throw new NodeConfig.UsageError("--baseline and --after-run do not go together");
      var config = node.build("h2", new HashMap<>());
      if (afterRun && agents <= config.getInt("k2.agent.cohorts")) {
        throw new NodeConfig.UsageError("--after-run needs more --agents than k2.agent.cohorts (" + config.getInt("k2.agent.cohorts") + ")");
      }
      if (afterRun) JournalSchema.ensure(config); // the firewall's audit trail is written even with persistence off
      var system = Nodes.single(config, Duration.ofSeconds(30));
      try {
        print(afterRun ? MemoryBench.afterRun(system, agents) : MemoryBench.run(system, agents, baseline), json);
        return 0;
      } finally {
        Nodes.stop(system);
      }
    }
  }

  @Command(name = "clip", mixinStandardHelpOptions = true,
      description = "The K2 report's figure in miniature: vanilla Muon and MuonClip from the same seed; writes a CSV and a PNG "
          + "of each head's max logit and the loss per step (docs/clip.csv, docs/clip.png); see docs/MODEL.md.")
  static final class Clip implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--out", defaultValue = "docs", description = "directory for clip.csv and clip.png (default ${DEFAULT-VALUE})")
    java.nio.file.Path out;
    @Option(names = "--steps", description = "training steps (default 150)") Integer steps;
    @Option(names = "--lr", description = "learning rate (default 0.08)") Double lr;
    @Option(names = "--tau", description = "QK-Clip threshold (default 30)") Double tau;
    @Option(names = "--seed", description = "seed (default 7)") Long seed;
    @Option(names = "--json") boolean json;

    @Override public Integer call() throws Exception {
      var d = ClipExperiment.Config.defaults();
      var cfg = new ClipExperiment.Config(seed != null ? seed : d.seed(), steps != null ? steps : d.steps(),
          lr != null ? lr : d.lr(), tau != null ? tau : d.tau(), d.batch(), d.copyLength(), d.weightDecay());
      if (cfg.steps() < 1 || !(cfg.lr() > 0) || !(cfg.tau() > 0)) throw new NodeConfig.UsageError("--steps, --lr and --tau must be positive");
      java.nio.file.Files.createDirectories(out);
      var r = ClipExperiment.run(cfg, out);
      if (!json) {
        System.out.printf("tau %.2f%n  vanilla Muon: max logit %.2f, final loss %.4f%n  MuonClip:     max logit %.2f, final loss %.4f%n"
            + "  wrote %s and %s in %.1f s%n", r.tau(), r.vanilla().maxLogit(), r.vanilla().loss(), r.clip().maxLogit(), r.clip().loss(),
            r.csv(), r.png(), r.seconds());
      }
      if (json) System.out.println(r.toJson());
      return 0;
    }
  }

  @Command(name = "model", mixinStandardHelpOptions = true,
      description = "Forward+backward tokens/s of the default policy, Muon step time against size, ND4J matmul GFLOP/s next to "
          + "the plain-Java reference (about 2 minutes; prints Markdown tables).")
  static final class Model implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--policy", description = "Only what the CPU pipeline spends its time on: the agents' decoding of an action and the "
        + "plain-Java forward+backward (about 15 s).")
    boolean policyOnly;

    @Override public Integer call() {
      System.out.println(policyOnly ? ModelBench.policyReport() : ModelBench.report());
      return 0;
    }
  }

  @Command(name = "critic", mixinStandardHelpOptions = true,
      description = "The learned critic offline: trained on the teacher's episodes of training tasks with their verdicts (the k2.critic settings), "
          + "ROC AUC on the teacher's episodes of held-out tasks with its mistake rates scaled up; training and scoring time.")
  static final class CriticOffline implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--episodes", defaultValue = "6000", description = "training episodes (the default run's synthesis: ${DEFAULT-VALUE})") int episodes;
    @Option(names = "--held-out", defaultValue = "2000", description = "held-out episodes") int heldOut;
    @Option(names = "--mistakes", defaultValue = "3", description = "the teacher's mistake rates on held-out tasks, times this") double mistakes;
    @Option(names = "--open-episodes", defaultValue = "0", description = "instead: the teacher's open episodes (mistake rates times --mistakes) "
        + "scored by critics trained on --episodes verifiable ones, AUC against the hidden rubric with and without the untrained buckets (0: off)") int openEpisodes;
    @Option(names = "--init-seeds", defaultValue = "5", description = "with --open-episodes: critics with this many initial weights") int initSeeds;
    @Option(names = "--append-episodes", defaultValue = "0", description = "with --open-episodes: also train on this many teacher episodes of "
        + "noted tasks (k2.tasks.noted-share's: verifiable tasks that add to a note)") int appendEpisodes;
    @Option(names = "--json") boolean json;

    @Override public Integer call() {
      if (episodes < 10 || heldOut < 10) throw new NodeConfig.UsageError("--episodes and --held-out must be at least 10");
      if (!(mistakes > 0)) throw new NodeConfig.UsageError("--mistakes must be > 0, got " + mistakes);
      if (openEpisodes < 0 || initSeeds < 1 || appendEpisodes < 0) throw new NodeConfig.UsageError("--open-episodes must be >= 0 and --init-seeds >= 1");
      var settings = dev.k2pekko.critic.Critic.Settings.fromConfig(com.typesafe.config.ConfigFactory.load());
      if (openEpisodes > 0) {
        print(dev.k2pekko.bench.CriticBench.openProbe(settings, episodes, openEpisodes, mistakes, initSeeds, appendEpisodes), json);
        return 0;
      }
      print(dev.k2pekko.bench.CriticBench.run(settings, episodes, heldOut, mistakes), json);
      return 0;
    }
  }
}
