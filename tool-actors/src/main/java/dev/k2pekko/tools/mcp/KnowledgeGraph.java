package dev.k2pekko.tools.mcp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.k2pekko.protocol.ToolCall;
import dev.k2pekko.protocol.ToolResult;
import dev.k2pekko.protocol.WorldSnapshot;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Episodes on the knowledge-graph server ({@code @modelcontextprotocol/server-memory}, named by
 * {@code k2.mcp.knowledge-graph}). The server keeps one graph per process; episodes share it, so the tool worker
 * keeps them apart by name: every entity name an episode sends is suffixed with its episode's key on the way in
 * ({@code Ada} is {@code Ada~3f09c2a1b7e4} on the server) and the key is removed from what comes back, so the agent
 * sees its own names only and two episodes that both create {@code Ada} never meet. At the episode's end its
 * entities are read back from the server ({@code open_nodes}) as the judge's end state, then deleted.
 */
public final class KnowledgeGraph {
  private static final ObjectMapper JSON = new ObjectMapper();

  private KnowledgeGraph() {}

  /** The suffix of an episode's entity names on the server: 48 bits of a 64-bit FNV-1a hash of its id. */
  public static String suffix(String episodeId) {
    long h = 0xcbf29ce484222325L;
    for (int i = 0; i < episodeId.length(); i++) {
      h ^= episodeId.charAt(i);
      h *= 0x100000001b3L;
    }
    return "~" + String.format("%012x", h >>> 16);
  }

  /**
   * The arguments with every entity name suffixed (the fields of the memory server's tools that name entities:
   * {@code entities[].name}, {@code relations[].from/to}, {@code observations[].entityName},
   * {@code deletions[].entityName}, {@code entityNames[]}, {@code names[]}); each name used is added to {@code names}
   * as the server has it. Anything else passes unchanged (the server's schema check answers malformed calls).
   */
  public static Map<String, Object> namespaced(Map<String, Object> args, String suffix, Collection<String> names) {
    var out = new LinkedHashMap<String, Object>(args);
    for (var e : args.entrySet()) {
      switch (e.getKey()) {
        case "entities" -> out.put(e.getKey(), eachObject(e.getValue(), List.of("name"), suffix, names));
        case "relations" -> out.put(e.getKey(), eachObject(e.getValue(), List.of("from", "to"), suffix, names));
        case "observations", "deletions" -> out.put(e.getKey(), eachObject(e.getValue(), List.of("entityName"), suffix, names));
        case "entityNames", "names" -> {
          if (e.getValue() instanceof List<?> l) {
            var renamed = new ArrayList<Object>(l.size());
            for (var x : l) renamed.add(x instanceof String s ? named(s, suffix, names) : x);
            out.put(e.getKey(), renamed);
          }
        }
        default -> {}
      }
    }
    return out;
  }

  private static Object eachObject(Object value, List<String> fields, String suffix, Collection<String> names) {
    if (!(value instanceof List<?> l)) return value;
    var out = new ArrayList<Object>(l.size());
    for (var x : l) {
      if (x instanceof Map<?, ?> m) {
        var copy = new LinkedHashMap<Object, Object>(m);
        for (var f : fields) if (m.get(f) instanceof String s) copy.put(f, named(s, suffix, names));
        out.add(copy);
      } else {
        out.add(x);
      }
    }
    return out;
  }

  private static String named(String name, String suffix, Collection<String> names) {
    String n = name + suffix;
    names.add(n);
    return n;
  }

  /** What the server answered, as the agent sees it: without the episode's suffix. */
  public static String strip(String text, String suffix) {
    return text == null ? null : text.replace(suffix, "");
  }

  /**
   * The end state in an {@code open_nodes} answer (suffix already stripped): {@code kg:entity:NAME} ->
   * {@code TYPE|obs; obs} (observations in the server's order) and {@code kg:relation:FROM|TYPE|TO} -> {@code present}.
   */
  public static Map<String, String> endState(String graphJson) {
    var out = new TreeMap<String, String>();
    JsonNode root;
    try {
      root = JSON.readTree(graphJson);
    } catch (java.io.IOException e) {
      out.put("kg:unreadable", graphJson.length() > 200 ? graphJson.substring(0, 200) : graphJson);
      return out;
    }
    for (var e : root.path("entities")) {
      var obs = new ArrayList<String>();
      for (var o : e.path("observations")) obs.add(o.asText());
      out.put("kg:entity:" + e.path("name").asText(), e.path("entityType").asText() + "|" + String.join("; ", obs));
    }
    for (var r : root.path("relations")) {
      out.put("kg:relation:" + r.path("from").asText() + "|" + r.path("relationType").asText() + "|" + r.path("to").asText(), "present");
    }
    return out;
  }

  /**
   * One episode's end: asks the server for the episode's entities ({@code open_nodes}), answers {@code replyTo} with
   * {@code world} plus that graph, has the entities deleted, and stops. An actor of its own so that the tool worker
   * goes on with other episodes meanwhile; the link's call timeout bounds the wait.
   */
  public static Behavior<ToolResult> readBack(McpServer.Link link, String server, String episodeId, List<String> serverNames, String suffix,
                                              Map<String, String> world, ActorRef<WorldSnapshot> replyTo) {
    return Behaviors.setup(ctx -> {
      link.send(new McpServer.Call(new ToolCall(episodeId, "kg-read-back", server + ".open_nodes", Map.of(), ctx.getSelf()), "open_nodes",
          Map.of("names", serverNames), text -> strip(text, suffix)));
      return Behaviors.receiveMessage(r -> {
        var state = new HashMap<>(world);
        if (r.ok()) state.putAll(endState(r.content()));
        else state.put("kg:unreadable", "the knowledge graph could not be read back: " + r.content());
        replyTo.tell(new WorldSnapshot(episodeId, state));
        link.send(new McpServer.Call(new ToolCall(episodeId, "kg-delete", server + ".delete_entities", Map.of(), ctx.getSystem().ignoreRef()),
            "delete_entities", Map.of("entityNames", serverNames)));
        return Behaviors.stopped();
      });
    });
  }
}
