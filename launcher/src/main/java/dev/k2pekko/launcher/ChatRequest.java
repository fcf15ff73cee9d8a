package dev.k2pekko.launcher;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.k2pekko.agents.policy.LearnedPolicy;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.launcher.ChatServer.ApiError;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.tools.ToolUniverse;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A chat-completions request read and checked: what the policy is asked (the task, the tool calls so far with their
 * results, what it may write), the names the client gave the tools (the answer uses them), and the sampling settings.
 * Everything a client can get wrong is found here, before the inference server is asked, and is an {@link ApiError}
 * that names the parameter.
 */
record ChatRequest(String prompt, List<Step> history, LearnedPolicy.Limits limits, Map<String, String> clientNames, double temperature,
                   long seed, int maxTokens, boolean logprobs) {
  private static final com.fasterxml.jackson.databind.ObjectMapper JSON = ChatServer.JSON;

  /**
   * {@code body} read as a request to model {@code modelId}, whose policy writes in {@code format} over the tools of
   * {@code universe} with a context of {@code context} tokens.
   */
  static ChatRequest parse(byte[] body, String modelId, PolicyFormat format, ToolUniverse universe, int context) {
    return new Reader(modelId, format, universe, context).parse(body);
  }

  private record Conversation(String prompt, List<Step> history) {}

  /** What reading a request needs to know of the server. */
  private record Reader(String modelId, PolicyFormat format, ToolUniverse universe, int context) {
    ChatRequest parse(byte[] body) {
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
      if (!m.asText().equals(modelId)) throw ApiError.unknownModel(m.asText(), modelId, "model");
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
      return new ChatRequest(conversation.prompt(), conversation.history(), limits, clientNames, temperature, seed, maxTokens, logprobs);
    }

    private String coreTools() {
      return String.join(", ", universe.all().stream().map(tool -> tool.name()).filter(format::knows).sorted().toList());
    }

    /**
     * A client's tool name as the universe names it: itself when the universe or the policy knows it, else with
     * {@code __} read as a dot (an MCP task tool of a kg policy, {@code mem.create_entities}, is the policy's whether
     * or not this process attached its server).
     */
    private String universeName(String client) {
      if (universe.get(client) != null || format.knows(client)) return client;
      String dotted = client.replace("__", ".");
      return universe.get(dotted) != null || format.knows(dotted) ? dotted : client;
    }

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
}
