package dev.k2pekko.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.RunDriver;
import dev.k2pekko.agents.RunTracker;
import dev.k2pekko.tools.Firewall;
import dev.k2pekko.tools.ToolDirectory;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;

/**
 * {@code k2 bench sim}: simulation throughput with the teacher policy and persistence off: a warm-up run, then the
 * measured run, with the tool workers' firewall on or off, or both alternately (off/on pairs in one JVM, so drift of
 * the machine hits both sides alike). Around the measured runs, in the same JVM, the {@link RequestReplyCeiling}
 * (as many senders as agents, as many responders as tool workers) is measured three times before and three times
 * after; tool calls/s is printed over the best of those six, the plain messaging ceiling of this machine.
 */
public final class SimulationBench {
  private static final ObjectMapper JSON = new ObjectMapper();

  private SimulationBench() {}

  public enum FirewallMode { ON, OFF, BOTH }

  /** The figures, and whether the measured runs completed. */
  public record Result(ObjectNode figures, boolean complete) {}

  public static Result run(ActorSystem<?> system, int agents, int episodes, FirewallMode firewall, int pairs) throws Exception {
    return run(system, agents, episodes, firewall, pairs, Agent.EpisodeSpec.SYNTHESIS);
  }

  /** The same with the episodes played as {@code es} says (the teacher, or a served LLM: {@code --policy openai}). */
  public static Result run(ActorSystem<?> system, int agents, int episodes, FirewallMode firewall, int pairs, Agent.EpisodeSpec es)
      throws Exception {
    var fw = ToolDirectory.get(system).firewall();
    fw.setEnabled(firewall != FirewallMode.OFF);
    try (var ceiling = new RequestReplyCeiling(system, agents, Math.max(1, ToolDirectory.get(system).localWorkers()))) {
      ceiling.measure(); // warm-up, as the simulation's warm-up run below
      run(system, agents, "warmup", Math.max(1, episodes / 3), es);
      var before = measure(ceiling);
      Result r;
      if (firewall == FirewallMode.BOTH) {
        r = both(system, fw, agents, episodes, pairs, es);
      } else {
        // the agents' waits for the judges' backlog (k2.judge.max-backlog) during the measured run: backpressure
        // that holds agents while the journal is idle means the judges are behind
        var waits = dev.k2pekko.metrics.Metrics.get(system).counter("k2_agent_waits", "");
        long waits0 = waits.count();
        var s = run(system, agents, "measured", episodes, es);
        double secs = s.elapsed().toNanos() / 1e9;
        var o = JSON.createObjectNode().put("bench", "sim").put("agents", agents).put("episodes", s.get("episodes"))
            .put("tool_calls", s.get("tool_calls")).put("seconds", secs)
            .put("tool_calls_per_s", Math.round(s.get("tool_calls") / secs)).put("episodes_per_s", Math.round(s.get("episodes") / secs))
            .put("firewall", firewall.name().toLowerCase()).put("policy", es.policy()).put("accepted", s.get("accepted"))
            .put("cores", Runtime.getRuntime().availableProcessors())
            .put("judges", dev.k2pekko.agents.NodeServices.get(system).settings().judges()).put("agent_waits", waits.count() - waits0);
        r = new Result(o, s.complete());
      }
      var after = measure(ceiling);
      double best = Math.max(max(before), max(after));
      var o = r.figures();
      o.put("ceiling_senders", ceiling.senders()).put("ceiling_responders", ceiling.responders())
          .put("ceiling_round_trips_per_s", Math.round(best));
      var each = o.putArray("ceiling_runs_per_s");
      for (double x : before) each.add(Math.round(x));
      for (double x : after) each.add(Math.round(x));
      if (o.has("tool_calls_per_s")) {
        o.put("tool_calls_over_ceiling", Math.round(1e4 * o.get("tool_calls_per_s").asDouble() / best) / 1e4);
      } else {
        o.put("off_over_ceiling", Math.round(1e4 * o.get("tool_calls_per_s_off").asDouble() / best) / 1e4)
            .put("on_over_ceiling", Math.round(1e4 * o.get("tool_calls_per_s_on").asDouble() / best) / 1e4);
      }
      return r;
    }
  }

  /** Three measurements of the ceiling in a row. */
  private static double[] measure(RequestReplyCeiling ceiling) throws Exception {
    double[] out = new double[3];
    for (int i = 0; i < out.length; i++) out[i] = ceiling.measure();
    return out;
  }

  private static double max(double[] xs) {
    double m = 0;
    for (double x : xs) m = Math.max(m, x);
    return m;
  }

  /** Off and on alternately; tool calls/s summed over each side's runs. */
  private static Result both(ActorSystem<?> system, Firewall fw, int agents, int episodes, int pairs, Agent.EpisodeSpec es) throws Exception {
    long[] calls = new long[2];
    double[] secs = new double[2];
    boolean complete = true;
    var perRun = JSON.createArrayNode();
    for (int i = 0; i < 2 * pairs; i++) {
      boolean on = i % 2 == 1;
      fw.setEnabled(on);
      var s = run(system, agents, on ? "firewall-on" : "firewall-off", episodes, es);
      complete &= s.complete();
      int k = on ? 1 : 0;
      calls[k] += s.get("tool_calls");
      secs[k] += s.elapsed().toNanos() / 1e9;
      perRun.add(JSON.createObjectNode().put("firewall", on ? "on" : "off")
          .put("tool_calls_per_s", Math.round(s.get("tool_calls") / (s.elapsed().toNanos() / 1e9))));
    }
    double off = calls[0] / secs[0], on = calls[1] / secs[1];
    var o = JSON.createObjectNode().put("bench", "sim").put("agents", agents).put("episodes_per_agent", episodes)
        .put("pairs", pairs).put("tool_calls_per_s_off", Math.round(off)).put("tool_calls_per_s_on", Math.round(on))
        .put("on_over_off", Math.round(1000 * on / off) / 1000.0).put("overhead_pct", Math.round(1000 * (off / on - 1)) / 10.0)
        .put("cores", Runtime.getRuntime().availableProcessors());
    o.set("runs", perRun);
    return new Result(o, complete);
  }

  private static RunTracker.Summary run(ActorSystem<?> system, int agents, String name, int n, Agent.EpisodeSpec es) throws Exception {
    var spec = new RunDriver.RunSpec(name + "-" + System.nanoTime(), agents, n, 42, Agent.PersistMode.NONE, Duration.ofMinutes(10), es);
    return RunDriver.start(system, spec, s -> {}).get(11, TimeUnit.MINUTES);
  }
}
