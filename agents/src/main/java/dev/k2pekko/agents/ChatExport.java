package dev.k2pekko.agents;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.tools.ToolUniverse;
import dev.k2pekko.tools.mcp.McpTools;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A trajectory in the OpenAI chat format that training libraries read: {@code messages} (system, user, then per
 * tool call an assistant message with {@code tool_calls} and a {@code tool} message with its
 * {@code tool_call_id}, then the assistant's answer), the {@code tools} offered, and {@code metadata}.
 *
 * <p>An assistant turn with {@code tool_calls} carries {@code "content": ""} by default: the chat templates of the
 * Qwen family fail on a null content ({@code '</think>' in message.content}, {@code + content}), while an empty
 * string is what HF {@code datasets} and the OpenAI format take as well. DeepSeek-V3's template renders tool calls
 * only when content is null, so {@link ToolCallContent#NULL} exists for it. {@link Format#OPENAI} is OpenAI's
 * fine-tuning format: no {@code metadata}, and tool names mapped to {@code ^[a-zA-Z0-9_-]{1,64}$}. docs/EXPORT.md
 * says which template takes which, and how it is tested.
 */
public final class ChatExport {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** {@code JSONL}: messages, tools, metadata. {@code OPENAI}: what OpenAI's fine-tuning accepts, nothing more. */
  public enum Format { JSONL, OPENAI }

  /** The content of an assistant turn that only calls a tool. */
  public enum ToolCallContent { EMPTY, NULL }

  private final ToolUniverse universe;
  private final McpTools mcpTools;
  private final Format format;
  private final ToolCallContent toolCallContent;
  private final Set<String> nameOnly = ConcurrentHashMap.newKeySet();

  public ChatExport(ToolUniverse universe) { this(universe, Format.JSONL, ToolCallContent.EMPTY); }

  public ChatExport(ToolUniverse universe, Format format, ToolCallContent toolCallContent) {
    this(universe, new McpTools(), format, toolCallContent);
  }

  /**
   * {@code mcpTools}: the tools of the MCP servers attached where the export runs, whose input schemas (as the
   * servers' {@code tools/list} gives them) become the {@code parameters} of their tools; a tool neither in the
   * universe nor there is written by name only and counted in {@link #nameOnly()}.
   */
  public ChatExport(ToolUniverse universe, McpTools mcpTools, Format format, ToolCallContent toolCallContent) {
    this.universe = universe;
    this.mcpTools = mcpTools;
    this.format = format;
    this.toolCallContent = toolCallContent;
  }

  /**
   * The offered tools exported so far by name only (an empty object schema): neither a tool of the universe nor one of
   * an attached MCP server, e.g. an MCP tool of a journal exported without its server. Sorted.
   */
  public java.util.List<String> nameOnly() { return nameOnly.stream().sorted().toList(); }

  /**
   * A tool name as OpenAI's API takes it ({@code ^[a-zA-Z0-9_-]{1,64}$}): dots become {@code __} (the universe's names
   * use single underscores only, so the mapping is reversible), anything else outside the set {@code _}; a name
   * still longer than 64 characters keeps 55 and a hash.
   */
  public static String openAiName(String name) {
    var b = new StringBuilder(name.length() + 8);
    for (int i = 0; i < name.length(); i++) {
      char c = name.charAt(i);
      if (c == '.') b.append("__");
      else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-') b.append(c);
      else b.append('_');
    }
    if (b.isEmpty()) return "_";
    if (b.length() > 64) return b.substring(0, 55) + "_" + String.format("%08x", name.hashCode());
    return b.toString();
  }

  private String name(String tool) { return format == Format.OPENAI ? openAiName(tool) : tool; }

  public ObjectNode toJson(Trajectory t, String tag) {
    var root = JSON.createObjectNode();
    var messages = root.putArray("messages");
    messages.addObject().put("role", "system").put("content", t.system());
    messages.addObject().put("role", "user").put("content", t.prompt());
    for (var s : t.steps()) {
      var turn = messages.addObject().put("role", "assistant");
      if (toolCallContent == ToolCallContent.NULL) turn.putNull("content");
      else turn.put("content", "");
      var call = turn.putArray("tool_calls").addObject();
      call.put("id", s.callId()).put("type", "function");
      call.putObject("function").put("name", name(s.tool())).put("arguments", write(JSON.valueToTree(s.arguments())));
      var content = s.error() != null
          ? write(JSON.createObjectNode().put("error", s.error()).put("message", s.result()))
          : s.partial() ? write(JSON.createObjectNode().put("partial", true).put("content", s.result())) : s.result();
      messages.addObject().put("role", "tool").put("tool_call_id", s.callId()).put("content", content == null ? "" : content);
    }
    if (t.finalAnswer() != null) messages.addObject().put("role", "assistant").put("content", t.finalAnswer());
    var tools = root.putArray("tools");
    for (var name : t.tools()) {
      var spec = universe.get(name);
      var mcp = spec == null ? mcpTools.tool(name) : null;
      ObjectNode fn;
      if (spec != null) fn = spec.toOpenAi();
      else if (mcp != null) {
        fn = mcp.toOpenAi();
        // OpenAI's format gets the schema without its "$schema" declaration (no constraint, only which draft it is)
        if (format == Format.OPENAI && fn.get("function").get("parameters") instanceof ObjectNode p) p.remove("$schema");
      }
      else {
        // no schema known here: still a valid function entry, so that the line loads; the caller warns
        nameOnly.add(name);
        fn = JSON.createObjectNode().put("type", "function");
        fn.putObject("function").put("name", name).put("description", "").putObject("parameters").put("type", "object");
      }
      ((ObjectNode) fn.get("function")).put("name", name(name));
      tools.add(fn);
    }
    if (format == Format.OPENAI) {
      root.put("parallel_tool_calls", false);
      return root;
    }
    var meta = root.putObject("metadata");
    meta.put("trajectory_id", t.trajectoryId()).put("task_id", t.taskId()).put("category", t.category())
        .put("difficulty", t.difficulty()).put("seed", t.seed()).put("policy", t.policy());
    if (tag != null) meta.put("tag", tag);
    if (t.served() != null) {
      // a served LLM's own numbers, per assistant turn that acted: log-probabilities where its server gave them (else null)
      var served = meta.putObject("served").put("model", t.served().model());
      var lps = served.putArray("logprobs");
      for (double lp : t.served().logProbs()) {
        if (Double.isFinite(lp)) lps.add(lp); else lps.addNull();
      }
      var tokens = served.putArray("completion_tokens");
      for (int n : t.served().tokens()) tokens.add(n);
    }
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
   * one function tool call (arguments a JSON string, content "" or null) or text; every tool message answers an
   * earlier call with text; tools are functions; in the JSONL format metadata has the task id, the seed and the
   * verdict, in the OpenAI format there is nothing but messages, tools and parallel_tool_calls, and every name fits
   * OpenAI's pattern. Throws with what is wrong.
   */
  public static void validate(String line) {
    com.fasterxml.jackson.databind.JsonNode root;
    try {
      root = JSON.readTree(line);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("not JSON: " + e.getOriginalMessage());
    }
    boolean openAi = !root.has("metadata");
    var messages = root.path("messages");
    require(messages.size() >= 2 && "system".equals(messages.get(0).path("role").asText())
        && "user".equals(messages.get(1).path("role").asText()), "messages must start with system and user", line);
    var callIds = new java.util.HashSet<String>();
    for (int i = 2; i < messages.size(); i++) {
      var m = messages.get(i);
      switch (m.path("role").asText()) {
        case "assistant" -> {
          if (m.has("tool_calls")) {
            require(m.has("content") && (m.get("content").isNull() || m.get("content").asText().isEmpty()),
                "an assistant tool-call turn needs content \"\" or null", line);
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
            if (openAi) require(OPENAI_NAME.matcher(call.path("function").path("name").asText()).matches(), "function.name must match " + OPENAI_NAME, line);
            require(callIds.add(call.path("id").asText()), "tool call ids must be unique", line);
          } else {
            require(m.path("content").isTextual(), "assistant message without tool_calls needs content", line);
          }
        }
        case "tool" -> {
          require(callIds.contains(m.path("tool_call_id").asText()), "tool message must answer an earlier call", line);
          require(m.path("content").isTextual(), "tool message content must be text", line);
        }
        default -> throw new IllegalArgumentException("unexpected role " + m.path("role") + ": " + line);
      }
    }
    for (var tool : root.path("tools")) {
      require("function".equals(tool.path("type").asText()), "tools must be functions", line);
      if (openAi) require(OPENAI_NAME.matcher(tool.path("function").path("name").asText()).matches(), "tool name must match " + OPENAI_NAME, line);
    }
    if (openAi) {
      var keys = new java.util.TreeSet<String>();
      root.fieldNames().forEachRemaining(keys::add);
      require(java.util.Set.of("messages", "tools", "parallel_tool_calls").containsAll(keys), "OpenAI fine-tuning lines hold only messages, tools, parallel_tool_calls", line);
      return;
    }
    var meta = root.path("metadata");
    for (var f : new String[] {"task_id", "seed", "verdict"}) require(meta.has(f), "metadata." + f + " missing", line);
    require(meta.path("verdict").has("accepted"), "metadata.verdict.accepted missing", line);
  }

  private static final java.util.regex.Pattern OPENAI_NAME = java.util.regex.Pattern.compile("^[a-zA-Z0-9_-]{1,64}$");

  private static void require(boolean ok, String what, String line) {
    if (!ok) throw new IllegalArgumentException(what + ": " + (line.length() > 300 ? line.substring(0, 300) + "…" : line));
  }
}
