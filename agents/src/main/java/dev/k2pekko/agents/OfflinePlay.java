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
    var episode = policy.start(task, task.seed());
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
      prev = invalid != null
          ? new Step(id, call.tool(), call.arguments(), invalid, spec == null ? "UNKNOWN_TOOL" : "INVALID_ARGUMENTS", false)
          : new Step(id, call.tool(), call.arguments(), Simulator.apply(world, spec, call.arguments(), universe.seed()), null, false);
      steps.add(prev);
    }
    var verdict = judge.judge(task, steps, answer, world, budgetExceeded);
    return new Trajectory(trajectoryId, task.id(), task.category(), task.difficulty(), task.seed(), NodeServices.SYSTEM_PROMPT,
        task.prompt(), task.toolsOffered(), steps, answer, verdict, policy.name());
  }
}
