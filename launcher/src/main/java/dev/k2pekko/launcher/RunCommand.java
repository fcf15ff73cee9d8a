package dev.k2pekko.launcher;

import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.JournalSchema;
import dev.k2pekko.agents.RunDriver;
import dev.k2pekko.pipeline.Pipeline;
import dev.k2pekko.pipeline.TrainerNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code k2 run}: a local single-node cluster with every role, running the whole pipeline (evaluation at
 * initialisation, synthesis, SFT, evaluation, RL, evaluation), or with {@code --synthesis-only} the synthesis stage
 * on the whole tool universe.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
    description = "Boot a local single-node cluster (all roles, one JVM) and run the pipeline: held-out evaluation of the "
        + "fresh policy, synthesis by the teacher, SFT by the learners from the journal, evaluation, RL rounds, evaluation. "
        + "--synthesis-only runs the synthesis stage alone on the whole tool universe.")
final class RunCommand implements Callable<Integer> {
  @Mixin NodeConfig node;

  @Mixin OpsOptions ops;

  @Mixin PolicyOptions policy;

  @Option(names = "--synthesis-only", description = "run only the synthesis stage (agents, judge, journal) on the whole tool universe")
  boolean synthesisOnly;

  @Option(names = "--agents", description = "synthesis-only: number of agents (default ${DEFAULT-VALUE})", defaultValue = "1000")
  int agents;

  @Option(names = "--episodes", description = "synthesis-only: episodes per agent (default ${DEFAULT-VALUE})", defaultValue = "5")
  int episodes;

  @Option(names = "--seed", description = "run seed: tasks, teacher mistakes and sampling follow from it (default ${DEFAULT-VALUE})", defaultValue = "42")
  long seed;

  @Option(names = "--persist", description = "synthesis-only: accepted, all (rejected too, flagged) or none (default ${DEFAULT-VALUE})", defaultValue = "accepted")
  String persist;

  @Option(names = "--timeout", description = "synthesis-only: give up after this many seconds (default ${DEFAULT-VALUE})", defaultValue = "600")
  int timeoutSeconds;

  @Option(names = "--resume", description = "finish the last pipeline run in the data directory after a crash: stages it recorded as done are kept, "
      + "an interrupted one is run again from its start with the same tasks (docs/LOOP.md)")
  boolean resume;

  @Option(names = "--learners", description = "learner instances (default: k2.learner.count, 2)")
  Integer learners;

  @Option(names = "--mode", description = "parameter server: sync or async (default: k2.ps.mode, sync)")
  String mode;

  @Option(names = "--backend", description = "learners' tensor backend: java, nd4j, cuda or auto (default: k2.learner.backend, auto)")
  String backend;

  @Option(names = "--no-clip", description = "turn QK-Clip off (vanilla Muon + AdamW)")
  boolean noClip;

  @Option(names = "--sft-episodes", description = "teacher episodes for SFT data (default: 300 agents x 20)")
  Integer sftEpisodes;

  @Option(names = "--rl-rounds", description = "RL rounds (default: k2.pipeline.rl-rounds)")
  Integer rlRounds;

  @Option(names = "--eval-tasks", description = "held-out tasks per evaluation (default: k2.pipeline.eval-tasks)")
  Integer evalTasks;

  @Option(names = "--policy-tasks", paramLabel = "core|kg|fs", description = "what the learned policy trains and is evaluated on: the core "
      + "tools' tasks, the knowledge-graph tasks on the MCP memory server named by k2.mcp.knowledge-graph, or the file tasks on the MCP "
      + "filesystem server named by k2.mcp.files (default: k2.policy.tasks, core)")
  String policyTasks;

  @Option(names = "--json", description = "print the summary as one JSON object on the last line of stdout")
  boolean json;

  @Option(names = "--quiet", description = "no progress bar")
  boolean quiet;

  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec command;

  /** Flags of one mode only: given in the other they would be silently ignored, so they are refused. */
  static final java.util.List<String> SYNTHESIS_ONLY = java.util.stream.Stream.concat(
      java.util.stream.Stream.of("--agents", "--episodes", "--persist", "--timeout"), PolicyOptions.FLAGS.stream()).toList();
  static final java.util.List<String> PIPELINE_ONLY = java.util.List.of("--resume", "--learners", "--mode", "--backend", "--no-clip",
      "--sft-episodes", "--rl-rounds", "--eval-tasks", "--policy-tasks");

  private void refuseFlagsOfTheOtherMode() {
    var parsed = command.commandLine().getParseResult();
    for (var f : synthesisOnly ? PIPELINE_ONLY : SYNTHESIS_ONLY) {
      if (parsed.hasMatchedOption(f)) {
        throw new NodeConfig.UsageError(synthesisOnly
            ? f + " applies to the pipeline, not to --synthesis-only"
            : PolicyOptions.FLAGS.contains(f) ? f + " applies to --synthesis-only; the pipeline's synthesis is the teacher's"
            : f + " applies to --synthesis-only; the pipeline's synthesis is sized by --sft-episodes and k2.pipeline.synth-*");
      }
    }
  }

  @Override public Integer call() throws Exception {
    refuseFlagsOfTheOtherMode();
    ops.check();
    if (synthesisOnly) return synthesis();
    if (learners != null && learners < 1) throw new NodeConfig.UsageError("--learners must be at least 1");
    if (mode != null && !mode.equals("sync") && !mode.equals("async")) throw new NodeConfig.UsageError("--mode must be sync or async, got '" + mode + "'");
    if (sftEpisodes != null && sftEpisodes < 1) throw new NodeConfig.UsageError("--sft-episodes must be at least 1");
    if (rlRounds != null && rlRounds < 0) throw new NodeConfig.UsageError("--rl-rounds must be >= 0");
    if (evalTasks != null && evalTasks < 1) throw new NodeConfig.UsageError("--eval-tasks must be at least 1");
    if (backend != null && !dev.k2pekko.ops.Backends.NAMES.contains(backend)) {
      throw new NodeConfig.UsageError("--backend must be one of " + dev.k2pekko.ops.Backends.NAMES + ", got '" + backend + "'");
    }
    var o = new HashMap<String, Object>();
    if (learners != null) o.put("k2.learner.count", learners);
    if (mode != null) o.put("k2.ps.mode", mode);
    if (noClip) o.put("k2.ps.qk-clip", "off");
    if (backend != null) {
      if (!dev.k2pekko.ops.Backends.NAMES.contains(backend)) throw new NodeConfig.UsageError("--backend must be one of " + dev.k2pekko.ops.Backends.NAMES + ", got '" + backend + "'");
      o.put("k2.learner.backend", backend);
    }
    if (sftEpisodes != null) {
      int agents = Math.min(300, sftEpisodes);
      o.put("k2.pipeline.synth-agents", agents);
      o.put("k2.pipeline.synth-episodes", (sftEpisodes + agents - 1) / agents);
    }
    if (rlRounds != null) o.put("k2.pipeline.rl-rounds", rlRounds);
    if (evalTasks != null) o.put("k2.pipeline.eval-tasks", evalTasks);
    if (policyTasks != null) {
      if (!java.util.Set.of("core", "kg", "fs").contains(policyTasks)) throw new NodeConfig.UsageError("--policy-tasks must be core, kg or fs, got '" + policyTasks + "'");
      o.put("k2.policy.tasks", policyTasks);
    }
    o.putAll(ops.config());
    var config = node.build("h2", o);
    checkPolicyTasks(config);
    Pipeline.Spec.fromConfig("check", seed, config); // a pipeline setting out of range is bad input, found before booting
    dev.k2pekko.critic.Critic.Settings.fromConfig(config); // and so is a critic setting
    Path latest = Path.of(config.getString("k2.journal.dir")).resolve("checkpoints").resolve("LATEST");
    String runId;
    if (resume) {
      // checked before the journal is opened, so that --resume on an empty or wrong directory creates nothing
      if (!Files.isRegularFile(latest)) throw new NodeConfig.UsageError("--resume: no earlier pipeline run in " + latest.getParent().getParent().toAbsolutePath() + " (no " + latest + "); nothing was created");
      runId = Files.readString(latest).trim();
      if (!runId.matches("[A-Za-z0-9_.-]{1,64}")) throw new NodeConfig.UsageError("--resume: " + latest + " does not name a run");
      var h2 = JournalSchema.h2File(config.getString("pekko-persistence-jdbc.shared-databases.slick.db.url"));
      if (h2 != null && !Files.isRegularFile(h2)) throw new JournalSchema.Missing("--resume: run " + runId + " has no journal at " + h2.toAbsolutePath() + "; nothing was created");
      System.err.println("k2: " + JournalSchema.ensure(config));
      System.err.println("k2: resuming pipeline run " + runId);
    } else {
      System.err.println("k2: " + JournalSchema.ensure(config));
      runId = "p" + Long.toString(System.currentTimeMillis(), 36);
      Files.createDirectories(latest.getParent());
      Files.writeString(latest, runId + "\n");
    }
    var system = Nodes.single(config, Duration.ofSeconds(30));
    dev.k2pekko.launcher.ops.OpsServer.Running endpoint = null;
    try {
      endpoint = ops.start(system);
      McpStatus.print(system);
      var started = TrainerNode.start(system, runId);
      var report = new PipelineReport(System.err);
      var stages = new dev.k2pekko.launcher.ops.StageMeters(system);
      var pipeline = new Pipeline(system, started, Pipeline.Spec.fromConfig(runId, seed, config), p -> {
        stages.progress(p.stage(), p.done(), p.total());
        if (!quiet) report.progress(p);
      });
      var result = pipeline.run();
      var reportDir = Path.of(config.getString("k2.journal.dir")).resolve("reports").resolve(runId);
      dev.k2pekko.pipeline.RunReport.write(result, reportDir);
      System.err.println(dev.k2pekko.pipeline.RunReport.canPlot()
          ? "k2: report (CSV and PNG) in " + reportDir.toAbsolutePath() + "; `k2 report --out DIR` copies and redraws it"
          : "k2: report (CSV; this Java has no java.desktop for the PNGs) in " + reportDir.toAbsolutePath()
              + "; `k2 report --out DIR` on a full JDK draws them");
      if (json) System.out.println(PipelineReport.json(result, dev.k2pekko.pipeline.TrainerNode.ClipSettings.of(config).mode()));
      else PipelineReport.table(result, dev.k2pekko.pipeline.TrainerNode.ClipSettings.of(config).mode(), System.out);
      return 0;
    } finally {
      if (endpoint != null) endpoint.close();
      Nodes.stop(system);
    }
  }

  /** k2.policy.tasks = kg or fs needs its MCP server, and the core tasks' extras (open tasks) do not apply to them. */
  private static void checkPolicyTasks(com.typesafe.config.Config config) {
    String t = config.getString("k2.policy.tasks");
    if (t.equals("core")) return;
    if (!t.equals("kg") && !t.equals("fs")) throw new NodeConfig.UsageError("k2.policy.tasks must be core, kg or fs, got '" + t + "'");
    if (t.equals("kg") && config.getString("k2.mcp.knowledge-graph").isEmpty()) {
      throw new NodeConfig.UsageError("--policy-tasks kg needs k2.mcp.knowledge-graph = NAME, the --mcp server that runs @modelcontextprotocol/server-memory");
    }
    if (t.equals("fs") && (config.getString("k2.mcp.files").isEmpty() || config.getString("k2.tools.firewall.sandbox").isEmpty())) {
      throw new NodeConfig.UsageError("--policy-tasks fs needs k2.mcp.files = NAME, the --mcp server that runs @modelcontextprotocol/server-filesystem, "
          + "and k2.tools.firewall.sandbox = the directory it was given");
    }
    if (config.getDouble("k2.open.synthesis-share") > 0 || config.getDouble("k2.open.rl-share") > 0 || config.getInt("k2.open.eval-tasks") > 0) {
      throw new NodeConfig.UsageError("--policy-tasks " + t + ": open tasks (k2.open.*) are core tasks; set their shares and eval-tasks to 0");
    }
  }

  private int synthesis() throws Exception {
    var mode = switch (persist) {
      case "accepted" -> Agent.PersistMode.ACCEPTED;
      case "all" -> Agent.PersistMode.ALL;
      case "none" -> Agent.PersistMode.NONE;
      default -> throw new NodeConfig.UsageError("--persist must be accepted, all or none, got '" + persist + "'");
    };
    if (timeoutSeconds < 1) throw new NodeConfig.UsageError("--timeout must be at least 1 second");
    if (agents < 1) throw new NodeConfig.UsageError("--agents must be at least 1, got " + agents);
    if (episodes < 1) throw new NodeConfig.UsageError("--episodes must be at least 1, got " + episodes);
    var spec = new RunDriver.RunSpec("run-" + Long.toString(System.currentTimeMillis(), 36), agents, episodes, seed, mode,
        Duration.ofSeconds(timeoutSeconds), policy.episodes());
    var overrides = new HashMap<String, Object>(ops.config());
    overrides.putAll(policy.config());
    var config = node.build("h2", overrides);
    policy.check(config);
    String journal = config.getString("pekko-persistence-jdbc.shared-databases.slick.db.url");
    if (mode != Agent.PersistMode.NONE) System.err.println("k2: " + JournalSchema.ensure(config));
    var system = Nodes.single(config, Duration.ofSeconds(30));
    dev.k2pekko.launcher.ops.OpsServer.Running endpoint = null;
    try {
      endpoint = ops.start(system);
      McpStatus.print(system);
      var report = new Report(System.err);
      var stages = new dev.k2pekko.launcher.ops.StageMeters(system);
      var done = RunDriver.start(system, spec, s -> {
        stages.progress("synthesis", s.get("episodes"), s.expectedEpisodes());
        if (!quiet) report.progress(s);
      });
      var summary = Nodes.await(done, spec.timeout().plusSeconds(30));
      if (json) System.out.println(Report.json(summary, agents));
      else Report.table(summary, agents, mode == Agent.PersistMode.NONE ? "off" : journal, System.out);
      if (policy.openAi()) System.err.println("k2: " + PolicyOptions.servedLine(system));
      return summary.complete() ? 0 : 1;
    } finally {
      if (endpoint != null) endpoint.close();
      Nodes.stop(system);
    }
  }
}
