package dev.k2pekko.launcher;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.agents.ChatExport;
import dev.k2pekko.agents.inference.InferenceServer;
import dev.k2pekko.agents.policy.Action;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.tools.ToolUniverse;
import java.time.Duration;
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
 * read into the policy's view as docs/SERVE.md describes ({@link ChatRequest}). Every failure is an OpenAI error object with its status
 * ({@code {"error":{"message","type","param","code"}}}); nothing of the server's insides is ever in a response.
 */
final class ChatServer {
  static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

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

    static ApiError unknownModel(String id, String served, String param) {
      return new ApiError(404, "invalid_request_error", "The model '" + id + "' does not exist; this server serves '" + served + "'.", param,
          "model_not_found");
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
        if (!id.equals(model.id())) return done(request, error(ApiError.unknownModel(id, model.id(), null)));
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
          .thenCompose(strict -> complete(ChatRequest.parse(strict.getData().toArray(), model.id(), format, universe, context)))
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

  private HttpResponse internal(Throwable t) {
    // The log keeps the trace for the operator; the client gets the kind of failure only.
    system.log().error("k2 serve: internal error", t);
    return error(new ApiError(500, "server_error", "The server had an error while processing the request (" + t.getClass().getSimpleName() + ").",
        null, null));
  }

  private CompletionStage<HttpResponse> complete(ChatRequest chat) {
    String requestId = "http/" + ids.incrementAndGet();
    return AskPattern.<InferenceServer.Command, InferenceServer.Reply>ask(inference,
            replyTo -> new InferenceServer.Act(requestId, chat.prompt(), chat.history(), chat.seed(), chat.temperature(), chat.limits(), replyTo),
            settings.requestTimeout(), system.scheduler())
        .thenApply(reply -> ok(completion(chat, reply)));
  }

  private ObjectNode completion(ChatRequest chat, InferenceServer.Reply reply) {
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
