package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.agents.policy.TeacherPolicy;
import dev.k2pekko.agents.tasks.TaskBuilder;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.protocol.Verdict;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.util.HashSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The open task family: a note of facts gathered with the lookup, its hidden rubric, and the public checks that keep its synthesis data. */
class OpenTaskTest {
  static final ToolUniverse UNIVERSE = ToolUniverse.generate(7, Stochasticity.NONE);
  static final JudgeRubric JUDGE = new JudgeRubric(0.8);

  @Test void anOpenTaskLooksUpEachFactAndWritesThemIntoTheNotesInOrder() {
    var gen = new TaskGenerator(UNIVERSE, 5).coreOnly(true);
    var t = gen.openTask(5, "o-1", 3);
    assertEquals(TaskBuilder.OPEN, t.category());
    assertEquals(List.of("web.search", "notes.write", "web.search", "notes.append", "web.search", "notes.append"), t.rubric().expectedTools());
    assertTrue(t.prompt().contains("then write it into the notes, then look up"), t.prompt());
    assertTrue(t.prompt().contains("then add it to the notes"), t.prompt());
    assertTrue(t.rubric().forbiddenTools().contains("notes.clear"));
    // the notes must end holding the three facts, one a line, in the order asked; the answer is the last
    var notes = t.rubric().checks().getFirst().expected().split("\n");
    assertEquals(3, notes.length);
    assertEquals(notes[2], t.rubric().expectedAnswer());
    assertEquals(3, t.prompt().split("look up \"", -1).length - 1 + (t.prompt().startsWith("Look up \"") ? 1 : 0), "three topics: " + t.prompt());
  }

  @Test void theHeldOutOpenSetIsFixedAndDisjointFromTraining() {
    var held = new TaskGenerator(UNIVERSE, 5).coreOnly(true).withSplit(TaskGenerator.Split.HELD_OUT);
    var train = new TaskGenerator(UNIVERSE, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN);
    var heldPrompts = new HashSet<String>();
    for (int i = 0; i < 40; i++) {
      var t = held.openTask(TaskGenerator.mix(42 + i), "h-" + i, TaskGenerator.openFacts(i));
      assertTrue(TaskGenerator.heldOut(t));
      assertEquals(t.prompt(), held.openTask(TaskGenerator.mix(42 + i), "h-" + i, TaskGenerator.openFacts(i)).prompt(), "fixed by its seed");
      heldPrompts.add(t.prompt());
    }
    for (int i = 0; i < 400; i++) {
      var t = train.openTask(TaskGenerator.mix(7_000 + i), "t-" + i, TaskGenerator.openFacts(i));
      assertFalse(TaskGenerator.heldOut(t));
      assertFalse(heldPrompts.contains(t.prompt()));
    }
  }

  @Test void theHiddenRubricAcceptsAFaithfulNoteAndThePublicChecksCannotTellAWrongOne() {
    var gen = new TaskGenerator(UNIVERSE, 5).coreOnly(true);
    var task = gen.openTask(11, "o-2", 2);
    var clean = OfflinePlay.play(UNIVERSE, new TeacherPolicy(gen, TeacherPolicy.Mistakes.NONE), JUDGE, task, "o-2#0");
    assertTrue(clean.verdict().accepted(), clean.verdict().reasons().toString());
    assertTrue(JudgeRubric.passesPublicChecks(clean.verdict()));
    // a teacher that mistypes arguments: the hidden rubric rejects the wrong facts, the public checks see nothing wrong
    var sloppy = new TeacherPolicy(gen, new TeacherPolicy.Mistakes(1.0, 0, 0, 0, 1));
    var wrong = OfflinePlay.play(UNIVERSE, sloppy, JUDGE, task, "o-2#1");
    assertFalse(wrong.verdict().accepted());
    assertTrue(JudgeRubric.passesPublicChecks(wrong.verdict()), wrong.verdict().reasons().toString());
    assertNotEquals(clean.steps().get(1).arguments(), wrong.steps().get(1).arguments());
  }

  @Test void thePublicChecksAreTheReasonsAHarnessSeesWithoutTheChecker() {
    assertTrue(JudgeRubric.passesPublicChecks(new Verdict(false, 0.5, 0.5, List.of("end-state: x", "wrong-answer: y", "off-pattern: z", "side-effect: w"))));
    for (var r : List.of("unrecovered-error: web.search TRANSIENT_FAILURE", "step-budget: more than 6 steps", "forbidden-tool: notes.clear",
        "no-answer: the episode ended without an answer")) {
      assertFalse(JudgeRubric.passesPublicChecks(new Verdict(false, 1, 1, List.of(r))), r);
    }
  }

  @Test void synthesisKeepsAnOpenEpisodeByThePublicChecksAndAVerifiableOneByItsVerdict() {
    var wrongNote = new Verdict(false, 0.6, 1, List.of("end-state: notes:notes is 'x', expected 'y'"));
    var timedOut = new Verdict(false, 0.6, 1, List.of("policy-timeout: no action", "end-state: notes:notes is missing, expected 'y'"));
    assertTrue(JudgeRubric.keptAsAccepted(TaskBuilder.OPEN, wrongNote), "the hidden rubric's rejection is not read");
    assertFalse(JudgeRubric.keptAsAccepted(TaskBuilder.OPEN, timedOut));
    assertFalse(JudgeRubric.keptAsAccepted("core", wrongNote));
    assertTrue(JudgeRubric.keptAsAccepted("core", new Verdict(true, 1, 1, List.of())));
  }

  @Test void aNotedTaskIsVerifiableAndItsCheckerRefusesAWriteWhereItAsksToAdd() {
    var train = new TaskGenerator(UNIVERSE, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN).withNotedShares(0.1, 0.1);
    var task = train.notedTask(9, "n-1", 2);
    assertNotEquals(TaskBuilder.OPEN, task.category());
    assertEquals(List.of("web.search", "notes.write", task.rubric().expectedTools().get(2), task.rubric().expectedTools().get(3), "notes.append"),
        task.rubric().expectedTools());
    assertTrue(task.prompt().contains("then write it into the notes") && task.prompt().contains("then add it to the notes"), task.prompt());
    var clean = OfflinePlay.play(UNIVERSE, new TeacherPolicy(train, TeacherPolicy.Mistakes.NONE), JUDGE, task, "n-1#0");
    assertTrue(clean.verdict().accepted(), clean.verdict().reasons().toString());
    // the same calls with the last one a notes.write: the note then holds the result alone, and the checker sees it
    var calls = new java.util.ArrayList<dev.k2pekko.agents.policy.Action>();
    for (var st : clean.steps()) calls.add(new dev.k2pekko.agents.policy.Action.Call(st.tool(), st.arguments()));
    var last = (dev.k2pekko.agents.policy.Action.Call) calls.removeLast();
    assertEquals("notes.append", last.tool());
    calls.add(new dev.k2pekko.agents.policy.Action.Call("notes.write", last.arguments()));
    calls.add(new dev.k2pekko.agents.policy.Action.Answer(clean.finalAnswer()));
    dev.k2pekko.agents.policy.Policy scripted = new dev.k2pekko.agents.policy.Policy() {
      @Override public String name() { return "scripted"; }
      @Override public Episode start(dev.k2pekko.agents.tasks.Task t, long seed) {
        var it = calls.iterator();
        return previous -> it.next();
      }
    };
    var wrong = OfflinePlay.play(UNIVERSE, scripted, JUDGE, task, "n-1#1");
    assertEquals("notes.write", wrong.steps().getLast().tool());
    assertFalse(wrong.verdict().accepted(), "notes.write where the task says add: " + wrong.verdict().reasons());
    org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> train.notedTask(9, "n-2", 0));
    org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> train.withNotedShares(1.5, 0));
    org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> train.withNotedShares(0, -0.1));
  }

  @Test void theSynthesisAndRlDrawNotedTasksEachAtItsOwnShare() {
    var teacher = new Agent.EpisodeSpec(Agent.Tasks.TRAIN, "teacher", 0, 1);
    var learned = new Agent.EpisodeSpec(Agent.Tasks.TRAIN, "learned", 1, 4);
    var plain = new TaskGenerator(UNIVERSE, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN);
    var synthOnly = new TaskGenerator(UNIVERSE, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN).withNotedShares(0.2, 0);
    var both = new TaskGenerator(UNIVERSE, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN).withNotedShares(0.2, 0.2);
    var rlOnly = new TaskGenerator(UNIVERSE, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN).withNotedShares(0, 0.1);
    int noted = 0, rlNoted = 0, n = 2000;
    for (int a = 0; a < n; a++) {
      String agent = "agent-" + a;
      var synth = TaskDraws.trainTask(synthOnly, teacher, 42, agent, 0);
      assertEquals(synth.id(), TaskDraws.trainTask(both, learned, 42, agent, 0).id(), "equal shares: RL draws as the synthesis");
      assertEquals(TaskDraws.trainTask(plain, learned, 42, agent, 0).prompt(), TaskDraws.trainTask(synthOnly, learned, 42, agent, 0).prompt(),
          "RL share 0: RL's draw as with no noted tasks");
      assertEquals(TaskDraws.trainTask(plain, teacher, 42, agent, 0).prompt(), TaskDraws.trainTask(rlOnly, teacher, 42, agent, 0).prompt(),
          "synthesis share 0: the synthesis's draw as with no noted tasks");
      var rl = TaskDraws.trainTask(rlOnly, learned, 42, agent, 0);
      if (synth.id().startsWith("rn-")) noted++;
      if (rl.id().startsWith("rn-")) {
        rlNoted++;
        assertTrue(synth.id().startsWith("rn-"), "a smaller share draws a subset of a larger one's noted tasks");
      }
    }
    assertTrue(Math.abs(noted - 0.2 * n) < 4 * Math.sqrt(n * 0.2 * 0.8), noted + " noted of " + n);
    assertTrue(Math.abs(rlNoted - 0.1 * n) < 4 * Math.sqrt(n * 0.1 * 0.9), rlNoted + " noted RL draws of " + n);
  }

  @Test void anOpenShareMakesThatShareOfTrainTasksOpenFromTheirSeeds() {
    var services = new java.util.function.BiFunction<Double, Integer, dev.k2pekko.agents.tasks.Task>() {
      final TaskGenerator train = new TaskGenerator(UNIVERSE, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN);
      @Override public dev.k2pekko.agents.tasks.Task apply(Double share, Integer agent) {
        return TaskDraws.trainTask(train, new Agent.EpisodeSpec(Agent.Tasks.TRAIN, "teacher", 0, 1, null, share), 42, "agent-" + agent, 0);
      }
    };
    int open = 0, n = 2000;
    for (int a = 0; a < n; a++) {
      var t = services.apply(0.3, a);
      if (TaskBuilder.OPEN.equals(t.category())) {
        open++;
        assertFalse(TaskGenerator.heldOut(t));
      }
      assertEquals(t.prompt(), services.apply(0.3, a).prompt(), "fixed by the seed");
      assertFalse(TaskBuilder.OPEN.equals(services.apply(0.0, a).category()));
    }
    assertTrue(Math.abs(open - 0.3 * n) < 4 * Math.sqrt(n * 0.3 * 0.7), open + " open of " + n);
    org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> new Agent.EpisodeSpec(Agent.Tasks.HELD_OUT, "learned", 1, 4, null, 0.5));
    org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> new Agent.EpisodeSpec(Agent.Tasks.TRAIN, "learned", 1, 4, null, 1.5));
  }

  @Test void theHeldOutOpenTasksAreTheBenchsAndAlternateTwoAndThreeFacts() {
    var held = new TaskGenerator(UNIVERSE, 5).coreOnly(true).withSplit(TaskGenerator.Split.HELD_OUT);
    for (int i = 0; i < 6; i++) {
      var t = TaskDraws.heldOutOpenTask(held, 42, i);
      assertEquals(TaskBuilder.OPEN, t.category());
      assertEquals("open-held-" + i, t.id());
      assertEquals(2 * TaskGenerator.openFacts(i), t.rubric().expectedTools().size(), t.rubric().expectedTools().toString());
      assertTrue(TaskGenerator.heldOut(t));
    }
  }
}
