package dev.k2pekko.tools.mcp;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * The node's MCP tools: {@code SERVER.tool} to the tool and the actor of the server process that runs it. Servers
 * put their tools here when they come up (and again after a restart); tool workers look calls up here when the tool
 * is not one of the generated universe. Thread-safe.
 */
public final class McpTools {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** One tool of a server: its k2 name ({@code SERVER.tool}), the server's own name for it, and its input schema. */
  public record Tool(String name, String server, String serverTool, String description, Map<String, Object> inputSchema) {
    /** {"type":"function","function":{"name","description","parameters": the server's input schema}}. */
    public ObjectNode toOpenAi() {
      var root = JSON.createObjectNode();
      root.put("type", "function");
      var fn = root.putObject("function");
      fn.put("name", name);
      fn.put("description", description == null ? "" : description);
      fn.set("parameters", JSON.valueToTree(inputSchema));
      return root;
    }
  }

  record Entry(Tool tool, ActorRef<McpServer.Command> server, McpServer.Link link) {}

  private final ConcurrentHashMap<String, Entry> byName = new ConcurrentHashMap<>();

  void register(List<Tool> tools, ActorRef<McpServer.Command> server, McpServer.Link link) {
    for (var t : tools) byName.put(t.name(), new Entry(t, server, link));
  }

  /** The thread-safe link to the server process that runs this tool, or null. */
  public McpServer.Link link(String name) {
    var e = byName.get(name);
    return e == null ? null : e.link();
  }

  /** The actor of the server process that runs this tool, or null. */
  public ActorRef<McpServer.Command> server(String name) {
    var e = byName.get(name);
    return e == null ? null : e.server();
  }

  public Tool tool(String name) {
    var e = byName.get(name);
    return e == null ? null : e.tool();
  }

  /** Every registered tool, sorted by name. */
  public List<Tool> all() {
    return byName.values().stream().map(Entry::tool).sorted(java.util.Comparator.comparing(Tool::name)).toList();
  }

  public boolean isEmpty() { return byName.isEmpty(); }
}
