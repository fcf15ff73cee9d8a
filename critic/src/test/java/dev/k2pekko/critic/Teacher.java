package dev.k2pekko.critic;

import dev.k2pekko.agents.JudgeRubric;
import dev.k2pekko.agents.OfflinePlay;
import dev.k2pekko.agents.policy.TeacherPolicy;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.util.ArrayList;
import java.util.List;

/** Real trajectories for the critic's tests: the scripted teacher on core-tool tasks, judged by the real rubric. */
final class Teacher {
  private Teacher() {}

  static final ToolUniverse UNIVERSE = ToolUniverse.generate(7, Stochasticity.NONE);

  /** {@code n} teacher episodes on tasks of {@code split} drawn from {@code seed}, with the default mistake rates scaled by {@code mistakes}. */
  static List<Trajectory> episodes(int n, long seed, TaskGenerator.Split split, double mistakes) {
    var tasks = new TaskGenerator(UNIVERSE, 5).coreOnly(true).withSplit(split);
    var teacher = new TeacherPolicy(tasks, new TeacherPolicy.Mistakes(0.03 * mistakes, 0.02 * mistakes, 0.02 * mistakes, 0.01 * mistakes, 0.9));
    var judge = new JudgeRubric(0.8);
    var out = new ArrayList<Trajectory>(n);
    for (int i = 0; i < n; i++) out.add(OfflinePlay.play(UNIVERSE, teacher, judge, tasks.task(seed + i, "t" + i), "critic-test/" + split + "/" + i));
    return out;
  }
}
