package dev.k2pekko.launcher;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.k2pekko.agents.ChatExport;
import dev.k2pekko.agents.TrajectoryReplay;
import dev.k2pekko.tools.ToolDirectory;
import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code k2 export}: trajectories as JSONL in the OpenAI chat format (docs/EXPORT.md). */
@Command(name = "export", mixinStandardHelpOptions = true,
    description = "Write persisted trajectories as JSON Lines in the OpenAI chat format (messages with tool_calls and "
        + "tool messages, the tools offered, and metadata with the verdict); docs/EXPORT.md says which trainers and "
        + "chat templates read which variant.")
final class ExportCommand implements Callable<Integer> {
  @Mixin NodeConfig node;
  @Mixin ReplayCommand.Filters filters;

  @Option(names = "--format", description = "jsonl (messages, tools, metadata; HF datasets, TRL, chat templates) or openai "
      + "(OpenAI fine-tuning: no metadata, tool names as ^[a-zA-Z0-9_-]{1,64}$, dots as __)", defaultValue = "jsonl")
  String format;

  @Option(names = "--tool-call-content", description = "content of assistant turns that call a tool: empty (\"\", default: "
      + "Qwen-family templates fail on null) or null (DeepSeek-V3's template renders tool calls only then)", defaultValue = "empty")
  String toolCallContent;

  @Option(names = "--out", required = true, description = "output file")
  Path out;

  @Option(names = "--json", description = "print the summary as one JSON object on the last line of stdout")
  boolean json;

  @Option(names = "--timeout", description = "give up after this many seconds (default ${DEFAULT-VALUE})", defaultValue = "600")
  int timeoutSeconds;

  @Override public Integer call() throws Exception {
    if (!format.equals("jsonl") && !format.equals("openai")) throw new NodeConfig.UsageError("--format must be jsonl or openai, got '" + format + "'");
    if (!toolCallContent.equals("empty") && !toolCallContent.equals("null")) {
      throw new NodeConfig.UsageError("--tool-call-content must be empty or null, got '" + toolCallContent + "'");
    }
    if (timeoutSeconds < 1) throw new NodeConfig.UsageError("--timeout must be at least 1 second");
    var tmp = OutputPaths.partFile(out);
    com.typesafe.config.Config config;
    try {
      config = node.buildReadOnly();
    } catch (RuntimeException e) {
      Files.deleteIfExists(tmp);
      throw e;
    }
    var system = Nodes.local(config, "k2-export");
    try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
      var tools = ToolDirectory.get(system);
      // the MCP tools' schemas come from the servers themselves (--mcp, k2.mcp.servers): their tools/list, as a run offers them
      tools.startMcpServers(system);
      McpStatus.print(system);
      var export = new ChatExport(tools.universe(), tools.mcpTools(),
          format.equals("openai") ? ChatExport.Format.OPENAI : ChatExport.Format.JSONL,
          toolCallContent.equals("null") ? ChatExport.ToolCallContent.NULL : ChatExport.ToolCallContent.EMPTY);
      long n = new TrajectoryReplay(system).forEach(filters.filter(), Duration.ofSeconds(timeoutSeconds), (tag, t) -> {
        try {
          w.write(export.toLine(t, tag));
          w.newLine();
        } catch (java.io.IOException ex) {
          throw new java.io.UncheckedIOException(ex);
        }
      });
      w.close();
      Files.move(tmp, out, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      var nameOnly = export.nameOnly();
      if (!nameOnly.isEmpty()) {
        System.err.println("k2: warning: " + nameOnly.size() + " offered tools exported by name only (an empty parameters schema): "
            + (nameOnly.size() > 8 ? nameOnly.subList(0, 8) + "…" : nameOnly) + " are neither generated tools nor --tool-specs "
            + "nor listed by an MCP server attached here; run k2 export with the run's --mcp and --tool-specs for their schemas "
            + "(docs/EXPORT.md)");
      }
      if (json) {
        var summary = new ObjectMapper().createObjectNode().put("count", n).put("out", out.toString());
        nameOnly.forEach(summary.putArray("name_only_tools")::add);
        System.out.println(summary);
      } else {
        System.out.println("k2: wrote " + n + " trajectories to " + out);
      }
      return 0;
    } finally {
      Files.deleteIfExists(tmp);
      Nodes.stop(system);
    }
  }
}
