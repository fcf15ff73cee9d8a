package dev.k2pekko.launcher;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.k2pekko.agents.inference.InferenceServer;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ps.checkpoint.Checkpoints;
import dev.k2pekko.tools.ToolDirectory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code k2 serve}: the trained policy of a checkpoint behind the OpenAI chat-completions API (docs/SERVE.md). */
@Command(name = "serve", mixinStandardHelpOptions = true,
    description = "Serve the policy of a checkpoint written by `k2 run` over HTTP, as the OpenAI chat-completions API: GET /v1/models, "
        + "POST /v1/chat/completions (messages, tools, tool_choice, temperature, seed, max_tokens). Runs until stopped (Ctrl-C).")
final class ServeCommand implements Callable<Integer> {
  @Option(names = "--checkpoint", required = true, paramLabel = "DIR",
      description = "a directory of checkpoints (ckpt-<version>.json/.safetensors; the newest good one is served), a data directory "
          + "or its checkpoints/ directory (the last run there, from checkpoints/LATEST)")
  String checkpoint;

  @Option(names = "--port", required = true, paramLabel = "P", description = "TCP port to listen on (0: any free port, printed)")
  int port;

  @Option(names = "--host", defaultValue = "127.0.0.1", paramLabel = "HOST", description = "address to bind (default ${DEFAULT-VALUE}: this machine "
      + "only; any other needs an API key: --api-key-file or K2_API_KEY)")
  String host;

  @Option(names = "--api-key-file", paramLabel = "FILE", description = "a file whose first line is the key every request must carry as "
      + "Authorization: Bearer KEY (or K2_API_KEY); required when --host is not a loopback address")
  String apiKeyFile;

  @Option(names = "--model-name", defaultValue = "k2-policy", paramLabel = "ID", description = "the model id clients name (default ${DEFAULT-VALUE})")
  String modelName;

  @Option(names = "--max-body-bytes", defaultValue = "1048576", paramLabel = "N", description = "largest request body; larger ones get 413 (default ${DEFAULT-VALUE})")
  long maxBodyBytes;

  @Option(names = "--max-concurrent", defaultValue = "256", paramLabel = "N",
      description = "chat completions in flight at once; more get 429 (default ${DEFAULT-VALUE})")
  int maxConcurrent;

  @Option(names = "--request-timeout", defaultValue = "30", paramLabel = "SECONDS", description = "longest a request may take (default ${DEFAULT-VALUE})")
  int requestTimeout;

  @Option(names = "--config", paramLabel = "FILE", description = "HOCON overrides (the run's k2.tools settings, which fix the policy's vocabulary; k2.inference)")
  String configFile;

  /** A running server: its actor system (terminate it to stop) and the port it listens on. */
  record Running(ActorSystem<Void> system, ServerBinding binding, int port, long version, String checkpoint,
                 org.apache.pekko.actor.typed.ActorRef<InferenceServer.Command> inference, WeightsSnapshot snapshot) {
    void stop() {
      binding.terminate(Duration.ofSeconds(3)).toCompletableFuture().orTimeout(5, TimeUnit.SECONDS).exceptionally(e -> null).join();
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().orTimeout(10, TimeUnit.SECONDS).exceptionally(e -> null).join();
    }
  }

  @Override public Integer call() throws Exception {
    var running = start();
    var stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      running.stop();
      stopped.countDown();
    }, "k2-serve-shutdown"));
    // One line a script can wait for (the port is the bound one, also with --port 0).
    System.out.println("k2 serve: " + modelName + " (checkpoint version " + running.version() + ", " + running.checkpoint() + ") on http://"
        + host + ":" + running.port() + "/v1");
    System.out.flush();
    running.system().getWhenTerminated().toCompletableFuture().join();
    stopped.await(10, TimeUnit.SECONDS);
    return 0;
  }

  /** Loads the checkpoint, starts the inference server and binds the HTTP server; bad input is a UsageError before anything binds. */
  Running start() throws Exception {
    if (port < 0 || port > 65535) throw new NodeConfig.UsageError("--port must be 0..65535, got " + port);
    try {
      Class.forName("org.apache.pekko.http.javadsl.Http", false, ServeCommand.class.getClassLoader());
    } catch (ClassNotFoundException e) {
      throw new NodeConfig.UsageError("this k2 (a bundle) leaves out Pekko HTTP: a learner host serves no API; run k2 serve from a checkout");
    }
    if (maxBodyBytes < 1) throw new NodeConfig.UsageError("--max-body-bytes must be positive, got " + maxBodyBytes);
    if (maxConcurrent < 1) throw new NodeConfig.UsageError("--max-concurrent must be positive, got " + maxConcurrent);
    if (requestTimeout < 1) throw new NodeConfig.UsageError("--request-timeout must be positive, got " + requestTimeout);
    String apiKey = BearerToken.read("--api-key-file", apiKeyFile, "K2_API_KEY", "--host", host);
    if (!modelName.matches("[A-Za-z0-9_.:@/-]{1,128}")) throw new NodeConfig.UsageError("--model-name takes letters, digits and _.:@/-, got '" + modelName + "'");
    Path dir = checkpointDir(Path.of(checkpoint));
    var meta = Checkpoints.latest(dir).orElseThrow(() -> new NodeConfig.UsageError("--checkpoint " + dir + ": no good checkpoint there "
        + "(ckpt-<version>.json with its .safetensors, checksums matching)"));
    var ck = Checkpoints.read(meta.json(), new ReferenceOps());
    var cfg = modelConfig(meta.info().modelConfig(), meta.json());

    var o = new HashMap<String, Object>();
    o.put("pekko.actor.provider", "local"); // no cluster: the inference server and the HTTP server, nothing else
    o.put("pekko.loggers", List.of("org.apache.pekko.event.slf4j.Slf4jLogger"));
    o.put("pekko.logging-filter", "org.apache.pekko.event.slf4j.Slf4jLoggingFilter");
    // ChatServer enforces the body limit itself, with an OpenAI error body; Pekko's own check would answer in plain text.
    o.put("pekko.http.server.parsing.max-content-length", "infinite");
    o.put("pekko.http.server.request-timeout", (requestTimeout + 5) + "s");
    Config base = ConfigFactory.load();
    if (configFile != null) {
      var f = new java.io.File(configFile);
      if (!f.isFile()) throw new NodeConfig.UsageError("--config: no such file " + configFile);
      base = ConfigFactory.load(ConfigFactory.parseFile(f).withFallback(ConfigFactory.defaultApplication()));
    }
    Config config = ConfigFactory.parseMap(o).withFallback(base);
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "k2-serve", config);
    try {
      var universe = ToolDirectory.get(system).universe();
      // a checkpoint of a --policy-tasks kg run: k2.policy.tasks = kg and k2.mcp.knowledge-graph in --config
      PolicyFormat format;
      try {
        format = dev.k2pekko.agents.NodeServices.policyFormat(system.settings().config().getConfig("k2"), universe);
      } catch (IllegalArgumentException e) {
        throw new NodeConfig.UsageError(e.getMessage());
      }
      if (format.tokenizer().vocabSize() != cfg.vocab()) {
        throw new NodeConfig.UsageError("--checkpoint " + meta.json() + ": its model has a vocabulary of " + cfg.vocab() + " tokens, this tool universe's "
            + "policy format " + format.tokenizer().vocabSize() + ": serve it with the k2.tools settings of the run that wrote it (--config)");
      }
      var names = new ArrayList<String>();
      var data = new ArrayList<float[]>();
      for (var spec : PolicyModel.specsOf(cfg)) {
        var t = ck.weights().get(spec.name());
        if (t == null) throw new NodeConfig.UsageError("--checkpoint " + meta.json() + ": no tensor " + spec.name() + " for its model_config");
        names.add(spec.name());
        data.add(WeightsSnapshot.toFloats(t));
      }
      WeightsSnapshot snapshot;
      try {
        snapshot = WeightsSnapshot.of(ck.version(), cfg, names, data).verify();
      } catch (WeightsSnapshot.CorruptWeightsException e) {
        throw new NodeConfig.UsageError("--checkpoint " + meta.json() + ": " + e.getMessage());
      }
      var inference = system.systemActorOf(InferenceServer.create(format, dev.k2pekko.agents.NodeServices.inferenceSettings(config.getConfig("k2.inference"))),
          "inference", Props.empty());
      inference.tell(new InferenceServer.NewWeights(snapshot));
      var model = new ChatServer.Model(modelName, ck.version(), meta.createdAt().getEpochSecond());
      var server = new ChatServer(system, inference, format, universe, model, cfg.context(),
          new ChatServer.Settings(maxBodyBytes, maxConcurrent, Duration.ofSeconds(requestTimeout)));
      ServerBinding binding;
      try {
        binding = Http.get(system).newServerAt(host, port).bind(server.handler(apiKey)).toCompletableFuture().get(30, TimeUnit.SECONDS);
      } catch (java.util.concurrent.ExecutionException e) {
        throw new NodeConfig.UsageError("cannot listen on " + host + ":" + port + ": " + (e.getCause() == null ? e : e.getCause()).getMessage());
      }
      return new Running(system, binding, binding.localAddress().getPort(), ck.version(), meta.json().getFileName().toString(), inference, snapshot);
    } catch (Throwable e) { // precise rethrow: what the try block throws
      system.terminate();
      throw e;
    }
  }

  /** The directory whose checkpoints are served: DIR itself, or the last run of a data or checkpoints directory. */
  static Path checkpointDir(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) throw new NodeConfig.UsageError("--checkpoint " + dir + ": no such directory");
    try (var files = Files.list(dir)) {
      if (files.anyMatch(f -> f.getFileName().toString().matches("ckpt-\\d{9,}\\.json"))) return dir;
    }
    for (Path latest : new Path[] {dir.resolve("LATEST"), dir.resolve("checkpoints").resolve("LATEST")}) {
      if (Files.isRegularFile(latest)) {
        String run = Files.readString(latest).trim();
        if (!run.matches("[A-Za-z0-9_.-]{1,64}")) throw new NodeConfig.UsageError("--checkpoint: " + latest + " does not name a run");
        return latest.getParent().resolve(run);
      }
    }
    throw new NodeConfig.UsageError("--checkpoint " + dir + ": no checkpoint (ckpt-<version>.json) and no LATEST or checkpoints/LATEST naming a run");
  }

  private static ModelConfig modelConfig(Map<String, Object> m, Path json) {
    try {
      return new ModelConfig(num(m, "vocab"), num(m, "d_model"), num(m, "layers"), num(m, "heads"), num(m, "context"), num(m, "mlp_ratio"),
          m.get("norm_eps") instanceof Number n ? n.doubleValue() : 1e-5);
    } catch (IllegalArgumentException e) {
      throw new NodeConfig.UsageError("--checkpoint " + json + ": model_config " + m + ": " + e.getMessage());
    }
  }

  private static int num(Map<String, Object> m, String key) {
    if (!(m.get(key) instanceof Number n)) throw new IllegalArgumentException("no number " + key);
    return n.intValue();
  }
}
