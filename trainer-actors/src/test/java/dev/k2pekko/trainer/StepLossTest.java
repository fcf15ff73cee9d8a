package dev.k2pekko.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.agents.JudgeRubric;
import dev.k2pekko.agents.OfflinePlay;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.agents.policy.TeacherPolicy;
import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.model.Losses;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.Sequence;
import dev.k2pekko.model.TokenBatch;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.protocol.Sampling;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The RL step's objectives on real episodes of one task: the teacher, making many mistakes, plays it several times and
 * the judge accepts some; each episode is then marked as a sampled rollout.
 */
class StepLossTest {
  private static final ToolUniverse UNIVERSE = ToolUniverse.generate(7, Stochasticity.NONE);
  private static final PolicyFormat FORMAT = new PolicyFormat(UNIVERSE);

  private static PolicyModel model() {
    var cfg = new ModelConfig(FORMAT.tokenizer().vocabSize(), 16, 1, 2, 192, 2, 1e-5);
    return new PolicyModel(cfg, new ReferenceOps(), 3);
  }

  /** Rollouts of one three-step training task until at least {@code accepted} accepted and {@code rejected} rejected ones. */
  private static List<Trajectory> group(int accepted, int rejected) {
    var tasks = new TaskGenerator(UNIVERSE, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN);
    var task = tasks.taskOfDifficulty(11, "t-step", 3);
    var teacher = new TeacherPolicy(tasks, new TeacherPolicy.Mistakes(0.3, 0, 0, 0, 0));
    var judge = new JudgeRubric(0.8);
    var out = new ArrayList<Trajectory>();
    int ok = 0, bad = 0;
    for (int i = 0; i < 200 && (ok < accepted || bad < rejected); i++) {
      // the same task, another seed for the teacher's mistakes (an offline episode's randomness is the task's seed)
      var again = new Task(task.id(), task.category(), task.difficulty(), task.seed() + i, task.prompt(), task.plan(), task.rubric(), task.toolsOffered());
      var t = OfflinePlay.play(UNIVERSE, teacher, judge, again, "t-step#" + i);
      boolean a = t.verdict().accepted();
      if (a ? ok >= accepted : bad >= rejected) continue;
      if (a) ok++;
      else bad++;
      out.add(new Trajectory(t.trajectoryId(), t.taskId(), t.category(), t.difficulty(), t.seed(), t.system(), t.prompt(), t.tools(),
          t.steps(), t.finalAnswer(), t.verdict(), "learned@v0", new Sampling(0, -1.0, 1.0, null)));
    }
    assertEquals(accepted + rejected, out.size(), "the teacher's episodes gave too few of each verdict in 200 plays");
    return out;
  }

  @Test void filteredTrainsOnTheAcceptedRolloutsOfAGroupOnly() {
    var model = model();
    var g = group(2, 2);
    var r = StepLoss.rl(model, FORMAT, List.of(g), Learner.RlObjective.FILTERED, 0.5, 0);
    assertFalse(r.grads().isEmpty());
    var kept = new ArrayList<Sequence>();
    for (var t : g) if (t.verdict().accepted()) kept.addAll(FORMAT.examples(t));
    var expected = Losses.nextToken(model, TokenBatch.of(kept, 0));
    assertEquals(expected.loss(), r.loss(), 1e-12);
    expected.grads().forEach((name, grad) -> assertArrayEquals(WeightsSnapshot.toFloats(grad), r.grads().get(name), 1e-7f, name));
    double meanReward = g.stream().mapToDouble(t -> Reward.of(t.verdict())).average().orElseThrow();
    assertEquals(meanReward, r.reward(), 1e-12);
  }

  @Test void aGroupThatAllSucceededOrAllFailedTeachesNothing() {
    var model = model();
    for (var objective : Learner.RlObjective.values()) {
      var succeeded = StepLoss.rl(model, FORMAT, List.of(group(3, 0)), objective, 0.5, 0);
      assertTrue(succeeded.grads().isEmpty(), objective + ": all accepted");
      assertEquals(0, succeeded.tokens());
    }
  }

  @Test void theK2ObjectiveUsesEveryRolloutAndDiffersFromFiltered() {
    var model = model();
    var g = group(1, 3);
    var k2 = StepLoss.rl(model, FORMAT, List.of(g), Learner.RlObjective.K2, 0.5, 0);
    var filtered = StepLoss.rl(model, FORMAT, List.of(g), Learner.RlObjective.FILTERED, 0.5, 0);
    long all = TokenBatch.of(g.stream().flatMap(t -> FORMAT.examples(t).stream()).toList(), 0).ids().length;
    assertEquals(all, k2.tokens());
    assertTrue(filtered.tokens() < all);
    String name = k2.grads().keySet().iterator().next();
    assertNotNull(filtered.grads().get(name));
    assertFalse(java.util.Arrays.equals(k2.grads().get(name), filtered.grads().get(name)));
  }

  @Test void anUnknownObjectiveIsNamed() {
    assertEquals(Learner.RlObjective.FILTERED, Learner.RlObjective.parse("Filtered"));
    var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> Learner.RlObjective.parse("ppo"));
    assertTrue(e.getMessage().contains("k2 or filtered"), e.getMessage());
  }

  @Test void withACostTheFilteredObjectiveKeepsOnlyTheCheapestSuccessesOfAGroup() {
    var model = model();
    var g = new ArrayList<>(group(2, 1));
    var cheap = g.stream().filter(t -> t.verdict().accepted()).toList();
    var first = cheap.getFirst();
    var steps = new ArrayList<>(first.steps());
    steps.add(steps.getLast()); // one call more, same verdict: a success that cost more
    var dear = new Trajectory(first.trajectoryId() + "x", first.taskId(), first.category(), first.difficulty(), first.seed(), first.system(), first.prompt(),
        first.tools(), steps, first.finalAnswer(), first.verdict(), first.policy(), first.sampling());
    g.add(dear);
    // without a cost every success is trained on, the dear one too
    var free = StepLoss.rl(model, FORMAT, List.of(g), Learner.RlObjective.FILTERED, 0.5, 0, Reward.Weights.DEFAULT, t -> Double.NaN);
    var all = new ArrayList<Sequence>();
    for (var t : g) if (t.verdict().accepted()) all.addAll(FORMAT.examples(t));
    assertEquals(Losses.nextToken(model, TokenBatch.of(all, 0)).loss(), free.loss(), 1e-12);
    // with one: only the successes of the group's lowest cost
    var costly = StepLoss.rl(model, FORMAT, List.of(g), Learner.RlObjective.FILTERED, 0.5, 0, new Reward.Weights(1, 0, 0.01, 0), t -> Double.NaN);
    var kept = new ArrayList<Sequence>();
    for (var t : cheap) kept.addAll(FORMAT.examples(t));
    assertEquals(Losses.nextToken(model, TokenBatch.of(kept, 0)).loss(), costly.loss(), 1e-12);
    assertTrue(costly.tokens() < free.tokens());
  }

  @Test void anOpenTasksRolloutsAreJudgedByTheCriticNotByTheirHiddenVerdict() {
    var model = model();
    var open = new ArrayList<Trajectory>();
    for (var t : group(2, 2)) {
      open.add(new Trajectory(t.trajectoryId(), t.taskId(), Reward.OPEN, t.difficulty(), t.seed(), t.system(), t.prompt(), t.tools(), t.steps(),
          t.finalAnswer(), t.verdict(), t.policy(), t.sampling()));
    }
    // the critic prefers the rejected ones: they are what is trained on
    var r = StepLoss.rl(model, FORMAT, List.of(open), Learner.RlObjective.FILTERED, 0.5, 0, Reward.Weights.DEFAULT,
        t -> t.verdict().accepted() ? 0.1 : 0.9);
    var kept = new ArrayList<Sequence>();
    for (var t : open) if (!t.verdict().accepted()) kept.addAll(FORMAT.examples(t));
    assertEquals(Losses.nextToken(model, TokenBatch.of(kept, 0)).loss(), r.loss(), 1e-12);
    // a critic that scores them all alike gives no signal, whatever the hidden verdicts say
    var flat = StepLoss.rl(model, FORMAT, List.of(open), Learner.RlObjective.FILTERED, 0.5, 0, Reward.Weights.DEFAULT, t -> 0.7);
    assertTrue(flat.grads().isEmpty());
  }
  private static Trajectory asOpen(Trajectory t, String id, List<dev.k2pekko.protocol.Step> steps) {
    return new Trajectory(id, t.taskId(), Reward.OPEN, t.difficulty(), t.seed(), t.system(), t.prompt(), t.tools(), steps,
        t.finalAnswer(), t.verdict(), t.policy(), t.sampling());
  }

  @Test void anOpenRolloutThatLeftItemsUndoneIsNeverItsGroupsSuccess() {
    var model = model();
    var g = group(2, 0);
    var whole = new ArrayList<Trajectory>();
    for (var t : g) whole.add(asOpen(t, t.trajectoryId(), t.steps()));
    for (var t : whole) assertTrue(Reward.finished(t), "an accepted episode did every item: " + t.steps());
    // the first one cut after its first call and answered there, as seed 7's collapsed RL played its open tasks
    var cut = asOpen(g.getFirst(), "cut", List.of(g.getFirst().steps().getFirst()));
    assertFalse(Reward.finished(cut));
    var open = new ArrayList<>(whole);
    open.add(cut);
    java.util.function.ToDoubleFunction<Trajectory> critic = t -> t == cut ? 0.9 : t == whole.getFirst() ? 0.35 : 0.2;
    var gated = StepLoss.rl(model, FORMAT, List.of(open), Learner.RlObjective.FILTERED, 0.5, 0, Reward.Weights.DEFAULT, critic, true);
    assertEquals(Losses.nextToken(model, TokenBatch.of(FORMAT.examples(whole.getFirst()), 0)).loss(), gated.loss(), 1e-12,
        "the critic's best among the finished ones");
    var ungated = StepLoss.rl(model, FORMAT, List.of(open), Learner.RlObjective.FILTERED, 0.5, 0, Reward.Weights.DEFAULT, critic, false);
    assertEquals(Losses.nextToken(model, TokenBatch.of(FORMAT.examples(cut), 0)).loss(), ungated.loss(), 1e-12, "without the gate: the cut one");
    var onlyCut = StepLoss.rl(model, FORMAT, List.of(List.of(cut, asOpen(g.getFirst(), "cut2", List.of()))), Learner.RlObjective.FILTERED,
        0.5, 0, Reward.Weights.DEFAULT, t -> t == cut ? 0.9 : 0.1, true);
    assertTrue(onlyCut.grads().isEmpty(), "no rollout finished: no signal, however the critic ranks them");
  }
}
