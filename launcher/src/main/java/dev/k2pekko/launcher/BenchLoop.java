package dev.k2pekko.launcher;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.ops.Backends;
import dev.k2pekko.bench.LoopBench;
import dev.k2pekko.bench.OptimizerComparison;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code k2 bench learner|ps|optimizers}: the training loop's measurements. */
final class BenchLoop {
  private BenchLoop() {}

  private static final ObjectMapper JSON = new ObjectMapper();

  @Command(name = "learner", mixinStandardHelpOptions = true,
      description = "One learner's SFT step (forward and backward) on teacher examples: tokens/s for the default policy shape.")
  static final class Learner implements Callable<Integer> {
    @Option(names = "--backend", description = "java, nd4j, cuda or auto (default ${DEFAULT-VALUE})", defaultValue = "java") String backend;
    @Option(names = "--batch", defaultValue = "32") int batch;
    @Option(names = "--steps", defaultValue = "30") int steps;
    @Option(names = "--d-model", defaultValue = "64") int d;
    @Option(names = "--layers", defaultValue = "2") int layers;
    @Option(names = "--json") boolean json;

    @Override public Integer call() {
      if (batch < 1 || steps < 1) throw new NodeConfig.UsageError("--batch and --steps must be at least 1");
      var ops = Backends.select(backend);
      var r = LoopBench.learner(ops, new ModelConfig(2, d, layers, 4, 192, 4, 1e-5), batch, 5, steps);
      var o = JSON.createObjectNode();
      o.put("backend", r.backend());
      o.put("parameters", r.parameters());
      o.put("batch_examples", r.batch());
      o.put("tokens_per_s", Math.round(r.tokensPerSecond()));
      o.put("ms_per_step", Math.round(r.msPerStep() * 10) / 10.0);
      BenchCommand.print(o, json);
      return 0;
    }
  }

  @Command(name = "ps", mixinStandardHelpOptions = true,
      description = "Parameter-server step latency (push to published version) against model width, and the fan-out of a "
          + "new version to N weight subscribers that each verify its checksum.")
  static final class Ps implements Callable<Integer> {
    @Mixin NodeConfig node;
    @Option(names = "--widths", split = ",", defaultValue = "64,128,256") List<Integer> widths;
    @Option(names = "--layers", defaultValue = "2") int layers;
    @Option(names = "--subscribers", description = "weight subscribers for the fan-out run (default ${DEFAULT-VALUE})", defaultValue = "1000") int subscribers;
    @Option(names = "--steps", defaultValue = "20") int steps;
    @Option(names = "--json") boolean json;

    @Override public Integer call() throws Exception {
      if (steps < 2 || subscribers < 0) throw new NodeConfig.UsageError("--steps must be at least 2, --subscribers at least 0");
      var config = node.build("h2", new HashMap<>(java.util.Map.of("pekko.cluster.roles", List.of("ps", "monitor"))));
      var system = Nodes.single(config, Duration.ofSeconds(30));
      dev.k2pekko.ps.server.PsGroup.init(system);
      var dir = Files.createTempDirectory("k2-bench-ps");
      try {
        var out = JSON.createObjectNode();
        var rows = out.putArray("steps");
        for (int d : widths) {
          var r = LoopBench.ps(system, d, layers, 0, steps, dir);
          var row = rows.addObject();
          row.put("d_model", d);
          row.put("parameters", r.parameters());
          row.put("step_ms_median", Math.round(r.stepMsMedian() * 10) / 10.0);
          row.put("step_ms_p90", Math.round(r.stepMsP90() * 10) / 10.0);
          if (!json) System.out.printf("  d=%-5d %,10d parameters: step %.1f ms median, %.1f ms p90%n", d, r.parameters(), r.stepMsMedian(), r.stepMsP90());
        }
        if (subscribers > 0) {
          var r = LoopBench.ps(system, widths.getFirst(), layers, subscribers, steps, dir);
          var f = out.putObject("publish");
          f.put("subscribers", subscribers);
          f.put("d_model", widths.getFirst());
          f.put("step_ms_median", Math.round(r.stepMsMedian() * 10) / 10.0);
          f.put("fan_out_ms_median", Math.round(r.fanOutMsMedian() * 10) / 10.0);
          if (!json) System.out.printf("  publish to %,d subscribers (d=%d): step %.1f ms median, first to last receipt %.1f ms median%n",
              subscribers, widths.getFirst(), r.stepMsMedian(), r.fanOutMsMedian());
        }
        if (json) System.out.println(out);
        return 0;
      } finally {
        Nodes.stop(system);
      }
    }
  }

  @Command(name = "optimizers", mixinStandardHelpOptions = true,
      description = "MuonClip against AdamW on the same SFT data from the same seed (same batches, init and schedule): held-out "
          + "loss curves and the steps each needs to reach AdamW's final loss.")
  static final class Optimizers implements Callable<Integer> {
    @Option(names = "--episodes", defaultValue = "3000") int episodes;
    @Option(names = "--steps", defaultValue = "600") int steps;
    @Option(names = "--batch", defaultValue = "32") int batch;
    @Option(names = "--lr", defaultValue = "0.01") double lr;
    @Option(names = "--seed", defaultValue = "1") long seed;
    @Option(names = "--out", description = "directory for optimizers.csv and optimizers.png (default ${DEFAULT-VALUE})", defaultValue = "out") String out;
    @Option(names = "--json") boolean json;

    @Override public Integer call() throws Exception {
      if (steps < 20 || episodes < 100) throw new NodeConfig.UsageError("--steps must be at least 20 and --episodes at least 100");
      var r = OptimizerComparison.run(new ModelConfig(2, 64, 2, 4, 192, 4, 1e-5), episodes, steps, batch, lr, Math.max(10, steps / 30), seed);
      OptimizerComparison.write(Path.of(out), r, lr);
      var o = JSON.createObjectNode();
      o.put("train_examples", r.trainSequences());
      o.put("lr", lr);
      o.put("target_loss", Math.round(r.target() * 10000) / 10000.0);
      o.put("muonclip_steps_to_target", r.muonSteps());
      o.put("adamw_steps_to_target", r.adamSteps());
      o.put("muonclip_final_loss", Math.round(r.muonClip().loss()[r.muonClip().loss().length - 1] * 10000) / 10000.0);
      o.put("adamw_final_loss", Math.round(r.target() * 10000) / 10000.0);
      BenchCommand.print(o, json);
      return 0;
    }
  }
}
