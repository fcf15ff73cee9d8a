package dev.k2pekko.tools;

import dev.k2pekko.protocol.CallsRefused;
import dev.k2pekko.protocol.ToolCommand;
import dev.k2pekko.tools.mcp.McpServer;
import dev.k2pekko.tools.mcp.McpTools;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/**
 * The node's view of the tool universe and of the tool workers that run it. Nodes with the {@code tool} role
 * start workers and register them with the Receptionist; every node resolves an episode to a worker here, by
 * hash of the episode id, preferring its own workers so that tool traffic stays on the node. The Receptionist
 * is consulted once per membership change, never per call.
 */
public final class ToolDirectory implements Extension {
  public static final ServiceKey<ToolCommand> WORKERS = ServiceKey.create(ToolCommand.class, "k2-tool-workers");

  public static final ExtensionId<ToolDirectory> ID = new ExtensionId<>() {
    @Override public ToolDirectory createExtension(ActorSystem<?> system) { return new ToolDirectory(system); }
  };

  public static ToolDirectory get(ActorSystem<?> system) { return ID.apply(system); }

  private final ToolUniverse universe;
  private final ToolWorker.Settings settings;
  private final int workersPerNode;
  private final Firewall firewall;
  private final McpTools mcpTools = new McpTools();
  private final List<McpServer.Spec> mcpSpecs;
  private final McpServer.Settings mcpSettings;
  private volatile List<ActorRef<McpServer.Command>> mcpServers = List.of();
  private volatile List<ActorRef<ToolCommand>> local = List.of();
  private volatile List<ActorRef<ToolCommand>> remote = List.of();

  private ToolDirectory(ActorSystem<?> system) {
    var c = system.settings().config().getConfig("k2.tools");
    var noise = new Stochasticity(c.getDouble("failure-rate"), c.getDouble("partial-rate"), 0);
    var u = ToolUniverse.generate(c.getLong("seed"), noise);
    var extra = new ArrayList<ToolSpec>();
    for (String f : c.getStringList("spec-files")) extra.addAll(ToolSpecFiles.read(Path.of(f), noise));
    this.universe = extra.isEmpty() ? u : u.with(extra);
    this.settings = new ToolWorker.Settings(c.getLong("seed"), (int) c.getBytes("max-payload").longValue(),
        c.getDuration("episode-idle-timeout"), system.settings().config().getString("k2.mcp.knowledge-graph"));
    this.firewall = new Firewall(Firewall.Settings.from(c));
    var m = system.settings().config().getConfig("k2.mcp");
    var specs = new ArrayList<McpServer.Spec>();
    var names = new java.util.HashSet<String>();
    for (String s : m.getStringList("servers")) {
      var spec = McpServer.Spec.parse(s);
      if (!names.add(spec.name())) throw new IllegalArgumentException("MCP server '" + spec.name() + "' is given twice");
      specs.add(spec);
    }
    this.mcpSpecs = List.copyOf(specs);
    this.mcpSettings = new McpServer.Settings(m.getDuration("start-timeout"), m.getDuration("call-timeout"),
        m.getDuration("min-backoff"), m.getDuration("max-backoff"), (int) m.getBytes("max-result").longValue(),
        (int) m.getBytes("max-message").longValue(), java.util.Set.copyOf(m.getStringList("one-at-a-time")));
    if (!settings.knowledgeGraph().isEmpty() && !names.contains(settings.knowledgeGraph())) {
      throw new IllegalArgumentException("k2.mcp.knowledge-graph names " + settings.knowledgeGraph() + ", which is not among k2.mcp.servers " + names);
    }
    for (var serial : mcpSettings.oneAtATime()) {
      if (!names.contains(serial)) throw new IllegalArgumentException("k2.mcp.one-at-a-time names " + serial + ", which is not among k2.mcp.servers " + names);
    }
    int n = c.getInt("workers-per-node");
    this.workersPerNode = n > 0 ? n : Math.max(2, 2 * Runtime.getRuntime().availableProcessors());
  }

  public ToolUniverse universe() { return universe; }

  /** The MCP tools of this node's servers ({@code k2.mcp.servers}), as they come up. */
  public McpTools mcpTools() { return mcpTools; }

  /**
   * Waits until every MCP server of this node has ended its first start attempt; returns each one's tools or why
   * it has none (a server that failed keeps being restarted in the background).
   */
  public List<McpServer.Tools> awaitMcpServers(ActorSystem<?> system, java.time.Duration timeout) {
    var out = new ArrayList<McpServer.Tools>();
    for (int i = 0; i < mcpServers.size(); i++) {
      var ref = mcpServers.get(i);
      var name = mcpSpecs.get(i).name();
      try {
        out.add(org.apache.pekko.actor.typed.javadsl.AskPattern.<McpServer.Command, McpServer.Tools>ask(ref, McpServer.GetTools::new,
            timeout, system.scheduler()).toCompletableFuture().get());
      } catch (Exception e) {
        out.add(new McpServer.Tools(name, List.of(), "MCP server " + name + " did not come up within " + timeout));
      }
    }
    return out;
  }

  /** This node's firewall, shared by its workers. */
  public Firewall firewall() { return firewall; }

  /** Spawns this node's tool workers with refusals logged only (no journal): nodes and tests without persistence. */
  public void startWorkers(ActorSystem<?> system) {
    var log = system.log();
    startWorkers(system, r -> log.info("firewall refused {} of {}: {} ({})", r.tool(), r.episodeId(), r.reason(), r.detail()));
  }

  /**
   * Spawns this node's tool workers (the {@code tool} role) and registers them for the other nodes. Every refusal
   * of the node's firewall is given to {@code audit} (on the refusing worker's thread: it must only enqueue).
   */
  public void startWorkers(ActorSystem<?> system, java.util.function.Consumer<CallsRefused.Refusal> audit) {
    startMcpServers(system);
    var refs = new ArrayList<ActorRef<ToolCommand>>();
    for (int i = 0; i < workersPerNode; i++) {
      var ref = system.systemActorOf(ToolWorker.create(universe, settings, firewall, audit, mcpTools), "tool-worker-" + i, Props.empty());
      system.receptionist().tell(Receptionist.register(WORKERS, ref));
      refs.add(ref);
    }
    local = List.copyOf(refs);
  }

  /**
   * Starts this node's MCP server processes ({@code k2.mcp.servers}) without tool workers, once: their tools come into
   * {@link #mcpTools()} as they come up. {@code k2 export} reads the servers' input schemas this way; tool nodes get
   * them from {@link #startWorkers}.
   */
  public synchronized void startMcpServers(ActorSystem<?> system) {
    if (!mcpServers.isEmpty() || mcpSpecs.isEmpty()) return;
    var servers = new ArrayList<ActorRef<McpServer.Command>>();
    for (var spec : mcpSpecs) {
      servers.add(system.systemActorOf(McpServer.create(spec, mcpSettings, mcpTools), "mcp-" + spec.name(), Props.empty()));
    }
    mcpServers = List.copyOf(servers);
  }

  /** Follows the cluster's tool workers, for nodes without their own. */
  public void followRemoteWorkers(ActorSystem<?> system) {
    Behavior<Receptionist.Listing> follower = Behaviors.setup(c -> {
      c.getSystem().receptionist().tell(Receptionist.subscribe(WORKERS, c.getSelf()));
      return Behaviors.receiveMessage(listing -> {
        remote = listing.getServiceInstances(WORKERS).stream()
            .sorted(java.util.Comparator.comparing(r -> r.path().toString())).toList();
        return Behaviors.same();
      });
    });
    system.systemActorOf(follower, "tool-worker-follower", Props.empty());
  }

  /** The worker that owns this episode's world state, or null when no node runs tools (yet). */
  public ActorRef<ToolCommand> workerFor(String episodeId) {
    var refs = local.isEmpty() ? remote : local;
    if (refs.isEmpty()) return null;
    return refs.get(Math.floorMod(episodeId.hashCode(), refs.size()));
  }

  public int localWorkers() { return local.size(); }
}
