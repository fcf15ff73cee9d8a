package dev.k2pekko.agents.inference;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import dev.k2pekko.agents.ChatExport;
import dev.k2pekko.agents.LocalOnly;
import dev.k2pekko.agents.NodeServices;
import dev.k2pekko.agents.policy.Action;
import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.metrics.Metrics;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.tools.ToolUniverse;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * One per node when {@code k2.policy.openai.base-url} is set: the agents' actions asked of any OpenAI-compatible
 * chat-completions server (vLLM, SGLang, llama.cpp's server, {@code k2 serve}) over HTTP. It keeps each episode's
 * conversation (the task and the steps so far) and sends the whole of it with every request, as the API wants; the
 * agent stays a non-blocking actor: it sends {@link Begin} / {@link Continue} and gets a {@link Reply} back, exactly
 * as with the in-process {@link InferenceServer}.
 *
 * <p>At most {@code max-concurrent} requests are in flight (the rest wait here, in arrival order); each has a
 * timeout; unreachable servers, timeouts, 408, 429 and 5xx are retried with a backoff that doubles from
 * {@code min-backoff} to {@code max-backoff} (a {@code Retry-After} header is honoured up to that), within
 * {@code action-timeout} for the whole action. Everything else that is wrong (another 4xx, a body that is not a
 * chat completion, a tool call naming a tool not offered, arguments that are not a JSON object) fails the action at
 * once. A failure is a {@link Reply} with an error whose kind ({@link Failure#reason}) the judge counts as the
 * episode's rejection reason; nothing here throws at the agent.
 */
public final class OpenAiPolicy extends AbstractBehavior<OpenAiPolicy.Command> {
  public sealed interface Command {}

  /** The first action of an episode: the task's prompt and its offered tools become the conversation. */
  public record Begin(String episodeId, Task task, long seed, double temperature, ActorRef<Reply> replyTo) implements Command, LocalOnly {}

  /** The next action, after the step the last one produced. */
  public record Continue(String episodeId, Step previous, ActorRef<Reply> replyTo) implements Command, LocalOnly {}

  /** The episode is over (or timed out at the agent): its conversation goes, a late answer to it is dropped. */
  public record End(String episodeId) implements Command, LocalOnly {}

  /**
   * The next action of an episode, or why there is none ({@code error}, starting with a {@link Failure#reason}).
   * {@code logProb}: the sum of the sampled tokens' log-probabilities as the server reported them ({@code logprobs}),
   * NaN when it reported none; {@code tokens}: how many tokens it sampled (its {@code usage}, or the logprobs' count).
   */
  public record Reply(String episodeId, Action action, double logProb, int tokens, String error) implements LocalOnly {}

  public record GetStats(ActorRef<Stats> replyTo) implements Command, LocalOnly {}

  /**
   * Requests sent (retries included), actions answered, retries, actions failed by kind, answers that carried
   * log-probabilities, and what is in flight and waiting now.
   */
  public record Stats(long requests, long answered, long retries, Map<Failure, Long> failed, long withLogprobs, int inFlight, int waiting)
      implements LocalOnly {
    public long failedTotal() { return failed.values().stream().mapToLong(Long::longValue).sum(); }
  }

  /** Why an action failed; {@link #reason} is the judge's rejection-reason kind of the episode. */
  public enum Failure {
    HTTP_STATUS("policy-http-status"), TIMEOUT("policy-http-timeout"), UNREACHABLE("policy-unreachable"),
    BAD_RESPONSE("policy-bad-response"), UNKNOWN_TOOL("policy-unknown-tool"), BAD_ARGUMENTS("policy-bad-arguments");

    public final String reason;

    Failure(String reason) { this.reason = reason; }
  }

  /**
   * {@code baseUrl}: the API root ({@code http://host:port/v1}); {@code apiKey}: sent as a bearer token when not
   * null; {@code timeout}: one HTTP request; {@code actionTimeout}: one action, waiting, retries and backoffs
   * included; {@code logprobs}: ask for the sampled tokens' log-probabilities; {@code maxTokens}: 0 sends none.
   */
  public record Settings(URI baseUrl, String model, String apiKey, int maxConcurrent, Duration timeout, int retries, Duration minBackoff,
                         Duration maxBackoff, Duration actionTimeout, boolean logprobs, int maxTokens, long maxResponseBytes) {
    public Settings {
      if (maxConcurrent < 1) throw new IllegalArgumentException("k2.policy.openai.max-concurrent must be at least 1, got " + maxConcurrent);
      if (retries < 0) throw new IllegalArgumentException("k2.policy.openai.retries must be >= 0, got " + retries);
      if (maxTokens < 0) throw new IllegalArgumentException("k2.policy.openai.max-tokens must be >= 0, got " + maxTokens);
      for (var d : new Duration[] {timeout, minBackoff, maxBackoff, actionTimeout}) {
        if (d.isNegative() || d.isZero()) throw new IllegalArgumentException("k2.policy.openai durations must be positive, got " + d);
      }
      if (model == null || model.isBlank()) throw new IllegalArgumentException("k2.policy.openai.model must name the served model (--model)");
    }

    /** The settings of {@code k2.policy.openai}, or null where {@code base-url} is empty (this node drives no served LLM). */
    public static Settings fromConfig(Config k2) {
      var c = k2.getConfig("policy.openai");
      String url = c.getString("base-url").trim();
      if (url.isEmpty()) return null;
      URI base;
      try {
        base = new URI(url.endsWith("/") ? url.substring(0, url.length() - 1) : url);
      } catch (java.net.URISyntaxException e) {
        throw new IllegalArgumentException("--base-url is not a URL: " + url);
      }
      if (!("http".equals(base.getScheme()) || "https".equals(base.getScheme())) || base.getHost() == null) {
        throw new IllegalArgumentException("--base-url must be an http:// or https:// URL with a host, got " + url);
      }
      String env = c.getString("api-key-env");
      String key = env.isEmpty() ? null : System.getenv(env);
      return new Settings(base, c.getString("model"), key == null || key.isBlank() ? null : key.trim(), c.getInt("max-concurrent"),
          c.getDuration("timeout"), c.getInt("retries"), c.getDuration("min-backoff"), c.getDuration("max-backoff"),
          c.getDuration("action-timeout"), c.getBoolean("logprobs"), c.getInt("max-tokens"), c.getBytes("max-response-bytes"));
    }

    /** The name trajectories of this policy carry. */
    public String policyName() { return "openai:" + model; }
  }

  public static Behavior<Command> create(Settings settings, ToolUniverse universe) {
    return create(settings, universe, new dev.k2pekko.tools.mcp.McpTools());
  }

  /** {@code mcp}: the node's MCP tools, whose input schemas are sent with the offered tools that are theirs. */
  public static Behavior<Command> create(Settings settings, ToolUniverse universe, dev.k2pekko.tools.mcp.McpTools mcp) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new OpenAiPolicy(ctx, timers, settings, universe, mcp)));
  }

  // Integers of tool arguments as Long, as every other path into the tool workers gives them.
  private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.USE_LONG_FOR_INTS);

  /** What one HTTP exchange came to, decided on the HTTP client's thread. */
  sealed interface Outcome {}

  record Ok(Action action, double logProb, int tokens) implements Outcome {}

  record Failed(Failure kind, String message, boolean retryable, Duration retryAfter) implements Outcome {}

  /** The answer to request {@code seq} of an episode (its {@code attempt}-th try). */
  private record Answered(String episodeId, int seq, Outcome outcome) implements Command, LocalOnly {}

  /** A backoff is over: try the episode's request again. */
  private record Retry(String episodeId, int seq) implements Command, LocalOnly {}

  /** One episode's conversation and its request in progress. */
  private static final class Conversation {
    final Task task;
    final long seed;
    final double temperature;
    final ActorRef<Reply> replyTo;
    final List<Step> steps = new ArrayList<>();
    /** Tool names as sent (OpenAI's form, dots as {@code __}) and as the universe has them, to the universe's name. */
    final Map<String, String> names = new HashMap<>();
    int seq;
    int attempt;
    long deadline;

    Conversation(Task task, long seed, double temperature, ActorRef<Reply> replyTo) {
      this.task = task;
      this.seed = seed;
      this.temperature = temperature;
      this.replyTo = replyTo;
      for (var n : task.toolsOffered()) {
        names.put(n, n);
        names.put(ChatExport.openAiName(n), n);
      }
    }
  }

  private record Waiting(String episodeId, int seq) {}

  private final TimerScheduler<Command> timers;
  private final Settings settings;
  private final ChatExport export;
  private final HttpClient http;
  private final URI endpoint;
  private final Map<String, Conversation> conversations = new HashMap<>();
  private final ArrayDeque<Waiting> waiting = new ArrayDeque<>();
  private int inFlight;
  private long requests, answered, retries, withLogprobs;
  private final EnumMap<Failure, Long> failed = new EnumMap<>(Failure.class);
  private final Metrics metrics;

  private final ToolUniverse universe;
  private final dev.k2pekko.tools.mcp.McpTools mcp;

  private OpenAiPolicy(ActorContext<Command> ctx, TimerScheduler<Command> timers, Settings settings, ToolUniverse universe,
                       dev.k2pekko.tools.mcp.McpTools mcp) {
    super(ctx);
    this.universe = universe;
    this.mcp = mcp;
    this.timers = timers;
    this.settings = settings;
    this.export = new ChatExport(universe, ChatExport.Format.OPENAI, ChatExport.ToolCallContent.NULL);
    // HTTP/1.1: servers of this API speak it; the client's h2c upgrade attempt is refused by some of them
    this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(settings.timeout()).build();
    this.endpoint = URI.create(settings.baseUrl() + "/chat/completions");
    this.metrics = Metrics.get(ctx.getSystem());
  }

  @Override public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Begin.class, this::onBegin)
        .onMessage(Continue.class, this::onContinue)
        .onMessage(End.class, e -> {
          conversations.remove(e.episodeId());
          timers.cancel(e.episodeId());
          return this;
        })
        .onMessage(Answered.class, this::onAnswered)
        .onMessage(Retry.class, r -> {
          var c = conversations.get(r.episodeId());
          if (c != null && c.seq == r.seq()) ask(r.episodeId(), c);
          return this;
        })
        .onMessage(GetStats.class, g -> {
          g.replyTo().tell(new Stats(requests, answered, retries, Map.copyOf(failed), withLogprobs, inFlight, waiting.size()));
          return this;
        })
        .onSignal(org.apache.pekko.actor.typed.PostStop.class, s -> {
          http.shutdownNow();
          return this;
        })
        .build();
  }

  private Behavior<Command> onBegin(Begin b) {
    var c = new Conversation(b.task(), b.seed(), b.temperature(), b.replyTo());
    conversations.put(b.episodeId(), c);
    start(b.episodeId(), c);
    return this;
  }

  private Behavior<Command> onContinue(Continue m) {
    var c = conversations.get(m.episodeId());
    if (c == null) {
      m.replyTo().tell(new Reply(m.episodeId(), null, Double.NaN, 0, "no-session: unknown episode " + m.episodeId()));
      return this;
    }
    c.steps.add(m.previous());
    c.seq++;
    start(m.episodeId(), c);
    return this;
  }

  /** A new action of the episode: its deadline starts now, waiting for a slot included. */
  private void start(String episodeId, Conversation c) {
    c.attempt = 0;
    c.deadline = System.nanoTime() + settings.actionTimeout().toNanos();
    ask(episodeId, c);
  }

  private void ask(String episodeId, Conversation c) {
    if (inFlight >= settings.maxConcurrent()) {
      waiting.add(new Waiting(episodeId, c.seq));
      return;
    }
    long left = c.deadline - System.nanoTime();
    if (left <= 0) {
      fail(episodeId, c, new Failed(Failure.TIMEOUT, "no answer within the action timeout of " + settings.actionTimeout()
          + " (k2.policy.openai.action-timeout), " + c.attempt + " tries and the wait for a free slot included", false, null));
      return;
    }
    byte[] body;
    try {
      body = JSON.writeValueAsBytes(request(c));
    } catch (JsonProcessingException e) {
      fail(episodeId, c, new Failed(Failure.BAD_ARGUMENTS, "the conversation could not be written as JSON: " + e.getOriginalMessage(), false, null));
      return;
    }
    var timeout = Duration.ofNanos(Math.min(settings.timeout().toNanos(), left));
    var builder = HttpRequest.newBuilder(endpoint).timeout(timeout).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofByteArray(body));
    if (settings.apiKey() != null) builder.header("Authorization", "Bearer " + settings.apiKey());
    inFlight++;
    requests++;
    c.attempt++;
    int seq = c.seq;
    var names = Map.copyOf(c.names);
    var self = getContext().getSelf();
    http.sendAsync(builder.build(), HttpResponse.BodyHandlers.limiting(HttpResponse.BodyHandlers.ofByteArray(), settings.maxResponseBytes()))
        .handle((response, error) -> {
          Outcome o;
          try {
            o = error != null ? failure(error, timeout) : OpenAiResponse.read(response, names, endpoint);
          } catch (RuntimeException e) { // a parser's surprise is a bad response, never a dead actor
            o = new Failed(Failure.BAD_RESPONSE, "the response could not be read (" + e.getClass().getSimpleName() + ")", false, null);
          }
          self.tell(new Answered(episodeId, seq, o));
          return null;
        });
  }

  /** The chat-completions request of the conversation so far: the messages {@code k2 export --format openai} writes. */
  private ObjectNode request(Conversation c) {
    var draft = new Trajectory("", c.task.id(), c.task.category(), c.task.difficulty(), c.task.seed(), NodeServices.SYSTEM_PROMPT,
        c.task.prompt(), c.task.toolsOffered(), c.steps, null, null, settings.policyName());
    var chat = export.toJson(draft, null);
    var root = JSON.createObjectNode();
    root.put("model", settings.model());
    root.set("messages", chat.get("messages"));
    if (!c.task.toolsOffered().isEmpty()) {
      var tools = (com.fasterxml.jackson.databind.node.ArrayNode) chat.get("tools");
      for (int i = 0; i < c.task.toolsOffered().size() && i < tools.size(); i++) {
        // a tool of an MCP server on this node: its description and input schema, as the server listed them
        String name = c.task.toolsOffered().get(i);
        var served = universe.get(name) == null ? mcp.tool(name) : null;
        if (served != null) {
          var fn = served.toOpenAi();
          ((ObjectNode) fn.get("function")).put("name", ChatExport.openAiName(name));
          tools.set(i, fn);
        }
      }
      root.set("tools", tools);
      root.put("tool_choice", "auto").put("parallel_tool_calls", false);
    }
    root.put("temperature", c.temperature);
    // a seed per action: an episode replays the same with a server that honours seeds
    root.put("seed", c.seed * 1_000_003L + c.seq);
    if (settings.logprobs()) root.put("logprobs", true);
    if (settings.maxTokens() > 0) root.put("max_tokens", settings.maxTokens());
    return root;
  }

  private Behavior<Command> onAnswered(Answered a) {
    inFlight--;
    var c = conversations.get(a.episodeId());
    if (c != null && c.seq == a.seq()) {
      switch (a.outcome()) {
        case Ok ok -> {
          answered++;
          metrics.counter("k2_openai_policy_requests", "requests to the served LLM by outcome", "outcome", "ok").increment();
          if (!Double.isNaN(ok.logProb())) withLogprobs++;
          c.replyTo.tell(new Reply(a.episodeId(), ok.action(), ok.logProb(), ok.tokens(), null));
        }
        case Failed f -> {
          long backoff = backoff(c.attempt, f.retryAfter());
          if (f.retryable() && c.attempt <= settings.retries() && System.nanoTime() + backoff < c.deadline) {
            retries++;
            metrics.counter("k2_openai_policy_requests", "requests to the served LLM by outcome", "outcome", "retried").increment();
            timers.startSingleTimer(a.episodeId(), new Retry(a.episodeId(), a.seq()), Duration.ofNanos(backoff));
          } else {
            fail(a.episodeId(), c, f);
          }
        }
      }
    }
    while (inFlight < settings.maxConcurrent() && !waiting.isEmpty()) {
      var w = waiting.poll();
      var next = conversations.get(w.episodeId());
      if (next != null && next.seq == w.seq()) ask(w.episodeId(), next);
    }
    return this;
  }

  /** The wait before try {@code attempt + 1}: min-backoff doubled per try, capped, with jitter; at least a server's Retry-After. */
  private long backoff(int attempt, Duration retryAfter) {
    long min = settings.minBackoff().toNanos(), max = settings.maxBackoff().toNanos();
    long d = Math.min(max, min << Math.min(20, Math.max(0, attempt - 1)));
    d = d / 2 + ThreadLocalRandom.current().nextLong(d / 2 + 1);
    if (retryAfter != null) d = Math.max(d, Math.min(max, retryAfter.toNanos()));
    return d;
  }

  private void fail(String episodeId, Conversation c, Failed f) {
    failed.merge(f.kind(), 1L, Long::sum);
    metrics.counter("k2_openai_policy_requests", "requests to the served LLM by outcome", "outcome", f.kind().name().toLowerCase()).increment();
    String tries = c.attempt > 1 ? " (after " + c.attempt + " tries)" : "";
    c.replyTo.tell(new Reply(episodeId, null, Double.NaN, 0, f.kind().reason + ": " + f.message() + tries));
  }

  private Failed failure(Throwable error, Duration timeout) {
    while (error instanceof CompletionException && error.getCause() != null) error = error.getCause();
    return switch (error) {
      case HttpTimeoutException e -> new Failed(Failure.TIMEOUT, settings.baseUrl() + " gave no answer within " + timeout.toMillis() + " ms", true, null);
      case ConnectException e -> new Failed(Failure.UNREACHABLE, "cannot connect to " + settings.baseUrl() + ": " + describe(e), true, null);
      case IOException e when String.valueOf(e.getMessage()).contains("body exceeds") || String.valueOf(e.getMessage()).contains("limit") ->
          new Failed(Failure.BAD_RESPONSE, "the response is over " + settings.maxResponseBytes() + " bytes (k2.policy.openai.max-response-bytes)", false, null);
      case IOException e -> new Failed(Failure.UNREACHABLE, "the exchange with " + settings.baseUrl() + " failed: " + describe(e), true, null);
      default -> new Failed(Failure.UNREACHABLE, "the request to " + settings.baseUrl() + " failed: " + describe(error), false, null);
    };
  }

  private static String describe(Throwable e) {
    return e.getMessage() == null ? e.getClass().getSimpleName() : e.getClass().getSimpleName() + " " + e.getMessage();
  }
}
