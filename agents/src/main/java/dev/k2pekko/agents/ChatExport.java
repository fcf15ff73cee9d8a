package dev.k2pekko.agents;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.tools.ToolUniverse;

/**
 * A trajectory in the OpenAI chat format that training libraries read: {@code messages} (system, user, then per
 * tool call an assistant message with {@code tool_calls} and a {@code tool} message with its
 * {@code tool_call_id}, then the assistant's answer), the {@code tools} offered, and {@code metadata}.
 */
public final class ChatExport {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final ToolUniverse universe;

  public ChatExport(ToolUniverse universe) { this.universe = universe; }

  public ObjectNode toJson(Trajectory t, String tag) {
    var root = JSON.createObjectNode();
    var messages = root.putArray("messages");
    messages.addObject().put("role", "system").put("content", t.system());
    messages.addObject().put("role", "user").put("content", t.prompt());
    for (var s : t.steps()) {
      var call = messages.addObject().put("role", "assistant").putNull("content").putArray("tool_calls").addObject();
      call.put("id", s.callId()).put("type", "function");
      call.putObject("function").put("name", s.tool()).put("arguments", write(JSON.valueToTree(s.arguments())));
      var content = s.error() != null
          ? write(JSON.createObjectNode().put("error", s.error()).put("message", s.result()))
          : s.partial() ? write(JSON.createObjectNode().put("partial", true).put("content", s.result())) : s.result();
      messages.addObject().put("role", "tool").put("tool_call_id", s.callId()).put("content", content);
    }
    if (t.finalAnswer() != null) messages.addObject().put("role", "assistant").put("content", t.finalAnswer());
    var tools = root.putArray("tools");
    for (var name : t.tools()) {
      var spec = universe.get(name);
      if (spec != null) tools.add(spec.toOpenAi());
      else tools.addObject().put("type", "function").putObject("function").put("name", name);
    }
    var meta = root.putObject("metadata");
    meta.put("trajectory_id", t.trajectoryId()).put("task_id", t.taskId()).put("category", t.category())
        .put("difficulty", t.difficulty()).put("seed", t.seed()).put("policy", t.policy());
    if (tag != null) meta.put("tag", tag);
    var v = t.verdict();
    var verdict = meta.putObject("verdict");
    verdict.put("accepted", v.accepted()).put("verifiable_score", v.verifiableScore()).put("rubric_score", v.rubricScore());
    v.reasons().forEach(verdict.putArray("reasons")::add);
    return root;
  }

  public String toLine(Trajectory t, String tag) { return write(toJson(t, tag)); }

  private static String write(Object node) {
    try {
      return JSON.writeValueAsString(node);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Checks one exported line against the format: system and user first; every assistant message either has
   * one function tool call (arguments a JSON string) or text; every tool message answers an earlier call;
   * tools are functions; metadata has the task id, the seed and the verdict. Throws with what is wrong.
   */
  public static void validate(String line) {
    com.fasterxml.jackson.databind.JsonNode root;
    try {
      root = JSON.readTree(line);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("not JSON: " + e.getOriginalMessage());
    }
    var messages = root.path("messages");
    require(messages.size() >= 2 && "system".equals(messages.get(0).path("role").asText())
        && "user".equals(messages.get(1).path("role").asText()), "messages must start with system and user", line);
    var callIds = new java.util.HashSet<String>();
    for (int i = 2; i < messages.size(); i++) {
      var m = messages.get(i);
      switch (m.path("role").asText()) {
        case "assistant" -> {
          if (m.has("tool_calls")) {
            var call = m.path("tool_calls").path(0);
            require("function".equals(call.path("type").asText()), "tool call type must be function", line);
            var args = call.path("function").path("arguments");
            require(args.isTextual(), "function.arguments must be a JSON string", line);
            try {
              require(JSON.readTree(args.asText()).isObject(), "function.arguments must encode an object", line);
            } catch (JsonProcessingException e) {
              throw new IllegalArgumentException("function.arguments is not JSON: " + line);
            }
            require(call.path("function").path("name").isTextual(), "function.name missing", line);
            require(callIds.add(call.path("id").asText()), "tool call ids must be unique", line);
          } else {
            require(m.path("content").isTextual(), "assistant message without tool_calls needs content", line);
          }
        }
        case "tool" -> require(callIds.contains(m.path("tool_call_id").asText()), "tool message must answer an earlier call", line);
        default -> throw new IllegalArgumentException("unexpected role " + m.path("role") + ": " + line);
      }
    }
    for (var tool : root.path("tools")) require("function".equals(tool.path("type").asText()), "tools must be functions", line);
    var meta = root.path("metadata");
    for (var f : new String[] {"task_id", "seed", "verdict"}) require(meta.has(f), "metadata." + f + " missing", line);
    require(meta.path("verdict").has("accepted"), "metadata.verdict.accepted missing", line);
  }

  private static void require(boolean ok, String what, String line) {
    if (!ok) throw new IllegalArgumentException(what + ": " + (line.length() > 300 ? line.substring(0, 300) + "…" : line));
  }
}
