package dev.k2pekko.agents.inference;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.k2pekko.agents.inference.OpenAiPolicy.Failed;
import dev.k2pekko.agents.inference.OpenAiPolicy.Failure;
import dev.k2pekko.agents.inference.OpenAiPolicy.Ok;
import dev.k2pekko.agents.policy.Action;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An OpenAI-compatible chat-completions response read as {@link OpenAiPolicy}'s outcome: a tool call or an answer with
 * the sampled tokens' log-probabilities, or a failure that says whether a retry may help. No state; called on the
 * HTTP client's thread.
 */
final class OpenAiResponse {
  private OpenAiResponse() {}

  // Integers of tool arguments as Long, as every other path into the tool workers gives them.
  private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.USE_LONG_FOR_INTS);

  /**
   * {@code response} read as the next action: the first tool call (its name one of {@code names}, those the request
   * gave the tools), or the content as the answer.
   */
  static OpenAiPolicy.Outcome read(HttpResponse<byte[]> response, Map<String, String> names, java.net.URI endpoint) {
    int status = response.statusCode();
    if (status != 200) {
      boolean retryable = status == 408 || status == 429 || status >= 500;
      return new Failed(Failure.HTTP_STATUS, "HTTP " + status + " from " + endpoint + errorMessage(response.body()), retryable,
          retryAfter(response));
    }
    JsonNode root;
    try {
      root = JSON.readTree(response.body());
    } catch (IOException e) {
      return badResponse("the body is not JSON (" + firstLine(e.getMessage()) + "): " + excerpt(response.body()));
    }
    if (root == null || !root.isObject()) return badResponse("the body is not a JSON object: " + excerpt(response.body()));
    var choice = root.path("choices").path(0);
    var message = choice.path("message");
    if (!message.isObject()) return badResponse("no choices[0].message in " + excerpt(response.body()));
    double logProb = Double.NaN;
    int tokens = root.path("usage").path("completion_tokens").asInt(0);
    var lp = choice.path("logprobs").path("content");
    if (lp.isArray() && !lp.isEmpty()) {
      logProb = 0;
      for (var t : lp) {
        if (!t.path("logprob").isNumber()) return badResponse("choices[0].logprobs.content holds an entry without a numeric logprob");
        logProb += t.path("logprob").asDouble();
      }
      if (tokens == 0) tokens = lp.size();
    }
    var calls = message.get("tool_calls");
    if (calls != null && calls.isArray() && !calls.isEmpty()) {
      var fn = calls.get(0).path("function");
      if (!fn.path("name").isTextual()) return badResponse("tool_calls[0].function.name is missing");
      String sent = fn.path("name").asText();
      String tool = names.get(sent);
      if (tool == null) {
        return new Failed(Failure.UNKNOWN_TOOL, "the model called " + sent + ", which is not among the tools offered "
            + names.keySet().stream().filter(n -> !n.contains(".")).sorted().toList(), false, null);
      }
      var args = fn.get("arguments");
      Map<String, Object> arguments;
      try {
        JsonNode parsed = args == null || args.isNull() ? JSON.createObjectNode()
            : args.isTextual() ? (args.asText().isBlank() ? JSON.createObjectNode() : JSON.readTree(args.asText())) : args;
        if (parsed == null || !parsed.isObject()) {
          return new Failed(Failure.BAD_ARGUMENTS, "the arguments of " + sent + " are not a JSON object: " + excerpt(String.valueOf(args)), false, null);
        }
        arguments = JSON.convertValue(parsed, JSON.getTypeFactory().constructMapType(LinkedHashMap.class, String.class, Object.class));
      } catch (IOException e) {
        return new Failed(Failure.BAD_ARGUMENTS, "the arguments of " + sent + " are not JSON: " + excerpt(args.asText()), false, null);
      }
      return new Ok(new Action.Call(tool, arguments), logProb, tokens);
    }
    var content = message.get("content");
    if (content != null && !content.isNull() && !content.isTextual()) return badResponse("choices[0].message.content is neither text nor null");
    return new Ok(new Action.Answer(content == null || content.isNull() ? "" : content.asText()), logProb, tokens);
  }

  private static Failed badResponse(String message) {
    return new Failed(Failure.BAD_RESPONSE, message, false, null);
  }

  private static Duration retryAfter(HttpResponse<?> response) {
    var h = response.headers().firstValue("Retry-After");
    if (h.isEmpty()) return null;
    try {
      return Duration.ofMillis((long) (Double.parseDouble(h.get().trim()) * 1000));
    } catch (NumberFormatException e) {
      return null; // an HTTP date: the backoff applies
    }
  }

  /** The server's error message ({@code {"error": {"message": ...}}} or a plain body), for the failure's text. */
  private static String errorMessage(byte[] body) {
    if (body == null || body.length == 0) return "";
    try {
      var node = JSON.readTree(body);
      var m = node == null ? null : node.path("error").path("message");
      if (m != null && m.isTextual()) return ": " + excerpt(m.asText());
      if (node != null && node.path("error").isTextual()) return ": " + excerpt(node.path("error").asText());
    } catch (IOException e) {
      // not JSON: the text itself
    }
    return ": " + excerpt(body);
  }

  private static String excerpt(byte[] body) {
    return excerpt(new String(body, 0, Math.min(body.length, 400), java.nio.charset.StandardCharsets.UTF_8));
  }

  private static String excerpt(String s) {
    s = s.replaceAll("\\s+", " ").trim();
    return s.length() > 200 ? s.substring(0, 200) + "…" : s;
  }

  private static String firstLine(String s) {
    if (s == null) return "unreadable";
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}
