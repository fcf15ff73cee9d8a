package dev.k2pekko.launcher;

import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.JournalSchema;
import dev.k2pekko.agents.RunDriver;
import java.time.Duration;
import java.util.HashMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code k2 run}: a local single-node cluster with every role, running the synthesis stage. */
@Command(name = "run", mixinStandardHelpOptions = true,
    description = "Boot a local single-node cluster (all roles, one JVM) and run the synthesis stage: agents run "
        + "generated tasks against the tool universe, the judge scores them, accepted trajectories are persisted.")
final class RunCommand implements Callable<Integer> {
  @Mixin NodeConfig node;

  @Option(names = "--agents", description = "number of agents (default ${DEFAULT-VALUE})", defaultValue = "1000")
  int agents;

  @Option(names = "--episodes", description = "episodes per agent (default ${DEFAULT-VALUE})", defaultValue = "5")
  int episodes;

  @Option(names = "--seed", description = "run seed: tasks and teacher mistakes follow from it (default ${DEFAULT-VALUE})", defaultValue = "42")
  long seed;

  @Option(names = "--persist", description = "accepted, all (rejected too, flagged) or none (default ${DEFAULT-VALUE})", defaultValue = "accepted")
  String persist;

  @Option(names = "--timeout", description = "give up after this many seconds (default ${DEFAULT-VALUE})", defaultValue = "600")
  int timeoutSeconds;

  @Option(names = "--json", description = "print the summary as one JSON object on the last line of stdout")
  boolean json;

  @Option(names = "--quiet", description = "no progress bar")
  boolean quiet;

  @Override public Integer call() throws Exception {
    var mode = switch (persist) {
      case "accepted" -> Agent.PersistMode.ACCEPTED;
      case "all" -> Agent.PersistMode.ALL;
      case "none" -> Agent.PersistMode.NONE;
      default -> throw new NodeConfig.UsageError("--persist must be accepted, all or none, got '" + persist + "'");
    };
    if (timeoutSeconds < 1) throw new NodeConfig.UsageError("--timeout must be at least 1 second");
    var spec = new RunDriver.RunSpec("run-" + Long.toString(System.currentTimeMillis(), 36), agents, episodes, seed, mode,
        Duration.ofSeconds(timeoutSeconds));
    var config = node.build("h2", new HashMap<>());
    String journal = config.getString("pekko-persistence-jdbc.shared-databases.slick.db.url");
    if (mode != Agent.PersistMode.NONE) System.err.println("k2: " + JournalSchema.ensure(config));
    var system = Nodes.single(config, Duration.ofSeconds(30));
    try {
      var report = new Report(System.err);
      var done = RunDriver.start(system, spec, s -> { if (!quiet) report.progress(s); });
      var summary = Nodes.await(done, spec.timeout().plusSeconds(30));
      if (json) System.out.println(Report.json(summary, agents));
      else Report.table(summary, agents, mode == Agent.PersistMode.NONE ? "off" : journal, System.out);
      return summary.complete() ? 0 : 1;
    } finally {
      Nodes.stop(system);
    }
  }
}
