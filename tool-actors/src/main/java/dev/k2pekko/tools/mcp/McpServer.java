package dev.k2pekko.tools.mcp;

import dev.k2pekko.protocol.ToolCall;
import dev.k2pekko.protocol.ToolError;
import dev.k2pekko.protocol.ToolResult;
import io.modelcontextprotocol.client.McpAsyncClient;
import io.modelcontextprotocol.client.McpClient;
import io.modelcontextprotocol.client.transport.ServerParameters;
import io.modelcontextprotocol.client.transport.StdioClientTransport;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.spec.McpError;
import io.modelcontextprotocol.spec.McpSchema;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeoutException;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * One MCP tool server process behind an actor: it spawns the process (stdio transport of the MCP Java SDK),
 * initializes it, lists its tools into the node's {@link McpTools} as {@code NAME.tool}, and runs {@code tools/call}s
 * for the tool workers, each with a timeout, answering the agent straight with a structured {@link ToolResult}.
 * Nothing blocks the actor: the SDK's async client answers through {@code pipeToSelf}; calls go through the
 * server's {@link Link} on the caller's thread and are answered from the client's callback. When the process exits or
 * fails to start, every call in flight gets a structured error naming the server, calls meanwhile get
 * {@code TRANSIENT_FAILURE}, and the process is started again after a backoff (doubling up to a cap, reset by a
 * successful start). A server that never comes up is retried forever at the cap; the rest of the run goes on.
 */
public final class McpServer extends AbstractBehavior<McpServer.Command> {
  /** {@code NAME=COMMAND ARG ...}: the server's name (its tools' prefix) and how to start it. */
  public record Spec(String name, String command, List<String> args, Map<String, String> env) {
    public Spec {
      if (!name.matches("[A-Za-z][A-Za-z0-9_-]{0,31}")) {
        throw new IllegalArgumentException("MCP server name '" + name + "' must be a letter then up to 31 letters, digits, _ or -");
      }
      if (command.isBlank()) throw new IllegalArgumentException("MCP server '" + name + "' has no command");
      args = List.copyOf(args);
      env = Map.copyOf(env);
    }

    /** Parses {@code NAME=COMMAND ARG ...} (whitespace separates the arguments; no quoting). */
    public static Spec parse(String s) {
      int eq = s.indexOf('=');
      if (eq <= 0) throw new IllegalArgumentException("--mcp takes NAME=COMMAND [ARG ...], got '" + s + "'");
      var words = s.substring(eq + 1).trim().split("\\s+");
      if (words.length == 0 || words[0].isEmpty()) throw new IllegalArgumentException("--mcp " + s.substring(0, eq) + "= has no command");
      return new Spec(s.substring(0, eq).trim(), words[0], List.of(words).subList(1, words.length), Map.of());
    }
  }

  /**
   * {@code oneAtATime}: names of servers whose calls are sent one at a time, the next when the last is answered
   * ({@code k2.mcp.one-at-a-time}): servers that read, change and rewrite a file per call, as
   * {@code @modelcontextprotocol/server-memory} does, lose the writes of calls that overlap (40 concurrent
   * {@code create_entities} of different entities kept 1 of them; McpBridgeTest).
   */
  public record Settings(Duration startTimeout, Duration callTimeout, Duration minBackoff, Duration maxBackoff,
                         int maxResultBytes, int maxMessageBytes, java.util.Set<String> oneAtATime) {
    public Settings {
      oneAtATime = java.util.Set.copyOf(oneAtATime);
    }

    public Settings(Duration startTimeout, Duration callTimeout, Duration minBackoff, Duration maxBackoff, int maxResultBytes, int maxMessageBytes) {
      this(startTimeout, callTimeout, minBackoff, maxBackoff, maxResultBytes, maxMessageBytes, java.util.Set.of());
    }
  }

  public sealed interface Command extends NoSerializationVerificationNeeded {}

  /** Run {@code tool} (the server's own name) for {@code call}; the answer goes to {@code call.replyTo()}. */
  public record Call(ToolCall call, String tool, Map<String, Object> arguments, java.util.function.UnaryOperator<String> resultText)
      implements Command {
    public Call(ToolCall call, String tool, Map<String, Object> arguments) {
      this(call, tool, arguments, null);
    }
  }

  /** Replies once the first start attempt has ended: the tools, or why there are none. */
  public record GetTools(ActorRef<Tools> replyTo) implements Command {}

  public record Tools(String server, List<McpTools.Tool> tools, String error) {}

  private record Started(int generation, McpAsyncClient client, StdioClientTransport transport, List<McpTools.Tool> tools,
                         List<String> skipped) implements Command {}

  private record StartFailed(int generation, String why) implements Command {}

  private record Exited(int generation) implements Command {}

  private enum Restart implements Command { INSTANCE }

  /**
   * The thread-safe side of a server: tool workers send calls through it on their own thread (no hop through this
   * actor's mailbox); the actor sets and clears the client as the process comes and goes. Each call is answered
   * once: by the client's callback, or with an error when the process goes down (whoever removes it from
   * {@code inFlight} answers it).
   */
  public static final class Link {
    private final String name;
    private final Settings settings;
    private final java.util.concurrent.ConcurrentHashMap<String, Call> inFlight = new java.util.concurrent.ConcurrentHashMap<>();
    private volatile McpAsyncClient client;
    private volatile String lastError;
    /** Calls one at a time: those waiting for the one being sent (guarded by this link's lock). */
    private final boolean serial;
    private final ArrayDeque<Call> queued = new ArrayDeque<>();
    private boolean sending;

    Link(String name, Settings settings) {
      this.name = name;
      this.settings = settings;
      this.serial = settings.oneAtATime().contains(name);
    }

    public void send(Call c) {
      if (serial) {
        synchronized (this) {
          if (sending) {
            queued.add(c);
            return;
          }
          sending = true;
        }
      }
      if (!dispatch(c)) next();
    }

    /** Sends a call; false when it was answered at once (no process up), so that a serial link moves on. */
    private boolean dispatch(Call c) {
      var call = c.call();
      var cl = client;
      if (cl == null) {
        call.replyTo().tell(ToolResult.failed(call.callId(), ToolError.TRANSIENT_FAILURE,
            (lastError == null ? "MCP server " + name + " is starting" : lastError) + "; retry"));
        return false;
      }
      String key = call.episodeId() + "/" + call.callId();
      inFlight.put(key, c);
      cl.callTool(new McpSchema.CallToolRequest(c.tool(), c.arguments())).timeout(settings.callTimeout()).toFuture()
          .whenComplete((r, e) -> {
            if (inFlight.remove(key, c)) call.replyTo().tell(answer(c, r, e));
            next(); // answered here, or already failed by failAll: either way the call is over
          });
      return true;
    }

    /** A serial link's next call, once the last one is over. */
    private void next() {
      if (!serial) return;
      while (true) {
        Call n;
        synchronized (this) {
          n = queued.poll();
          if (n == null) {
            sending = false;
            return;
          }
        }
        if (dispatch(n)) return;
      }
    }

    void failAll(String why) {
      for (var key : List.copyOf(inFlight.keySet())) {
        var c = inFlight.remove(key);
        if (c != null) c.call().replyTo().tell(ToolResult.failed(c.call().callId(), ToolError.INTERNAL, why + " while running " + c.tool()));
      }
    }

    private ToolResult answer(Call c, McpSchema.CallToolResult r, Throwable error) {
      var callId = c.call().callId();
      if (error != null) {
        var cause = unwrap(error);
        if (cause instanceof TimeoutException) {
          return ToolResult.failed(callId, ToolError.TIMEOUT, "MCP server " + name + " gave no answer to " + c.tool()
              + " within " + settings.callTimeout());
        }
        if (cause instanceof McpError m && m.getJsonRpcError() != null && m.getJsonRpcError().code() == McpSchema.ErrorCodes.INVALID_PARAMS) {
          return ToolResult.failed(callId, ToolError.INVALID_ARGUMENTS, "MCP server " + name + ": "
              + (c.resultText() == null ? m.getMessage() : c.resultText().apply(String.valueOf(m.getMessage()))));
        }
        var msg = cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage();
        return ToolResult.failed(callId, ToolError.INTERNAL, "MCP server " + name + ": " + msg);
      }
      var text = c.resultText() == null ? text(r) : c.resultText().apply(text(r));
      if (text.length() > settings.maxResultBytes()) {
        return ToolResult.failed(callId, ToolError.PAYLOAD_TOO_LARGE, "MCP server " + name + " returned " + text.length()
            + " characters from " + c.tool() + ", over the cap of " + settings.maxResultBytes());
      }
      if (Boolean.TRUE.equals(r.isError())) return ToolResult.failed(callId, ToolError.TOOL_FAILED, text);
      return ToolResult.ok(callId, text);
    }
  }

  public static Behavior<Command> create(Spec spec, Settings settings, McpTools registry) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new McpServer(ctx, timers, spec, settings, registry)));
  }

  private final TimerScheduler<Command> timers;
  private final Spec spec;
  private final Settings settings;
  private final McpTools registry;
  private final Link link;
  private final ArrayList<ActorRef<Tools>> waiting = new ArrayList<>();
  private final ArrayDeque<String> stderr = new ArrayDeque<>();
  private int generation;
  private int failures;
  private boolean firstAttemptDone;
  private String lastError;
  private McpAsyncClient client;
  private List<McpTools.Tool> tools = List.of();

  private McpServer(ActorContext<Command> ctx, TimerScheduler<Command> timers, Spec spec, Settings settings, McpTools registry) {
    super(ctx);
    this.timers = timers;
    this.spec = spec;
    this.settings = settings;
    this.registry = registry;
    this.link = new Link(spec.name(), settings);
    start();
  }

  @Override public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Call.class, this::onCall)
        .onMessage(GetTools.class, g -> {
          if (firstAttemptDone) g.replyTo().tell(new Tools(spec.name(), tools, client == null ? lastError : null));
          else waiting.add(g.replyTo());
          return this;
        })
        .onMessage(Started.class, this::onStarted)
        .onMessage(StartFailed.class, f -> {
          if (f.generation() == generation) down("failed to start: " + f.why());
          return this;
        })
        .onMessage(Exited.class, e -> {
          if (e.generation() == generation && client != null) down("exited" + lastStderr());
          return this;
        })
        .onMessage(Restart.class, r -> { start(); return this; })
        .onSignal(PostStop.class, s -> { close(); return this; })
        .build();
  }

  private void start() {
    int gen = ++generation;
    var self = getContext().getSelf();
    var missing = missingCommand(spec.command());
    if (missing != null) {
      self.tell(new StartFailed(gen, missing));
      return;
    }
    try {
      var params = ServerParameters.builder(spec.command()).args(spec.args()).env(spec.env()).build();
      var transport = new StdioClientTransport(params, McpJsonDefaults.getMapper(), settings.maxMessageBytes());
      transport.setStdErrorHandler(line -> {
        synchronized (stderr) {
          if (stderr.size() == 5) stderr.removeFirst();
          stderr.addLast(line);
        }
      });
      var c = McpClient.async(transport).requestTimeout(settings.callTimeout()).initializationTimeout(settings.startTimeout())
          .clientInfo(new McpSchema.Implementation("k2-pekko", "0.1.0")).build();
      var listed = c.initialize().then(c.listTools()).timeout(settings.startTimeout()).toFuture();
      getContext().pipeToSelf(listed, (result, error) -> {
        if (error != null) {
          c.close();
          return new StartFailed(gen, describe(error, "initialize"));
        }
        var ok = new ArrayList<McpTools.Tool>();
        var skipped = new ArrayList<String>();
        for (var t : result.tools()) {
          var schema = t.inputSchema();
          if (t.name() == null || t.name().isBlank() || schema == null || !"object".equals(schema.get("type"))) {
            skipped.add((t.name() == null ? "(no name)" : t.name()) + ": its input schema is not a JSON Schema object");
          } else {
            ok.add(new McpTools.Tool(spec.name() + "." + t.name(), spec.name(), t.name(), t.description(), schema));
          }
        }
        // the process is up now: wait for its exit on a thread of its own
        Thread.ofVirtual().name("mcp-exit-" + spec.name()).start(() -> {
          transport.awaitForExit();
          self.tell(new Exited(gen));
        });
        return new Started(gen, c, transport, List.copyOf(ok), skipped);
      });
    } catch (RuntimeException e) {
      self.tell(new StartFailed(gen, e.toString()));
    }
  }

  /** Why the command cannot be run (a path that is no executable file, or a name not on the PATH), or null. */
  static String missingCommand(String command) {
    if (command.contains("/")) {
      var p = java.nio.file.Path.of(command);
      return java.nio.file.Files.isRegularFile(p) && java.nio.file.Files.isExecutable(p) ? null : "command not found or not executable: " + command;
    }
    var path = System.getenv().getOrDefault("PATH", "");
    for (var dir : path.split(java.io.File.pathSeparator)) {
      if (!dir.isEmpty() && java.nio.file.Files.isExecutable(java.nio.file.Path.of(dir, command))) return null;
    }
    return "command not found on the PATH: " + command;
  }

  private Behavior<Command> onStarted(Started s) {
    if (s.generation() != generation) {
      s.client().close();
      return this;
    }
    client = s.client();
    tools = s.tools();
    failures = 0;
    lastError = null;
    link.lastError = null;
    link.client = client;
    registry.register(tools, getContext().getSelf(), link);
    getContext().getLog().info("MCP server {} is up: {} tools", spec.name(), tools.size());
    for (var why : s.skipped()) getContext().getLog().warn("MCP server {}: tool {} skipped", spec.name(), why);
    answerWaiting();
    return this;
  }

  private void answerWaiting() {
    firstAttemptDone = true;
    for (var w : waiting) w.tell(new Tools(spec.name(), tools, client == null ? lastError : null));
    waiting.clear();
  }

  /** The process is gone or never came up: fail what is in flight, and start again after the backoff. */
  private void down(String why) {
    lastError = "MCP server " + spec.name() + " " + why;
    getContext().getLog().warn("{}; restarting in {}", lastError, backoff());
    link.lastError = lastError;
    link.client = null;
    link.failAll(lastError);
    close();
    generation++; // answers of the dead process are ignored
    answerWaiting();
    timers.startSingleTimer(Restart.INSTANCE, Restart.INSTANCE, backoff());
    failures++;
  }

  private Duration backoff() {
    long ms = settings.minBackoff().toMillis() << Math.min(failures, 20);
    return Duration.ofMillis(Math.min(ms, settings.maxBackoff().toMillis()));
  }

  private void close() {
    if (client != null) {
      try {
        client.close();
      } catch (RuntimeException ignored) {
        // the process may already be gone
      }
      client = null;
    }
  }

  private Behavior<Command> onCall(Call c) {
    link.send(c);
    return this;
  }

  /** The result's text: its text contents joined by newlines; other content (images, resources) as JSON. */
  static String text(McpSchema.CallToolResult r) {
    var b = new StringBuilder();
    if (r.content() != null) {
      for (var content : r.content()) {
        if (!b.isEmpty()) b.append('\n');
        if (content instanceof McpSchema.TextContent t) b.append(t.text());
        else b.append(String.valueOf(content));
      }
    }
    if (b.isEmpty() && r.structuredContent() != null) b.append(String.valueOf(r.structuredContent()));
    return b.toString();
  }

  private static Throwable unwrap(Throwable t) {
    while ((t instanceof java.util.concurrent.CompletionException || t instanceof java.util.concurrent.ExecutionException
        || (t.getCause() instanceof TimeoutException)) && t.getCause() != null) t = t.getCause();
    return t;
  }

  private String describe(Throwable t, String what) {
    var cause = unwrap(t);
    if (cause instanceof TimeoutException) return "gave no answer to " + what + " within " + settings.startTimeout() + lastStderr();
    var msg = cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage();
    return msg + lastStderr();
  }

  private String lastStderr() {
    synchronized (stderr) {
      return stderr.isEmpty() ? "" : " (stderr: " + String.join(" | ", stderr) + ")";
    }
  }
}
