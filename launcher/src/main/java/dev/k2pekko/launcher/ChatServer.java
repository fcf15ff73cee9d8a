package dev.k2pekko.launcher;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.agents.ChatExport;
import dev.k2pekko.agents.inference.InferenceServer;
import dev.k2pekko.agents.policy.Action;
import dev.k2pekko.agents.policy.LearnedPolicy;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.tools.ToolUniverse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpMethods;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.headers.Allow;
import org.apache.pekko.http.scaladsl.model.EntityStreamException;
import org.apache.pekko.http.scaladsl.model.EntityStreamSizeException;

/**
 * The OpenAI chat-completions API over the node's {@link InferenceServer}: {@code GET /v1/models},
 * {@code GET /v1/models/{id}} and {@code POST /v1/chat/completions}. Every request becomes one
 * {@link InferenceServer.Act}, batched with whatever else the inference server is serving; the conversation is
 * read into the policy's view as docs/SERVE.md describes. Every failure is an OpenAI error object with its status
 * ({@code {"error":{"message","type","param","code"}}}); nothing of the server's insides is ever in a response.
 */
final class ChatServer {
  private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  /** The request body limit, how many chat completions may be in flight at once, and how long one may take. */
  record Settings(long maxBodyBytes, int maxConcurrent, Duration requestTimeout) {}

  /** The served model: its id for clients and the checkpoint it came from. */
  record Model(String id, long version, long createdEpochSeconds) {}

  /** A request that cannot be served, as OpenAI's API reports it. */
  static final class ApiError extends RuntimeException {
    final int status;
    final String type, param, code;

    ApiError(int status, String type, String message, String param, String code) {
      super(message, null, false, false);
      this.status = status;
      this.type = type;
      this.param = param;
      this.code = code;
    }

    static ApiError invalid(String message, String param) {
      return new ApiError(400, "invalid_request_error", message, param, null);
    }
  }

  private final ActorSystem<?> system;
  private final ActorRef<InferenceServer.Command> inference;
  private final PolicyFormat format;
  private final ToolUniverse universe;
  private final Model model;
  private final Settings settings;
  private final int context;
  private final AtomicInteger inFlight = new AtomicInteger();
  private final AtomicLong ids = new AtomicLong();

  ChatServer(ActorSystem<?> system, ActorRef<InferenceServer.Command> inference, PolicyFormat format, ToolUniverse universe, Model model,
             int context, Settings settings) {
    this.system = system;
    this.inference = inference;
    this.format = format;
    this.universe = universe;
    this.model = model;
    this.context = context;
    this.settings = settings;
  }

  /**
   * The request handler to bind: {@link #handle} itself, or with {@code apiKey} non-null, as OpenAI's API does, the key
   * required as a bearer token and a 401 with an error object without it. Here rather than in {@code ServeCommand}:
   * picocli reflects over a command's methods, and a lambda there taking a Pekko HTTP type breaks every command of a
   * bundle, which leaves Pekko HTTP out.
   */
  org.apache.pekko.japi.function.Function<HttpRequest, CompletionStage<HttpResponse>> handler(String apiKey) {
    if (apiKey == null) return this::handle;
    return request -> {
      if (BearerToken.authorizes(apiKey, request.getHeader("Authorization").map(h -> h.value()).orElse(null))) return handle(request);
      request.discardEntityBytes(system);
      return CompletableFuture.completedFuture(error(new ApiError(401, "invalid_request_error",
          "This server needs its API key: Authorization: Bearer KEY.", null, "invalid_api_key")));
    };
  }

  CompletionStage<HttpResponse> handle(HttpRequest request) {
    try {
      String path = request.getUri().path();
      if (path.equals("/v1/chat/completions")) {
        if (request.method() != HttpMethods.POST) return done(request, methodNotAllowed(request, HttpMethods.POST));
        return chatCompletion(request);
      }
      if (path.equals("/v1/models") || path.startsWith("/v1/models/")) {
        if (request.method() != HttpMethods.GET) return done(request, methodNotAllowed(request, HttpMethods.GET));
        if (path.equals("/v1/models")) {
          var body = JSON.createObjectNode().put("object", "list");
          body.putArray("data").add(modelJson());
          return done(request, ok(body));
        }
        String id = path.substring("/v1/models/".length());
        if (!id.equals(model.id())) return done(request, error(unknownModel(id, null)));
        return done(request, ok(modelJson()));
      }
      return done(request, error(new ApiError(404, "invalid_request_error", "Unknown request URL: " + request.method().name() + " " + path
          + ". This server serves GET /v1/models and POST /v1/chat/completions.", null, "unknown_url")));
    } catch (RuntimeException e) {
      return done(request, internal(e));
    }
  }

  private ObjectNode modelJson() {
    return JSON.createObjectNode().put("id", model.id()).put("object", "model").put("created", model.createdEpochSeconds()).put("owned_by", "k2-pekko");
  }

  private CompletionStage<HttpResponse> chatCompletion(HttpRequest request) {
    var declared = request.entity().getContentLengthOption();
    if (declared.isPresent() && declared.getAsLong() > settings.maxBodyBytes()) return done(request, error(tooLarge()));
    if (inFlight.incrementAndGet() > settings.maxConcurrent()) {
      inFlight.decrementAndGet();
      return done(request, error(new ApiError(429, "rate_limit_error", "Too many concurrent requests: this server answers at most "
          + settings.maxConcurrent() + " chat completions at a time (--max-concurrent). Retry after a short wait.", null, "rate_limit_exceeded")));
    }
    CompletionStage<HttpResponse> response;
    try {
      response = request.entity().toStrict(settings.requestTimeout().toMillis(), settings.maxBodyBytes(), system)
          .thenCompose(strict -> complete(parse(strict.getData().toArray())))
          .exceptionally(this::failure);
    } catch (RuntimeException e) {
      response = CompletableFuture.completedFuture(failure(e));
    }
    return response.whenComplete((r, e) -> inFlight.decrementAndGet());
  }

  private HttpResponse failure(Throwable t) {
    while ((t instanceof CompletionException || t instanceof java.util.concurrent.ExecutionException) && t.getCause() != null) t = t.getCause();
    return switch (t) {
      case ApiError e -> error(e);
      case EntityStreamSizeException e -> error(tooLarge());
      // a chunked body over the limit is cut by Pekko's parser with this message (pekko-http 1.3.0)
      case EntityStreamException e when String.valueOf(e.getMessage()).startsWith("Request too large") -> error(tooLarge());
      case EntityStreamException e -> error(ApiError.invalid("The request body could not be read: " + e.getMessage(), null));
      case TimeoutException e -> error(new ApiError(503, "server_error", "The request timed out after " + settings.requestTimeout().toSeconds()
          + " s (reading its body or waiting for the inference server).", null, "timeout"));
      default -> internal(t);
    };
  }

  private ApiError tooLarge() {
    return new ApiError(413, "invalid_request_error", "The request body is over this server's limit of " + settings.maxBodyBytes()
        + " bytes (--max-body-bytes).", null, "request_too_large");
  }

  private ApiError unknownModel(String id, String param) {
    return new ApiError(404, "invalid_request_error", "The model '" + id + "' does not exist; this server serves '" + model.id() + "'.", param,
        "model_not_found");
  }

  private HttpResponse internal(Throwable t) {
    // The log keeps the trace for the operator; the client gets the kind of failure only.
    system.log().error("k2 serve: internal error", t);
    return error(new ApiError(500, "server_error", "The server had an error while processing the request (" + t.getClass().getSimpleName() + ").",
        null, null));
  }

  /** A request read and checked: what the policy is asked, and how to write its answer back. */
  private record Chat(String prompt, List<Step> history, LearnedPolicy.Limits limits, Map<String, String> clientNames, double temperature,
                      long seed, int maxTokens, boolean logprobs) {}

  private Chat parse(byte[] body) {
    JsonNode root;
    try {
      root = JSON.readTree(body);
    } catch (JsonProcessingException e) {
      throw ApiError.invalid("We could not parse the JSON body of your request: " + e.getOriginalMessage()
          + " (line " + (e.getLocation() == null ? "?" : e.getLocation().getLineNr()) + ")", null);
    } catch (java.io.IOException e) {
      throw ApiError.invalid("We could not read the body of your request: " + e.getMessage(), null);
    }
    if (root == null || !root.isObject()) throw ApiError.invalid("The request body must be a JSON object.", null);
    var m = root.get("model");
    if (m == null || !m.isTextual()) throw ApiError.invalid("you must provide a model parameter (a string)", "model");
    if (!m.asText().equals(model.id())) throw unknownModel(m.asText(), "model");
    if (root.path("stream").asBoolean(false)) throw ApiError.invalid("stream: true is not supported by k2 serve; send stream: false.", "stream");
    if (root.has("n") && !root.get("n").isNull() && root.get("n").asInt(-1) != 1) throw ApiError.invalid("n must be 1: k2 serve writes one choice.", "n");

    double temperature = 1.0;
    var t = root.get("temperature");
    if (t != null && !t.isNull()) {
      if (!t.isNumber() || t.asDouble() < 0 || t.asDouble() > 2) throw ApiError.invalid("temperature must be a number from 0 to 2, got " + t, "temperature");
      temperature = t.asDouble();
    }
    long seed = ThreadLocalRandom.current().nextLong();
    var s = root.get("seed");
    if (s != null && !s.isNull()) {
      if (!s.isIntegralNumber() || !s.canConvertToLong()) throw ApiError.invalid("seed must be an integer, got " + s, "seed");
      seed = s.asLong();
    }
    var lp = root.get("logprobs");
    if (lp != null && !lp.isNull() && !lp.isBoolean()) throw ApiError.invalid("logprobs must be a boolean, got " + lp, "logprobs");
    boolean logprobs = lp != null && lp.asBoolean(false);
    int maxTokens = LearnedPolicy.MAX_ACTION_TOKENS;
    for (String name : new String[] {"max_tokens", "max_completion_tokens"}) {
      var mt = root.get(name);
      if (mt == null || mt.isNull()) continue;
      if (!mt.isIntegralNumber() || mt.asLong() < 1) throw ApiError.invalid(name + " must be a positive integer, got " + mt, name);
      maxTokens = (int) Math.min(maxTokens, mt.asLong());
    }

    // The tools offered, by the names the client gave them; a name is a universe tool's, or its OpenAI form (dots as __).
    var clientNames = new LinkedHashMap<String, String>(); // universe name -> client name
    var offered = new LinkedHashSet<String>();             // universe names the policy can write
    var tools = root.get("tools");
    if (tools != null && !tools.isNull()) {
      if (!tools.isArray()) throw ApiError.invalid("tools must be an array", "tools");
      for (int i = 0; i < tools.size(); i++) {
        var tool = tools.get(i);
        var name = tool.path("function").path("name");
        if (!"function".equals(tool.path("type").asText()) || !name.isTextual() || name.asText().isEmpty()) {
          throw ApiError.invalid("tools[" + i + "] must be {\"type\": \"function\", \"function\": {\"name\": ...}}", "tools[" + i + "]");
        }
        String u = universeName(name.asText());
        clientNames.put(u, name.asText());
        if (format.knows(u)) offered.add(u);
      }
    }
    boolean mayCall = !offered.isEmpty(), mayAnswer = true;
    var choice = root.get("tool_choice");
    if (choice != null && !choice.isNull()) {
      if (choice.isTextual()) {
        switch (choice.asText()) {
          case "auto" -> {}
          case "none" -> mayCall = false;
          case "required" -> {
            if (offered.isEmpty()) throw ApiError.invalid("tool_choice is required, but none of the tools offered is one this policy can call "
                + "(it was trained on the core tools: " + coreTools() + ")", "tool_choice");
            mayAnswer = false;
          }
          default -> throw ApiError.invalid("tool_choice must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}, got "
              + choice, "tool_choice");
        }
      } else {
        var name = choice.path("function").path("name");
        if (!"function".equals(choice.path("type").asText()) || !name.isTextual()) {
          throw ApiError.invalid("tool_choice must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}", "tool_choice");
        }
        String u = universeName(name.asText());
        if (!clientNames.containsKey(u)) throw ApiError.invalid("tool_choice names " + name.asText() + ", which is not among the tools offered", "tool_choice");
        if (!format.knows(u)) throw ApiError.invalid("tool_choice names " + name.asText() + ", a tool this policy cannot call (it was trained on the core tools: "
            + coreTools() + ")", "tool_choice");
        offered.retainAll(List.of(u));
        mayCall = true;
        mayAnswer = false;
      }
    }
    var limits = new LearnedPolicy.Limits(mayCall, mayAnswer, mayCall ? offered : java.util.Set.of(), maxTokens);
    var conversation = conversation(root.get("messages"));
    int viewLength = format.view(conversation.prompt(), conversation.history()).length;
    if (viewLength + 2 > context) {
      throw new ApiError(400, "invalid_request_error", "This model's context is " + context + " tokens; the conversation's view is " + viewLength
          + " tokens and leaves no room for an action.", "messages", "context_length_exceeded");
    }
    return new Chat(conversation.prompt(), conversation.history(), limits, clientNames, temperature, seed, maxTokens, logprobs);
  }

  private String coreTools() {
    return String.join(", ", universe.all().stream().map(tool -> tool.name()).filter(format::knows).sorted().toList());
  }

  /** A client's tool name as the universe names it: itself when the universe knows it, else with {@code __} read as a dot. */
  private String universeName(String client) {
    if (universe.get(client) != null) return client;
    String dotted = client.replace("__", ".");
    return universe.get(dotted) != null ? dotted : client;
  }

  private record Conversation(String prompt, List<Step> history) {}

  /**
   * The policy's episode from the messages: the task is the last user message; the steps are the assistant's tool
   * calls after it, each with the tool message that answers it. System messages and turns before the last user
   * message are not part of the view (the policy never saw either in training).
   */
  private Conversation conversation(JsonNode messages) {
    if (messages == null || !messages.isArray() || messages.isEmpty()) throw ApiError.invalid("messages must be a non-empty array", "messages");
    int user = -1;
    for (int i = 0; i < messages.size(); i++) {
      var msg = messages.get(i);
      if (!msg.isObject() || !msg.path("role").isTextual()) throw ApiError.invalid("messages[" + i + "] must be an object with a role", "messages[" + i + "]");
      switch (msg.path("role").asText()) {
        case "user" -> user = i;
        case "system", "developer", "assistant", "tool" -> {}
        default -> throw ApiError.invalid("messages[" + i + "].role must be system, developer, user, assistant or tool, got "
            + msg.path("role"), "messages[" + i + "].role");
      }
    }
    if (user < 0) throw ApiError.invalid("messages must hold a user message: it is the task the policy works on", "messages");
    String prompt = text(messages.get(user).get("content"), "messages[" + user + "].content");
    var pending = new LinkedHashMap<String, Step>(); // calls by id, waiting for their tool message
    var steps = new ArrayList<Step>();
    var answered = new HashMap<String, Integer>();
    for (int i = user + 1; i < messages.size(); i++) {
      var msg = messages.get(i);
      String where = "messages[" + i + "]";
      switch (msg.path("role").asText()) {
        case "assistant" -> {
          var calls = msg.get("tool_calls");
          if (calls == null || calls.isNull()) continue;
          if (!calls.isArray()) throw ApiError.invalid(where + ".tool_calls must be an array", where + ".tool_calls");
          for (int c = 0; c < calls.size(); c++) {
            var call = calls.get(c);
            var fn = call.path("function");
            if (!call.path("id").isTextual() || !fn.path("name").isTextual() || !fn.path("arguments").isTextual()) {
              throw ApiError.invalid(where + ".tool_calls[" + c + "] needs id, function.name and function.arguments (a JSON string)", where + ".tool_calls");
            }
            Map<String, Object> args;
            try {
              var parsed = JSON.readTree(fn.path("arguments").asText());
              if (parsed == null || !parsed.isObject()) throw ApiError.invalid(where + ".tool_calls[" + c + "].function.arguments must encode a JSON object", where + ".tool_calls");
              args = JSON.convertValue(parsed, JSON.getTypeFactory().constructMapType(LinkedHashMap.class, String.class, Object.class));
            } catch (JsonProcessingException e) {
              throw ApiError.invalid(where + ".tool_calls[" + c + "].function.arguments is not JSON: " + e.getOriginalMessage(), where + ".tool_calls");
            }
            pending.put(call.path("id").asText(), new Step(call.path("id").asText(), universeName(fn.path("name").asText()), args, null, null, false));
          }
        }
        case "tool" -> {
          String id = msg.path("tool_call_id").asText(null);
          var call = id == null ? null : pending.remove(id);
          if (call == null) {
            throw ApiError.invalid(where + " answers tool_call_id " + msg.path("tool_call_id") + (answered.containsKey(id) ? ", answered before" : ", which no earlier assistant message called"),
                where + ".tool_call_id");
          }
          answered.put(id, i);
          steps.add(result(call, text(msg.get("content"), where + ".content")));
        }
        default -> {} // a system message late in the conversation, or a second user turn: not part of the view
      }
    }
    if (!pending.isEmpty()) throw ApiError.invalid("tool call " + pending.keySet().iterator().next() + " has no tool message answering it", "messages");
    return new Conversation(prompt, steps);
  }

  /**
   * A tool message read back as the step's outcome, as {@code k2 export} writes it: {@code {"error": KIND, "message": ...}}
   * is a failed call, {@code {"partial": true, "content": ...}} a partial result, anything else the result text.
   */
  private static Step result(Step call, String content) {
    if (content.startsWith("{")) {
      try {
        var node = JSON.readTree(content);
        if (node.isObject() && node.path("error").isTextual()) {
          return new Step(call.callId(), call.tool(), call.arguments(), node.path("message").asText(null), node.path("error").asText(), false);
        }
        if (node.isObject() && node.path("partial").asBoolean(false)) {
          return new Step(call.callId(), call.tool(), call.arguments(), node.path("content").asText(""), null, true);
        }
      } catch (JsonProcessingException e) {
        // not JSON: a plain result that starts with a brace
      }
    }
    return new Step(call.callId(), call.tool(), call.arguments(), content, null, false);
  }

  /** A message's content as text: a string, or an array of {@code {"type": "text", "text": ...}} parts joined. */
  private static String text(JsonNode content, String where) {
    if (content != null && content.isTextual()) return content.asText();
    if (content != null && content.isArray()) {
      var sb = new StringBuilder();
      for (var part : content) {
        if (!"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) throw ApiError.invalid(where + " may hold text parts only", where);
        sb.append(part.path("text").asText());
      }
      return sb.toString();
    }
    throw ApiError.invalid(where + " must be a string or an array of text parts", where);
  }

  private CompletionStage<HttpResponse> complete(Chat chat) {
    String requestId = "http/" + ids.incrementAndGet();
    return AskPattern.<InferenceServer.Command, InferenceServer.Reply>ask(inference,
            replyTo -> new InferenceServer.Act(requestId, chat.prompt(), chat.history(), chat.seed(), chat.temperature(), chat.limits(), replyTo),
            settings.requestTimeout(), system.scheduler())
        .thenApply(reply -> ok(completion(chat, reply)));
  }

  private ObjectNode completion(Chat chat, InferenceServer.Reply reply) {
    if (reply.error() != null) throw new ApiError(503, "server_error", "The policy could not answer: " + reply.error(), null, null);
    int[] tokens = reply.tokens();
    var root = JSON.createObjectNode();
    root.put("id", "chatcmpl-" + Long.toHexString(ThreadLocalRandom.current().nextLong()) + Long.toHexString(ids.get()))
        .put("object", "chat.completion").put("created", System.currentTimeMillis() / 1000).put("model", model.id())
        .put("system_fingerprint", "k2-v" + reply.version());
    var choice = root.putArray("choices").addObject().put("index", 0);
    var message = choice.putObject("message").put("role", "assistant");
    boolean finished = tokens.length > 0 && tokens[tokens.length - 1] == format.eos();
    if (!finished) {
      // Out of max_tokens mid-action: what was written, as text, the way OpenAI reports a cut-off completion.
      message.put("content", format.tokenizer().decode(tokens));
      choice.put("finish_reason", "length");
    } else {
      switch (reply.action()) {
        case Action.Call c -> {
          message.putNull("content");
          var call = message.putArray("tool_calls").addObject();
          call.put("id", "call_" + Long.toHexString(ThreadLocalRandom.current().nextLong()) + Long.toHexString(ids.get()));
          call.put("type", "function");
          String name = chat.clientNames().getOrDefault(c.tool(), c.tool());
          try {
            call.putObject("function").put("name", name).put("arguments", JSON.writeValueAsString(c.arguments()));
          } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
          }
          choice.put("finish_reason", "tool_calls");
        }
        case Action.Answer a -> {
          message.put("content", a.text());
          choice.put("finish_reason", "stop");
        }
      }
    }
    if (chat.logprobs() && reply.tokenLogProbs() != null) {
      // OpenAI's form: one entry per sampled token, log pi at temperature 1 over the tokens the request allowed
      var content = choice.putObject("logprobs").putArray("content");
      for (int i = 0; i < tokens.length; i++) {
        String token = format.tokenizer().decode(new int[] {tokens[i]});
        var entry = content.addObject().put("token", token).put("logprob", reply.tokenLogProbs()[i]);
        var bytes = entry.putArray("bytes");
        for (byte b : token.getBytes(java.nio.charset.StandardCharsets.UTF_8)) bytes.add(b & 0xff);
        entry.putArray("top_logprobs");
      }
    } else {
      choice.putNull("logprobs");
    }
    int prompt = format.view(chat.prompt(), chat.history()).length;
    root.putObject("usage").put("prompt_tokens", prompt).put("completion_tokens", tokens.length).put("total_tokens", prompt + tokens.length);
    return root;
  }

  private HttpResponse methodNotAllowed(HttpRequest request, org.apache.pekko.http.javadsl.model.HttpMethod allowed) {
    return error(new ApiError(405, "invalid_request_error", "Method " + request.method().name() + " is not allowed on " + request.getUri().path()
        + "; use " + allowed.name() + ".", null, "method_not_allowed")).addHeader(Allow.create(allowed));
  }

  static HttpResponse error(ApiError e) {
    var body = JSON.createObjectNode();
    var err = body.putObject("error");
    err.put("message", e.getMessage()).put("type", e.type);
    if (e.param == null) err.putNull("param"); else err.put("param", e.param);
    if (e.code == null) err.putNull("code"); else err.put("code", e.code);
    return json(e.status, body);
  }

  private static HttpResponse ok(ObjectNode body) { return json(200, body); }

  private static HttpResponse json(int status, ObjectNode body) {
    try {
      return HttpResponse.create().withStatus(status).withEntity(ContentTypes.APPLICATION_JSON, JSON.writeValueAsBytes(body));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A response decided before the body was read: the body is drained so the connection stays usable. */
  private CompletionStage<HttpResponse> done(HttpRequest request, HttpResponse response) {
    request.discardEntityBytes(system);
    return CompletableFuture.completedFuture(response);
  }

  int inFlight() { return inFlight.get(); }

  static String openAiName(String tool) { return ChatExport.openAiName(tool); }
}
