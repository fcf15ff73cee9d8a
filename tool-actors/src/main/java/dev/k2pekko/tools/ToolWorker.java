package dev.k2pekko.tools;

import dev.k2pekko.protocol.CallsRefused;
import dev.k2pekko.protocol.EndEpisode;
import dev.k2pekko.protocol.OpenEpisode;
import dev.k2pekko.protocol.ToolCall;
import dev.k2pekko.protocol.ToolCommand;
import dev.k2pekko.protocol.ToolError;
import dev.k2pekko.protocol.ToolResult;
import dev.k2pekko.protocol.WorldSnapshot;
import dev.k2pekko.tools.mcp.KnowledgeGraph;
import dev.k2pekko.tools.mcp.McpServer;
import dev.k2pekko.tools.mcp.McpTools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;

/**
 * Runs tool calls. Each episode is bound to one worker (by hash of its id, see {@link ToolDirectory}), which keeps
 * that episode's world state, so every call of an episode sees the effects of the ones before it. Bad calls get
 * a structured error result; nothing a caller sends can stop the worker. Every call passes the node's
 * {@link Firewall} first, here where it is executed: a refused call never reaches the tool; its agent gets a
 * structured error and the refusal goes to the node's audit trail.
 */
public final class ToolWorker extends AbstractBehavior<ToolCommand> {
  /** {@code knowledgeGraph}: the MCP server of the knowledge-graph tasks ({@code k2.mcp.knowledge-graph}), "" for none. */
  public record Settings(long knowledgeSeed, int maxPayloadBytes, Duration episodeIdleTimeout, String knowledgeGraph) {
    public Settings(long knowledgeSeed, int maxPayloadBytes, Duration episodeIdleTimeout) {
      this(knowledgeSeed, maxPayloadBytes, episodeIdleTimeout, "");
    }
  }

  private static final class Episode {
    final HashMap<String, String> world = new HashMap<>();
    long lastTouch;
    /** null until the episode is opened: then every call is refused */
    Firewall.Gate gate;
    /** Entity names this episode used on the knowledge-graph server, as the server has them (suffixed), or null. */
    java.util.LinkedHashSet<String> graphNames;
  }

  private final ToolUniverse universe;
  private final Settings settings;
  private final Firewall firewall;
  private final Consumer<CallsRefused.Refusal> audit;
  private final McpTools mcp;
  private final HashMap<String, Episode> episodes = new HashMap<>();
  /**
   * The universe's tools this worker has run, with their path arguments for the firewall: one lookup a call gives
   * both. Only the universe's tools enter (a bounded set; a name that is none is looked up again each time).
   */
  private final HashMap<String, Known> known = new HashMap<>();

  private record Known(ToolSpec spec, String[] pathKeys) {}

  private Known known(String tool) {
    var k = known.get(tool);
    if (k == null) {
      var spec = universe.get(tool);
      if (spec == null) return null;
      known.put(tool, k = new Known(spec, firewall.pathKeys(spec.params())));
    }
    return k;
  }
  private long calls;
  private long lastSweepNanos = System.nanoTime();
  private long lastSweepMark = -1;

  /** A worker with the firewall off: tests of the simulator alone. */
  public static Behavior<ToolCommand> create(ToolUniverse universe, Settings settings) {
    var off = new Firewall(new Firewall.Settings(false, Firewall.Limit.NONE, Firewall.Limit.NONE, settings.maxPayloadBytes(), null, Set.of()));
    return create(universe, settings, off, r -> {}, new McpTools());
  }

  /** {@code audit} is called (on this worker's thread) with every refusal. */
  public static Behavior<ToolCommand> create(ToolUniverse universe, Settings settings, Firewall firewall,
                                             Consumer<CallsRefused.Refusal> audit) {
    return create(universe, settings, firewall, audit, new McpTools());
  }

  /** With the node's MCP tools: their calls pass the same firewall, then go to the server's actor. */
  public static Behavior<ToolCommand> create(ToolUniverse universe, Settings settings, Firewall firewall,
                                             Consumer<CallsRefused.Refusal> audit, McpTools mcp) {
    return Behaviors.setup(ctx -> new ToolWorker(ctx, universe, settings, firewall, audit, mcp));
  }

  private ToolWorker(ActorContext<ToolCommand> ctx, ToolUniverse universe, Settings settings, Firewall firewall,
                     Consumer<CallsRefused.Refusal> audit, McpTools mcp) {
    super(ctx);
    this.universe = universe;
    this.settings = settings;
    this.firewall = firewall;
    this.audit = audit;
    this.mcp = mcp;
    var metrics = dev.k2pekko.metrics.Metrics.get(ctx.getSystem());
    String help = "tool calls answered by this node's tool workers, by outcome (ok, partial, or the error kind; MCP calls are counted as sent)";
    this.callsOk = metrics.counter("k2_tool_calls", help, "outcome", "ok");
    this.callsPartial = metrics.counter("k2_tool_calls", help, "outcome", "partial");
    this.callsMcp = metrics.counter("k2_tool_calls", help, "outcome", "mcp_sent");
    for (var e : ToolError.values()) {
      callsFailed.put(e, metrics.counter("k2_tool_calls", help, "outcome", e.name().toLowerCase(java.util.Locale.ROOT)));
      if (e.refusal()) {
        refusals.put(e, metrics.counter("k2_firewall_refusals", "tool calls the agentic firewall refused before they reached the tool, by reason",
            "reason", e.name()));
      }
    }
  }

  private final dev.k2pekko.metrics.Meter.Counter callsOk, callsPartial, callsMcp;
  private final java.util.EnumMap<ToolError, dev.k2pekko.metrics.Meter.Counter> callsFailed = new java.util.EnumMap<>(ToolError.class);
  private final java.util.EnumMap<ToolError, dev.k2pekko.metrics.Meter.Counter> refusals = new java.util.EnumMap<>(ToolError.class);

  private void count(ToolResult r) {
    if (r == null) callsMcp.increment();
    else if (r.error() != null) callsFailed.get(r.error()).increment();
    else if (r.partial()) callsPartial.increment();
    else callsOk.increment();
  }

  @Override public Receive<ToolCommand> createReceive() {
    return newReceiveBuilder()
        .onMessage(OpenEpisode.class, this::onOpen)
        .onMessage(ToolCall.class, call -> {
          var r = run(call);
          count(r);
          if (r != null) call.replyTo().tell(r); // null: an MCP server answers
          return this;
        })
        .onMessage(EndEpisode.class, this::onEnd)
        .build();
  }

  private Behavior<ToolCommand> onOpen(OpenEpisode open) {
    var ep = episodes.get(open.episodeId());
    if (ep == null) episodes.put(open.episodeId(), ep = new Episode());
    firewall.close(ep.gate); // opened again: the old gate's tokens go back first
    ep.gate = firewall.open(open.agentId(), open.offered());
    ep.lastTouch = calls;
    return this;
  }

  private Behavior<ToolCommand> onEnd(EndEpisode end) {
    var ep = episodes.remove(end.episodeId());
    if (ep != null) firewall.close(ep.gate);
    var world = ep == null ? new HashMap<String, String>() : ep.world;
    var graph = ep == null || ep.graphNames == null || ep.graphNames.isEmpty() ? null : mcp.link(settings.knowledgeGraph() + ".open_nodes");
    var dir = episodeSandbox(end.episodeId());
    if (dir != null && Files.isDirectory(dir)) {
      // the episode's files, as the MCP filesystem server left them (the judge's end state), then gone
      try (var walk = Files.walk(dir)) {
        for (var f : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
          if (Files.isRegularFile(f, java.nio.file.LinkOption.NOFOLLOW_LINKS) && Files.size(f) <= settings.maxPayloadBytes() * 16L) {
            world.put("fs:" + dir.relativize(f).toString().replace('\\', '/'), Files.readString(f));
          }
          Files.deleteIfExists(f);
        }
      } catch (IOException | RuntimeException e) {
        getContext().getLog().warn("episode sandbox {} not fully read or removed: {}", dir, e.toString());
      }
    }
    if (graph != null) {
      // the episode's graph, read back from the server, joins its end state; the reader answers the agent
      getContext().spawnAnonymous(KnowledgeGraph.readBack(graph, settings.knowledgeGraph(), end.episodeId(), List.copyOf(ep.graphNames),
          KnowledgeGraph.suffix(end.episodeId()), world, end.replyTo()));
      return this;
    }
    end.replyTo().tell(new WorldSnapshot(end.episodeId(), world));
    return this;
  }

  /**
   * What a call's noise follows: the episode id without its run id ({@code run/agent-3/0} -> {@code agent-3/0}), so
   * two runs of one seed meet the same failures (run ids hold the start time) and a redone episode the same ones.
   */
  static String noiseKey(String episodeId) {
    return episodeId.substring(episodeId.indexOf('/') + 1);
  }

  /**
   * The directory of one episode inside the firewall's sandbox (null without one): MCP path arguments are resolved
   * there, so episodes sharing a filesystem server process never see each other's files.
   */
  private Path episodeSandbox(String episodeId) {
    var root = firewall.settings().sandbox();
    if (root == null) return null;
    var b = new StringBuilder("ep-");
    for (char c : episodeId.toCharArray()) b.append(Character.isLetterOrDigit(c) || c == '-' || c == '_' ? c : '_');
    return root.resolve(b.append('-').append(Integer.toHexString(episodeId.hashCode())).toString());
  }

  ToolResult run(ToolCall call) {
    if ((++calls & 0xFFF) == 0) maybeSweep();
    var ep = episodes.get(call.episodeId());
    var known = known(call.tool());
    var spec = known == null ? null : known.spec();
    var mcpTool = spec == null ? mcp.tool(call.tool()) : null;
    var sandbox = mcpTool != null ? episodeSandbox(call.episodeId()) : null;
    int bytes = ArgumentValidator.payloadBytes(call.arguments());
    if (firewall.enabled()) {
      var refused = firewall.check(ep == null ? null : ep.gate, call.tool(), call.arguments(), bytes, sandbox,
          known == null ? null : known.pathKeys());
      if (refused != null) return refuse(call, ep, refused);
    }
    if (mcpTool != null) return forward(call, ep, mcpTool, sandbox);
    if (spec == null) return ToolResult.failed(call.callId(), ToolError.UNKNOWN_TOOL, "unknown tool '" + call.tool() + "'");
    if (!firewall.enabled() && bytes > settings.maxPayloadBytes()) {
      return ToolResult.failed(call.callId(), ToolError.PAYLOAD_TOO_LARGE,
          "arguments exceed " + settings.maxPayloadBytes() + " bytes");
    }
    var invalid = ArgumentValidator.validate(spec, call.arguments());
    if (invalid != null) return ToolResult.failed(call.callId(), ToolError.INVALID_ARGUMENTS, invalid);
    var noise = spec.stochasticity();
    var noiseKey = noiseKey(call.episodeId());
    if (noise.failureRate() > 0 && KnowledgeTable.uniform(settings.knowledgeSeed(), noiseKey, call.callId()) < noise.failureRate()) {
      return ToolResult.failed(call.callId(), ToolError.TRANSIENT_FAILURE, spec.name() + " is temporarily unavailable, retry");
    }
    if (ep == null) episodes.put(call.episodeId(), ep = new Episode());
    ep.lastTouch = calls;
    try {
      var result = Simulator.apply(ep.world, spec, call.arguments(), settings.knowledgeSeed());
      if (noise.partialRate() > 0 && KnowledgeTable.uniform(settings.knowledgeSeed() + 1, noiseKey, call.callId()) < noise.partialRate()) {
        return ToolResult.partial(call.callId(), result.substring(0, result.length() / 2) + "…");
      }
      return ToolResult.ok(call.callId(), result);
    } catch (RuntimeException e) {
      getContext().getLog().warn("tool {} failed on {}: {}", spec.name(), call.arguments(), e.toString());
      return ToolResult.failed(call.callId(), ToolError.INTERNAL, spec.name() + " failed: " + e.getMessage());
    }
  }

  /**
   * Sends an MCP call to its server process (through the server's link, on this thread); the answer goes to the agent. Relative path arguments become absolute paths
   * in the episode's sandbox directory (created here), which is where the firewall confined them.
   */
  private ToolResult forward(ToolCall call, Episode ep, McpTools.Tool tool, Path sandbox) {
    var args = call.arguments() == null ? Map.<String, Object>of() : call.arguments();
    java.util.function.UnaryOperator<String> resultText = null;
    if (tool.server().equals(settings.knowledgeGraph())) {
      // the episode's own names on the shared graph (KnowledgeGraph): suffixed on the way in, the suffix gone on the way out
      if (ep == null) episodes.put(call.episodeId(), ep = new Episode());
      ep.lastTouch = calls;
      if (ep.graphNames == null) ep.graphNames = new java.util.LinkedHashSet<>();
      String suffix = KnowledgeGraph.suffix(call.episodeId());
      args = KnowledgeGraph.namespaced(args, suffix, ep.graphNames);
      resultText = text -> KnowledgeGraph.strip(text, suffix);
    }
    if (sandbox != null) {
      var rewritten = new HashMap<String, Object>(args);
      boolean any = false;
      for (var e : args.entrySet()) {
        if (!firewall.settings().pathArguments().contains(e.getKey())) continue;
        any = true;
        if (e.getValue() instanceof String p) rewritten.put(e.getKey(), sandbox.resolve(p).normalize().toString());
        else if (e.getValue() instanceof java.util.List<?> l) {
          rewritten.put(e.getKey(), l.stream().map(x -> x instanceof String p ? sandbox.resolve(p).normalize().toString() : x).toList());
        }
      }
      if (any) {
        try {
          Files.createDirectories(sandbox);
        } catch (IOException e) {
          return ToolResult.failed(call.callId(), ToolError.INTERNAL, "cannot create the episode's sandbox " + sandbox + ": " + e.getMessage());
        }
        // the server answers with the absolute paths it was sent: the agent sees its own relative ones again
        String dir = sandbox.toString();
        resultText = text -> text.replace(dir + java.io.File.separator, "").replace(dir, ".");
      }
      args = rewritten;
    }
    var link = mcp.link(tool.name());
    if (link == null) return ToolResult.failed(call.callId(), ToolError.TRANSIENT_FAILURE, "MCP server " + tool.server() + " is not up; retry");
    link.send(new McpServer.Call(call, tool.serverTool(), args, resultText)); // answered from the client's callback
    return null;
  }

  /**
   * The structured error the agent gets for a refused call: a JSON object naming the refusal, so a policy can tell
   * it from a tool's own failure. The refusal also goes to the audit trail.
   */
  private ToolResult refuse(ToolCall call, Episode ep, Firewall.Refused refused) {
    String agentId = ep == null || ep.gate == null ? null : ep.gate.agentId();
    var refusedCount = refusals.get(refused.reason());
    if (refusedCount != null) refusedCount.increment();
    audit.accept(new CallsRefused.Refusal(call.episodeId(), agentId, call.callId(), call.tool(), refused.reason().name(),
        refused.detail(), System.currentTimeMillis()));
    var json = JSON.createObjectNode().put("refused", refused.reason().name()).put("tool", call.tool()).put("message", refused.detail());
    return ToolResult.failed(call.callId(), refused.reason(), json.toString());
  }

  private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();

  /**
   * Forget episodes whose agent went away without ending them: no call for one idle timeout. Checked every
   * 4096 calls, so an idle worker does no work (and, idle, gains no new episodes either).
   */
  private void maybeSweep() {
    long now = System.nanoTime();
    if (now - lastSweepNanos < settings.episodeIdleTimeout().toNanos()) return;
    long mark = lastSweepMark;
    episodes.values().removeIf(ep -> ep.lastTouch <= mark);
    firewall.sweep(settings.episodeIdleTimeout().toNanos());
    lastSweepMark = calls;
    lastSweepNanos = now;
  }
}
