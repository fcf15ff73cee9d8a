package dev.k2pekko.launcher;

import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.JournalSchema;
import dev.k2pekko.agents.K2Node;
import dev.k2pekko.agents.RunDriver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Subscribe;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code k2 node}: one node of a multi-JVM cluster (PostgreSQL journal by default). */
@Command(name = "node", mixinStandardHelpOptions = true,
    description = "Start one node that joins a cluster through its seed nodes and prints membership changes. "
        + "With --run-agents it also drives a run once --min-members nodes are up, prints the summary and leaves. "
        + "A node the cluster downs (the minority side of a network partition) says so and exits with code 6.")
final class NodeCommand implements Callable<Integer> {
  static final Set<String> ROLES = Set.of("agent", "tool", "learner", "ps", "monitor");

  @Mixin NodeConfig node;

  @Mixin OpsOptions ops;

  @Mixin PolicyOptions policy;

  @Option(names = "--roles", description = "comma-separated roles: agent, tool, learner, ps, monitor (default ${DEFAULT-VALUE})",
      defaultValue = "agent,tool", split = ",")
  List<String> roles;

  @Option(names = "--port", required = true, description = "this node's port on 127.0.0.1")
  int port;

  @Option(names = "--seeds", required = true, split = ",", description = "seed nodes, host:port,... (list this node's own address to start a cluster)")
  List<String> seeds;

  @Option(names = "--host", description = "this node's host (default ${DEFAULT-VALUE})", defaultValue = "127.0.0.1")
  String host;

  @Option(names = "--run-agents", description = "drive a run with this many agents, spread over the cluster")
  Integer runAgents;

  @Option(names = "--episodes", description = "episodes per agent when driving (default ${DEFAULT-VALUE})", defaultValue = "5")
  int episodes;

  @Option(names = "--min-members", description = "when driving, wait for this many members to be up (default ${DEFAULT-VALUE})", defaultValue = "1")
  int minMembers;

  @Option(names = "--seed", description = "run seed (default ${DEFAULT-VALUE})", defaultValue = "42")
  long seed;

  @Option(names = "--json", description = "when driving, print the summary as one JSON object on the last line of stdout")
  boolean json;

  @Option(names = "--timeout", description = "when driving, give up after this many seconds (default ${DEFAULT-VALUE})", defaultValue = "600")
  int timeoutSeconds;

  @Option(names = "--run-id", description = "pipeline run id shared by every node of the cluster: learners read this run's "
      + "trajectories, the parameter server keeps its checkpoints under it (default ${DEFAULT-VALUE})", defaultValue = "cluster")
  String runId;

  @Option(names = "--run-pipeline", description = "drive the whole pipeline (eval, synthesis, SFT, eval, RL, eval) from this node once --min-members are up")
  boolean runPipeline;

  @Option(names = "--backend", description = "learners' tensor backend on this node: java, nd4j, cuda or auto (default: auto)")
  String backend;

  @Option(names = "--tls", paramLabel = "DIR", description = "cluster traffic over TLS with mutual authentication, with the certificates "
      + "of `k2 certs --out DIR` (k2.cluster.tls; every node of the cluster needs certificates of the same authority)")
  String tls;

  @Override public Integer call() throws Exception {
    for (var r : roles) if (!ROLES.contains(r)) throw new NodeConfig.UsageError("unknown role '" + r + "' (roles: " + ROLES + ")");
    if (port < 1 || port > 65535) throw new NodeConfig.UsageError("--port must be 1..65535");
    ops.check();
    var seedNodes = new ArrayList<String>();
    for (var s : seeds) {
      var p = s.split(":");
      if (p.length != 2 || !p[1].matches("\\d+")) throw new NodeConfig.UsageError("--seeds takes host:port,..., got '" + s + "'");
      seedNodes.add("pekko://k2@" + p[0] + ":" + p[1]);
    }
    var o = new HashMap<String, Object>();
    o.put("pekko.remote.artery.canonical.hostname", host);
    o.put("pekko.remote.artery.canonical.port", port);
    o.put("pekko.cluster.seed-nodes", seedNodes);
    o.put("pekko.cluster.roles", roles);
    if (backend != null) {
      if (!dev.k2pekko.ops.Backends.NAMES.contains(backend)) throw new NodeConfig.UsageError("--backend must be one of " + dev.k2pekko.ops.Backends.NAMES);
      o.put("k2.learner.backend", backend);
    }
    if (!runId.matches("[A-Za-z0-9_.-]{1,64}")) throw new NodeConfig.UsageError("--run-id takes letters, digits, '.', '_' and '-', got '" + runId + "'");
    if (runPipeline && runAgents != null) throw new NodeConfig.UsageError("--run-pipeline and --run-agents exclude each other");
    if (tls != null) o.put("k2.cluster.tls", tls);
    o.putAll(ops.config());
    o.putAll(policy.config()); // a node with agents drives the served LLM for every --policy openai run, whoever starts it
    var config = dev.k2pekko.agents.ClusterTls.apply(node.build("postgres", o)); // a missing store is bad input, before the journal is touched
    policy.check(config);
    System.err.println("k2: " + JournalSchema.ensure(config));
    if (dev.k2pekko.agents.ClusterTls.on(config)) System.err.println("k2: cluster traffic over TLS (mutual authentication), certificates in " + config.getString("k2.cluster.tls"));
    var system = K2Node.start("k2", config);
    final dev.k2pekko.launcher.ops.OpsServer.Running endpoint;
    try {
      endpoint = ops.start(system);
    } catch (RuntimeException e) {
      Nodes.stop(system);
      throw e;
    }
    if (endpoint != null) system.getWhenTerminated().thenRun(() -> endpoint.binding().unbind());
    McpStatus.print(system);
    var trainer = dev.k2pekko.pipeline.TrainerNode.start(system, runId);
    watchMembers(system);
    var out = Nodes.outOfCluster(system);
    // Ctrl-C or kill: leave the cluster and stop; a node the cluster downed has left it already
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      if (!Nodes.downed(system)) Nodes.stop(system);
    }));
    if (runPipeline) {
      try {
        K2Node.awaitMembersUp(system, minMembers, Duration.ofSeconds(timeoutSeconds));
        var report = new PipelineReport(System.err);
        var stages = new dev.k2pekko.launcher.ops.StageMeters(system);
        var pipeline = new dev.k2pekko.pipeline.Pipeline(system, trainer, dev.k2pekko.pipeline.Pipeline.Spec.fromConfig(runId, seed, config),
            p -> { stages.progress(p.stage(), p.done(), p.total()); report.progress(p); });
        var running = new java.util.concurrent.CompletableFuture<dev.k2pekko.pipeline.Pipeline.Result>();
        Thread.ofPlatform().name("k2-pipeline").daemon().start(() -> {
          try {
            running.complete(pipeline.run());
          } catch (Throwable t) {
            running.completeExceptionally(t);
          }
        });
        final dev.k2pekko.pipeline.Pipeline.Result result;
        try {
          result = Nodes.awaitWhileMember(system, out, running, Duration.ofDays(365)); // the pipeline has deadlines of its own
        } catch (java.util.concurrent.ExecutionException e) {
          throw e.getCause() instanceof Exception x ? x : e;
        }
        if (json) System.out.println(PipelineReport.json(result, dev.k2pekko.pipeline.TrainerNode.ClipSettings.of(config).mode()));
        else PipelineReport.table(result, dev.k2pekko.pipeline.TrainerNode.ClipSettings.of(config).mode(), System.out);
        return 0;
      } finally {
        Nodes.leaveAndStop(system);
      }
    }
    if (runAgents == null) {
      out.get();
      if (Nodes.downed(system)) throw new Nodes.Downed(system);
      Nodes.stop(system);
      return 0;
    }
    try {
      K2Node.awaitMembersUp(system, minMembers, Duration.ofSeconds(timeoutSeconds));
      var spec = new RunDriver.RunSpec("run-" + Long.toString(System.currentTimeMillis(), 36), runAgents, episodes, seed,
          Agent.PersistMode.ACCEPTED, Duration.ofSeconds(timeoutSeconds), policy.episodes());
      var report = new Report(System.err);
      var stages = new dev.k2pekko.launcher.ops.StageMeters(system);
      var summary = Nodes.awaitWhileMember(system, out, RunDriver.start(system, spec, s -> {
        stages.progress("synthesis", s.get("episodes"), s.expectedEpisodes());
        report.progress(s);
      }), spec.timeout().plusSeconds(30));
      if (json) System.out.println(Report.json(summary, runAgents));
      else Report.table(summary, runAgents, config.getString("pekko-persistence-jdbc.shared-databases.slick.db.url"), System.out);
      return summary.complete() ? 0 : 1;
    } finally {
      Nodes.leaveAndStop(system);
    }
  }

  /** Prints every membership change: how to watch a cluster form and agents' nodes come and go. */
  private static void watchMembers(ActorSystem<?> system) {
    system.systemActorOf(Behaviors.<ClusterEvent.MemberEvent>setup(ctx -> {
      Cluster.get(ctx.getSystem()).subscriptions().tell(Subscribe.create(ctx.getSelf(), ClusterEvent.MemberEvent.class));
      return Behaviors.receiveMessage(e -> {
        var m = e.member();
        System.out.printf("member %s %s roles=%s%n", m.address(), m.status(), m.getRoles());
        System.out.flush();
        return Behaviors.same();
      });
    }), "member-watch", Props.empty());
  }


}
