package dev.k2pekko.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.RunDriver;
import dev.k2pekko.agents.RunTracker;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;

/** {@code k2 bench sim}: simulation throughput with the teacher policy and persistence off: a warm-up run, then the measured run. */
public final class SimulationBench {
  private static final ObjectMapper JSON = new ObjectMapper();

  private SimulationBench() {}

  /** The figures, and whether the measured run completed. */
  public record Result(ObjectNode figures, boolean complete) {}

  public static Result run(ActorSystem<?> system, int agents, int episodes) throws Exception {
    run(system, agents, "warmup", Math.max(1, episodes / 3));
    var s = run(system, agents, "measured", episodes);
    double secs = s.elapsed().toNanos() / 1e9;
    var o = JSON.createObjectNode().put("bench", "sim").put("agents", agents).put("episodes", s.get("episodes"))
        .put("tool_calls", s.get("tool_calls")).put("seconds", secs)
        .put("tool_calls_per_s", Math.round(s.get("tool_calls") / secs)).put("episodes_per_s", Math.round(s.get("episodes") / secs))
        .put("cores", Runtime.getRuntime().availableProcessors());
    return new Result(o, s.complete());
  }

  private static RunTracker.Summary run(ActorSystem<?> system, int agents, String name, int n) throws Exception {
    var spec = new RunDriver.RunSpec(name + "-" + System.nanoTime(), agents, n, 42, Agent.PersistMode.NONE, Duration.ofMinutes(10));
    return RunDriver.start(system, spec, s -> {}).get(11, TimeUnit.MINUTES);
  }
}
