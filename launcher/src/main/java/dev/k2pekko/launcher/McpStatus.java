package dev.k2pekko.launcher;

import dev.k2pekko.tools.ToolDirectory;
import java.time.Duration;
import org.apache.pekko.actor.typed.ActorSystem;

/** Says on stderr which MCP servers of this node came up with which tools, and which did not (and why). */
final class McpStatus {
  private McpStatus() {}

  static void print(ActorSystem<?> system) {
    var dir = ToolDirectory.get(system);
    var timeout = system.settings().config().getDuration("k2.mcp.start-timeout").plusSeconds(5);
    for (var t : dir.awaitMcpServers(system, timeout)) {
      if (t.error() != null) {
        System.err.println("k2: " + t.error() + "; restarted in the background, its calls get structured errors meanwhile");
      } else {
        var names = t.tools().stream().map(x -> x.name()).toList();
        System.err.println("k2: MCP server " + t.server() + " is up: " + names.size() + " tools "
            + (names.size() > 6 ? names.subList(0, 6) + "…" : names));
      }
    }
  }
}
