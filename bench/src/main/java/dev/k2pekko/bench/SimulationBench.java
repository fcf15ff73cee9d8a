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

  /**
   * Off and on alternately; tool calls/s summed over each side's runs. Pairs go off-on, on-off, off-on, ... so a
   * drift of the machine's speed over the run falls on both sides alike, and each pair's on/off ratio is kept: a single
   * pair of 3-second runs moves by 10-15% on this 2-core machine, so the figures quoted are summed ones with 95%
   * bootstrap intervals over the pairs, beside the median pair. Beside the rate, the CPU time of the whole process
   * per tool call (every thread: agents, tool workers, judges, the audit trail, GC, JIT), on over off.
   */
  private static Result both(ActorSystem<?> system, Firewall fw, int agents, int episodes, int pairs, Agent.EpisodeSpec es) throws Exception {
    // per pair and side (0 off, 1 on): tool calls, seconds, CPU seconds
    double[][] calls = new double[pairs][2], secs = new double[pairs][2], cpu = new double[pairs][2];
    boolean complete = true;
    var perRun = JSON.createArrayNode();
    var waits = dev.k2pekko.metrics.Metrics.get(system).counter("k2_agent_waits", "");
    fw.setEnabled(false); // the warm-up above ran with the firewall on: warm the off path as much
    run(system, agents, "warmup-off", Math.max(1, episodes / 3), es);
    for (int i = 0; i < 2 * pairs; i++) {
      int pair = i / 2;
      boolean on = (i % 2 == 1) != (pair % 2 == 1);
      fw.setEnabled(on);
      double cpu0 = ProcessCpu.seconds();
      long waits0 = waits.count(), start = System.currentTimeMillis();
      var s = run(system, agents, on ? "firewall-on" : "firewall-off", episodes, es);
      double c = ProcessCpu.seconds() - cpu0;
      complete &= s.complete();
      int k = on ? 1 : 0;
      double t = s.elapsed().toNanos() / 1e9;
      calls[pair][k] = s.get("tool_calls");
      secs[pair][k] = t;
      cpu[pair][k] = c;
      perRun.add(JSON.createObjectNode().put("firewall", on ? "on" : "off")
          .put("tool_calls_per_s", Math.round(s.get("tool_calls") / t)).put("cpu_us_per_call", Math.round(1e8 * c / s.get("tool_calls")) / 100.0)
          .put("agent_waits", waits.count() - waits0).put("refused", refused(s)).put("start_ms", start).put("end_ms", System.currentTimeMillis()));
    }
    double[] rate = new double[pairs], cpuRatio = new double[pairs];
    for (int p = 0; p < pairs; p++) {
      rate[p] = (calls[p][1] / secs[p][1]) / (calls[p][0] / secs[p][0]);
      cpuRatio[p] = (cpu[p][1] / calls[p][1]) / (cpu[p][0] / calls[p][0]);
    }
    double on = sum(calls, 1) / sum(secs, 1), off = sum(calls, 0) / sum(secs, 0);
    double cpuOn = sum(cpu, 1) / sum(calls, 1), cpuOff = sum(cpu, 0) / sum(calls, 0);
    var rateInterval = bootstrap(calls, secs, 2000, 42);
    var cpuInterval = bootstrap(cpu, calls, 2000, 43);
    var o = JSON.createObjectNode().put("bench", "sim").put("agents", agents).put("episodes_per_agent", episodes)
        .put("pairs", pairs).put("tool_calls_per_s_off", Math.round(off)).put("tool_calls_per_s_on", Math.round(on))
        .put("on_over_off", round3(on / off)).put("overhead_pct", Math.round(1000 * (off / on - 1)) / 10.0)
        .put("on_over_off_median_pair", round3(median(rate)))
        .put("on_over_off_95_low", round3(rateInterval[0])).put("on_over_off_95_high", round3(rateInterval[1]))
        .put("cpu_us_per_call_off", Math.round(1e8 * cpuOff) / 100.0).put("cpu_us_per_call_on", Math.round(1e8 * cpuOn) / 100.0)
        .put("cpu_on_over_off", round3(cpuOn / cpuOff)).put("cpu_on_over_off_median_pair", round3(median(cpuRatio)))
        .put("cpu_on_over_off_95_low", round3(cpuInterval[0])).put("cpu_on_over_off_95_high", round3(cpuInterval[1]))
        .put("cores", Runtime.getRuntime().availableProcessors());
    var each = o.putArray("pair_on_over_off");
    for (double r : rate) each.add(round3(r));
    var eachCpu = o.putArray("pair_cpu_on_over_off");
    for (double r : cpuRatio) eachCpu.add(round3(r));
    o.set("runs", perRun);
    return new Result(o, complete);
  }

  /** The run's calls the firewall refused, all kinds. */
  private static long refused(RunTracker.Summary s) {
    long n = 0;
    for (var e : dev.k2pekko.protocol.ToolError.values()) if (e.refusal()) n += s.get("refused/" + e.name());
    return n;
  }

  private static double sum(double[][] xs, int side) {
    double s = 0;
    for (var x : xs) s += x[side];
    return s;
  }

  /**
   * A 95% percentile interval of {@code (sum a[.][1] / sum b[.][1]) / (sum a[.][0] / sum b[.][0])}, the pairs
   * resampled with replacement: with a = calls and b = seconds the on/off ratio of tool calls/s, with a = CPU seconds
   * and b = calls that of CPU time per call.
   */
  static double[] bootstrap(double[][] a, double[][] b, int resamples, long seed) {
    var rnd = new java.util.SplittableRandom(seed);
    int n = a.length;
    double[] stats = new double[resamples];
    for (int r = 0; r < resamples; r++) {
      double a0 = 0, b0 = 0, a1 = 0, b1 = 0;
      for (int i = 0; i < n; i++) {
        int p = rnd.nextInt(n);
        a0 += a[p][0]; b0 += b[p][0]; a1 += a[p][1]; b1 += b[p][1];
      }
      stats[r] = (a1 / b1) / (a0 / b0);
    }
    java.util.Arrays.sort(stats);
    return new double[] {stats[(int) (0.025 * (resamples - 1))], stats[(int) Math.ceil(0.975 * (resamples - 1))]};
  }

  static double median(double[] xs) {
    var s = xs.clone();
    java.util.Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }

  private static double round3(double x) { return Math.round(1000 * x) / 1000.0; }

  private static RunTracker.Summary run(ActorSystem<?> system, int agents, String name, int n, Agent.EpisodeSpec es) throws Exception {
    var spec = new RunDriver.RunSpec(name + "-" + System.nanoTime(), agents, n, 42, Agent.PersistMode.NONE, Duration.ofMinutes(10), es);
    return RunDriver.start(system, spec, s -> {}).get(11, TimeUnit.MINUTES);
  }
}
