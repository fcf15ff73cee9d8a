package dev.k2pekko.launcher;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.agents.RunTracker;
import java.io.PrintStream;
import java.util.Map;
import java.util.TreeMap;

/** The run's progress bar (stderr) and its summary: a table, or one JSON object on the last line of stdout. */
final class Report {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final PrintStream err;
  private final boolean tty;
  private long lastLine;

  Report(PrintStream err) {
    this.err = err;
    this.tty = System.console() != null;
  }

  void progress(RunTracker.Summary s) {
    long now = System.nanoTime();
    if (!tty && now - lastLine < 2_000_000_000L && !s.complete()) return;
    lastLine = now;
    long done = s.get("episodes");
    int width = 30;
    int filled = (int) Math.min(width, s.expectedEpisodes() == 0 ? width : done * width / s.expectedEpisodes());
    double secs = Math.max(1e-9, s.elapsed().toNanos() / 1e9);
    var line = String.format("[%s%s] %,d/%,d episodes | %,d tool calls | %,d accepted | %,d persisted | %,.0f calls/s",
        "#".repeat(filled), ".".repeat(width - filled), done, s.expectedEpisodes(), s.get("tool_calls"), s.get("accepted"),
        s.get("persisted"), s.get("tool_calls") / secs);
    if (tty) err.print("\r" + line + (s.complete() ? "\n" : ""));
    else err.println(line);
    err.flush();
  }

  static ObjectNode json(RunTracker.Summary s, int agents) {
    double secs = s.elapsed().toNanos() / 1e9;
    var o = JSON.createObjectNode();
    o.put("run_id", s.runId()).put("complete", s.complete()).put("agents", agents).put("episodes", s.get("episodes"))
        .put("expected_episodes", s.expectedEpisodes()).put("tool_calls", s.get("tool_calls")).put("tool_errors", s.get("tool_errors"))
        .put("accepted", s.get("accepted")).put("rejected", s.get("rejected")).put("persisted", s.get("persisted"))
        .put("elapsed_s", round(secs)).put("episodes_per_s", round(s.get("episodes") / secs))
        .put("tool_calls_per_s", round(s.get("tool_calls") / secs))
        .put("fingerprint", String.format("%016x", s.get("fingerprint"))).put("reassigned", s.get("reassigned"));
    var b = Breakdown.of(s.counters());
    var reasons = o.putObject("rejection_reasons");
    b.reasons().forEach(reasons::put);
    var byDifficulty = o.putObject("by_difficulty");
    b.difficulty().forEach((d, v) -> byDifficulty.putObject(Integer.toString(d)).put("accepted", v[1]).put("episodes", v[0]));
    var byCategory = o.putObject("by_category");
    b.category().forEach((c2, v) -> byCategory.putObject(c2).put("accepted", v[1]).put("episodes", v[0]));
    var byNode = o.putObject("episodes_by_node");
    b.nodes().forEach(byNode::put);
    var refused = o.putObject("firewall_refusals");
    b.refused().forEach(refused::put);
    return o;
  }

  static void table(RunTracker.Summary s, int agents, String journal, PrintStream out) {
    double secs = s.elapsed().toNanos() / 1e9;
    long episodes = s.get("episodes");
    out.println();
    out.printf("k2 run %s: %s%n", s.runId(), s.complete() ? "complete" : "INCOMPLETE (timed out: " + episodes + " of " + s.expectedEpisodes() + " episodes judged)");
    out.printf("  %-22s %,12d%n", "agents", agents);
    out.printf("  %-22s %,12d%n", "episodes", episodes);
    out.printf("  %-22s %,12d   (%,d returned an error)%n", "tool calls", s.get("tool_calls"), s.get("tool_errors"));
    var refusedByReason = Breakdown.of(s.counters()).refused();
    long refusedCalls = refusedByReason.values().stream().mapToLong(Long::longValue).sum();
    out.printf("  %-22s %,12d   %s%n", "firewall refusals", refusedCalls, refusedCalls == 0 ? "" : refusedByReason.entrySet().stream()
        .map(e -> String.format("%s %,d", e.getKey(), e.getValue())).collect(java.util.stream.Collectors.joining(", ", "(", ")")));
    out.printf("  %-22s %,12d   (%s)%n", "accepted", s.get("accepted"), pct(s.get("accepted"), episodes));
    out.printf("  %-22s %,12d   (%s)%n", "rejected", s.get("rejected"), pct(s.get("rejected"), episodes));
    out.printf("  %-22s %,12d   (journal: %s)%n", "persisted", s.get("persisted"), journal);
    out.printf("  %-18s %16s   (of every judged trajectory: the same seed and flags give the same)%n", "fingerprint",
        String.format("%016x", s.get("fingerprint")));
    if (s.get("reassigned") > 0) {
      out.printf("  %-22s %,12d   (agents whose episodes not done were given again: their node left or died)%n", "reassigned", s.get("reassigned"));
    }
    out.printf("  %-22s %,12.0f episodes/s   %,.0f tool calls/s   over %.2f s%n", "throughput", episodes / secs, s.get("tool_calls") / secs, secs);
    var b = Breakdown.of(s.counters());
    var reasons = b.reasons();
    var difficulty = b.difficulty();
    var category = b.category();
    var nodes = b.nodes();
    if (!reasons.isEmpty()) {
      out.println("\n  main rejection reasons (an episode can have several)");
      reasons.entrySet().stream().sorted(Map.Entry.<String, Long>comparingByValue().reversed())
          .forEach(e -> out.printf("    %-20s %,10d   %s of rejected%n", e.getKey(), e.getValue(), pct(e.getValue(), s.get("rejected"))));
    }
    out.println("\n  success by difficulty (tool steps)");
    difficulty.forEach((d, v) -> out.printf("    %-20s %,10d / %,-10d %s%n", d + (d == 1 ? " step" : " steps"), v[1], v[0], pct(v[1], v[0])));
    out.println("\n  success by tool category");
    category.forEach((c, v) -> out.printf("    %-20s %,10d / %,-10d %s%n", c, v[1], v[0], pct(v[1], v[0])));
    if (nodes.size() > 1) {
      out.println("\n  episodes by node");
      nodes.forEach((n, v) -> out.printf("    %-30s %,10d%n", n, v));
    }
  }

  /**
   * The run's counters by kind (keys as {@link dev.k2pekko.agents.RunStats} names them): rejection reasons,
   * {episodes, accepted} per difficulty and per category, episodes per node, firewall refusals by reason.
   */
  record Breakdown(TreeMap<String, Long> reasons, TreeMap<Integer, long[]> difficulty, TreeMap<String, long[]> category,
                   TreeMap<String, Long> nodes, TreeMap<String, Long> refused) {
    static Breakdown of(Map<String, Long> counters) {
      var b = new Breakdown(new TreeMap<>(), new TreeMap<>(), new TreeMap<>(), new TreeMap<>(), new TreeMap<>());
      for (var e : counters.entrySet()) {
        var k = e.getKey();
        var p = k.split("/");
        if (p.length == 3 && !p[2].equals("episodes") && !p[2].equals("accepted")) continue; // category/<c>/persisted: not a column here
        int slot = p.length == 3 && p[2].equals("accepted") ? 1 : 0;
        switch (p[0]) {
          case "reason" -> b.reasons().put(p[1], e.getValue());
          case "node" -> b.nodes().put(k.substring(5), e.getValue());
          case "refused" -> b.refused().put(p[1], e.getValue());
          case "difficulty" -> b.difficulty().computeIfAbsent(Integer.parseInt(p[1]), x -> new long[2])[slot] = e.getValue();
          case "category" -> b.category().computeIfAbsent(p[1], x -> new long[2])[slot] = e.getValue();
          default -> { }
        }
      }
      return b;
    }
  }

  private static String pct(long a, long b) { return b == 0 ? "-" : String.format("%.1f%%", 100.0 * a / b); }

  private static double round(double v) { return Math.round(v * 100) / 100.0; }
}
