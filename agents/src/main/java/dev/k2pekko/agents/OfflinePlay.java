package dev.k2pekko.agents;

import dev.k2pekko.agents.policy.Action;
import dev.k2pekko.agents.policy.Policy;
import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.tools.ArgumentValidator;
import dev.k2pekko.tools.Simulator;
import dev.k2pekko.tools.ToolUniverse;
import java.util.ArrayList;
import java.util.HashMap;

/**
 * Plays one episode without actors, calling the simulators directly (no tool noise): for benchmarks that need
 * realistic trajectories without running the actor system, and for tests of policy and judge.
 */
public final class OfflinePlay {
  private OfflinePlay() {}

  public static Trajectory play(ToolUniverse universe, Policy policy, JudgeRubric judge, Task task, String trajectoryId) {
    return play(universe, policy, judge, task, trajectoryId, task.seed(), false);
  }

  /**
   * As {@link #play(ToolUniverse, Policy, JudgeRubric, Task, String)}, with the policy's episode seeded by
   * {@code seed}; with {@code noisy}, calls fail transiently and lookups come back partial at each tool's own rates
   * ({@code ToolSpec.stochasticity()}), as the tool workers do it, drawn from a stream of {@code seed}: the noisy world
   * of docs/LOOP.md without actors.
   */
  public static Trajectory play(ToolUniverse universe, Policy policy, JudgeRubric judge, Task task, String trajectoryId, long seed, boolean noisy) {
    var episode = policy.start(task, seed);
    var noise = new java.util.SplittableRandom(seed ^ 0x5DEECE66DL);
    var world = new HashMap<String, String>();
    var steps = new ArrayList<Step>();
    Step prev = null;
    String answer = null;
    boolean budgetExceeded = true;
    while (steps.size() < task.rubric().stepBudget()) {
      var action = episode.next(prev);
      if (action instanceof Action.Answer a) {
        answer = a.text();
        budgetExceeded = false;
        break;
      }
      var call = (Action.Call) action;
      var id = "call_" + steps.size();
      var spec = universe.get(call.tool());
      var invalid = spec == null ? "unknown tool '" + call.tool() + "'" : ArgumentValidator.validate(spec, call.arguments());
      if (invalid != null) {
        prev = new Step(id, call.tool(), call.arguments(), invalid, spec == null ? "UNKNOWN_TOOL" : "INVALID_ARGUMENTS", false);
      } else if (noisy && noise.nextDouble() < spec.stochasticity().failureRate()) {
        prev = new Step(id, call.tool(), call.arguments(), spec.name() + " is temporarily unavailable, retry", "TRANSIENT_FAILURE", false);
      } else {
        String result = Simulator.apply(world, spec, call.arguments(), universe.seed());
        boolean partial = noisy && noise.nextDouble() < spec.stochasticity().partialRate();
        prev = new Step(id, call.tool(), call.arguments(), partial ? result.substring(0, result.length() / 2) + "…" : result, null, partial);
      }
      steps.add(prev);
    }
    var verdict = judge.judge(task, steps, answer, world, budgetExceeded);
    return new Trajectory(trajectoryId, task.id(), task.category(), task.difficulty(), task.seed(), NodeServices.SYSTEM_PROMPT,
        task.prompt(), task.toolsOffered(), steps, answer, verdict, policy.name());
  }
}
