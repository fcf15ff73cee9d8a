package dev.k2pekko.launcher;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Option;

/** Options every command that opens the journal shares, and how they become the node's config. */
public final class NodeConfig {
  @Option(names = "--journal", description = "h2 (default for run/replay/export: ./data) or postgres (default for node)", paramLabel = "h2|postgres")
  String journal;

  @Option(names = "--jdbc-url", description = "JDBC URL of the journal (also K2_JDBC_URL); implies the database kind", paramLabel = "URL")
  String jdbcUrl;

  @Option(names = "--data-dir", description = "directory of the embedded H2 journal (default: data)", paramLabel = "DIR")
  String dataDir;

  @Option(names = "--tool-specs", description = "JSON file of extra tool specs (repeatable)", paramLabel = "FILE")
  List<String> toolSpecs = List.of();

  @Option(names = "--config", description = "HOCON file whose settings override the defaults", paramLabel = "FILE")
  String configFile;

  @Option(names = "--mcp", description = "an MCP tool server to attach, NAME=COMMAND [ARG ...] (repeatable; adds to k2.mcp.servers): "
      + "one process per tool node, its tools named NAME.tool (docs/TOOLS.md)", paramLabel = "NAME=COMMAND")
  List<String> mcp = List.of();

  String journalKind(String fallback) {
    if (journal != null) {
      if (!journal.equals("h2") && !journal.equals("postgres")) throw new UsageError("--journal must be h2 or postgres, got '" + journal + "'");
      return journal;
    }
    if (jdbcUrl != null) return jdbcUrl.startsWith("jdbc:postgresql:") ? "postgres" : "h2";
    return fallback;
  }

  /**
   * The full config: overrides, then --config, then the journal profile, then application.conf and references. A
   * --config file that does not parse, or sets a k2 setting to a value of the wrong type, is a {@link UsageError} here,
   * before anything boots; so is a tool-spec file over the limits.
   */
  Config build(String defaultJournal, Map<String, Object> overrides) {
    var kind = journalKind(defaultJournal);
    Config app = ConfigFactory.parseResources("application.conf");
    if (kind.equals("postgres")) app = ConfigFactory.parseResources("persistence-postgres.conf").withFallback(app);
    Config defaults = app;
    if (configFile != null) {
      var f = new java.io.File(configFile);
      if (!f.isFile()) throw new UsageError("--config: no such file " + configFile);
      try {
        app = ConfigFactory.parseFile(f, com.typesafe.config.ConfigParseOptions.defaults().setAllowMissing(false)).withFallback(app);
      } catch (com.typesafe.config.ConfigException e) {
        String m = e.getMessage();
        if (e.origin() != null && m.startsWith(e.origin().description() + ": ")) m = m.substring(e.origin().description().length() + 2);
        String line = e.origin() != null && e.origin().lineNumber() > 0 ? " line " + e.origin().lineNumber() : "";
        throw new UsageError("--config " + configFile + line + ": " + m);
      }
    }
    var o = new HashMap<String, Object>(overrides);
    o.put("pekko.loggers", List.of("org.apache.pekko.event.slf4j.Slf4jLogger"));
    o.put("pekko.logging-filter", "org.apache.pekko.event.slf4j.Slf4jLoggingFilter");
    // Pekko's remoting emits Flight Recorder events by default; a JRE without jdk.jfr (a k2 bundle's) fails on the first one
    if (ModuleLayer.boot().findModule("jdk.jfr").isEmpty()) o.put("pekko.java-flight-recorder.enabled", false);
    if (jdbcUrl != null) {
      if (kind.equals("h2") && !jdbcUrl.startsWith("jdbc:h2:")) throw new UsageError("--jdbc-url must be a jdbc:h2: or jdbc:postgresql: URL");
      o.put("pekko-persistence-jdbc.shared-databases.slick.db.url", jdbcUrl);
    }
    if (dataDir != null) {
      if (jdbcUrl != null || kind.equals("postgres")) throw new UsageError("--data-dir is for the embedded H2 journal only");
      o.put("k2.journal.dir", java.nio.file.Path.of(dataDir).toAbsolutePath().toString());
    }
    if (!toolSpecs.isEmpty()) o.put("k2.tools.spec-files", toolSpecs);
    Config config;
    try {
      config = withMcp(ConfigFactory.load(ConfigFactory.parseMap(o).withFallback(app)));
      SettingsCheck.against(config, ConfigFactory.load(defaults), configFile == null ? "a flag" : "--config " + configFile);
      SettingsCheck.ranges(config, configFile == null ? "a flag" : "--config " + configFile);
    } catch (com.typesafe.config.ConfigException e) {
      throw new UsageError((configFile == null ? "" : "--config " + configFile + ": ") + e.getMessage());
    }
    checkToolSpecs(config);
    var mcpNames = new java.util.HashSet<String>();
    for (var m : config.getStringList("k2.mcp.servers")) mcpNames.add(dev.k2pekko.tools.mcp.McpServer.Spec.parse(m).name());
    for (var key : new String[] {"k2.mcp.knowledge-graph", "k2.mcp.files"}) {
      String named = config.getString(key);
      if (!named.isEmpty() && !mcpNames.contains(named)) {
        throw new UsageError(key + " names " + named + ", which is not among the MCP servers " + new java.util.TreeSet<>(mcpNames));
      }
    }
    for (var serial : config.getStringList("k2.mcp.one-at-a-time")) {
      if (!mcpNames.contains(serial)) throw new UsageError("k2.mcp.one-at-a-time names " + serial + ", which is not among the MCP servers " + new java.util.TreeSet<>(mcpNames));
    }
    if (!config.getStringList("k2.mcp.servers").isEmpty() && !mcpClientPresent()) {
      throw new UsageError("MCP servers are configured, but this k2 (a bundle) leaves out the MCP client: a learner host runs no "
          + "tool servers; run the node that attaches them from a checkout");
    }
    return config;
  }

  private static boolean mcpClientPresent() {
    try {
      Class.forName("io.modelcontextprotocol.client.McpClient", false, NodeConfig.class.getClassLoader());
      return true;
    } catch (ClassNotFoundException e) {
      return false;
    }
  }

  /** The servers of {@code --mcp NAME=COMMAND} added to {@code k2.mcp.servers}. */
  private Config withMcp(Config config) {
    if (mcp.isEmpty()) return config;
    var servers = new java.util.ArrayList<>(config.getStringList("k2.mcp.servers"));
    for (var m : mcp) {
      try {
        dev.k2pekko.tools.mcp.McpServer.Spec.parse(m);
      } catch (IllegalArgumentException e) {
        throw new UsageError(e.getMessage());
      }
      servers.add(m);
    }
    return ConfigFactory.parseMap(Map.of("k2.mcp.servers", servers)).withFallback(config);
  }

  /** The tool-spec files, read and checked here against their limits, with a progress line for big ones. */
  private static void checkToolSpecs(Config config) {
    var limits = dev.k2pekko.tools.ToolSpecFiles.Limits.of(config.getConfig("k2.tools"));
    for (String f : config.getStringList("k2.tools.spec-files")) {
      dev.k2pekko.tools.ToolSpecFiles.check(java.nio.file.Path.of(f), limits, System.err::println);
    }
  }

  /** The journal opened read-only (replay, export, journal check): refuses a missing or damaged one, creates nothing. */
  Config buildReadOnly() {
    return dev.k2pekko.agents.JournalSchema.readOnly(build("h2", new HashMap<>()));
  }

  /** A wrong flag value: picocli prints it with the usage and exits 2. */
  static final class UsageError extends IllegalArgumentException {
    UsageError(String message) { super(message); }
  }
}
