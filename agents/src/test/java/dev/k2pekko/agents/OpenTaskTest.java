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
}
