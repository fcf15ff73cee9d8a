package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.agents.policy.TeacherPolicy;
import dev.k2pekko.agents.tasks.PlanStep;
import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.agents.tasks.TaskBuilder;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.protocol.Verdict;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TaskAndJudgeTest {
  static final ToolUniverse UNIVERSE = ToolUniverse.generate(7, Stochasticity.NONE);
  static final TaskGenerator GENERATOR = new TaskGenerator(UNIVERSE, 6);
  static final JudgeRubric JUDGE = new JudgeRubric(0.8);

  @Test void answersCompareAsNumbersWhereBothAreNumbers() {
    assertTrue(JudgeRubric.sameValue("12", "12.0"));
    assertTrue(JudgeRubric.sameValue(" 7 ", "7"));
    assertTrue(JudgeRubric.sameValue("+3", "3"));
    assertTrue(JudgeRubric.sameValue("1e3", "1000"));
    assertTrue(JudgeRubric.sameValue("3d", "3"));
    assertTrue(JudgeRubric.sameValue(".5", "0.5"));
    assertTrue(JudgeRubric.sameValue("-5.", "-5"));
    assertTrue(JudgeRubric.sameValue("blue", " blue"));
    assertFalse(JudgeRubric.sameValue("12x", "12"));
    assertFalse(JudgeRubric.sameValue("NaN", "NaN.0"));
    assertFalse(JudgeRubric.sameValue("{\"refused\":\"NOT_OFFERED\"}", "12"));
    assertFalse(JudgeRubric.sameValue("", "0"));
  }

  /** The pre-test only says no where the parse would throw: checked against the parse itself. */
  @Test void mayBeNumberNeverRefusesANumber() {
    var samples = List.of("0", "-0", "+1", "12", "12.", ".5", "-.5", "1e3", "1E-3", "2.5e+2", "3d", "3D", "4f", "4F", "NaN",
        "-NaN", "Infinity", "-Infinity", "+Infinity", "0x1p3", "0X1.8P1", "0x1p3d", " 7", "7 ", "\t8\n", "12x", "x12", "1,000",
        "", " ", "-", "+", ".", "e3", "1e", "Inf", "{\"a\":1}", "one", "12 apples", "$3", "3%", "0x", "--1", "1..2", "N", "I");
    for (var s : samples) {
      boolean parses;
      try {
        Double.parseDouble(s);
        parses = true;
      } catch (NumberFormatException e) {
        parses = false;
      }
      if (parses) assertTrue(TaskBuilder.mayBeNumber(s), "\"" + s + "\" parses but was refused");
    }
    assertFalse(TaskBuilder.mayBeNumber("12x"));
    assertFalse(TaskBuilder.mayBeNumber("{\"refused\":\"NOT_OFFERED\"}"));
    assertFalse(TaskBuilder.mayBeNumber("one"));
  }

  @Test void theSeedsExample() {
    // "calculate 7+5 and write it into the notes" -> calc.add(7,5) -> notes.write("12")
    Task task = new TaskBuilder(UNIVERSE, "core", 1).calc("add", 7, 5).storeNotes("notes").build("seed-example", List.of());
    assertEquals(List.of("calc.add", "notes.write"), task.rubric().expectedTools());
    assertEquals(Map.of("a", 7L, "b", 5L), task.plan().get(0).arguments());
    assertEquals(PlanStep.PREVIOUS, task.plan().get(1).arguments().get("text"));
    assertEquals("12", task.rubric().expectedAnswer());
    assertEquals("notes:notes", task.rubric().checks().get(0).key());
    assertEquals("12", task.rubric().checks().get(0).expected());
    assertTrue(task.prompt().startsWith("Calculate 7 + 5, then write it into the notes"), task.prompt());
    assertTrue(task.rubric().forbiddenTools().contains("notes.clear"));

    var steps = List.of(step("calc.add", Map.of("a", 7L, "b", 5L), "12"), step("notes.write", Map.of("text", "12"), "ok"));
    var ok = JUDGE.judge(task, steps, "12", Map.of("notes:notes", "12"), false);
    assertTrue(ok.accepted(), ok.reasons().toString());
    assertEquals(1.0, ok.verifiableScore());
    assertEquals(1.0, ok.rubricScore());

    var wrong = JUDGE.judge(task, List.of(step("calc.add", Map.of("a", 7L, "b", 6L), "13"), step("notes.write", Map.of("text", "13"), "ok")),
        "13", Map.of("notes:notes", "13"), false);
    assertFalse(wrong.accepted());
    assertTrue(wrong.reasons().stream().anyMatch(r -> r.startsWith("end-state: notes:notes is '13', expected '12'")), wrong.reasons().toString());
    assertTrue(wrong.reasons().stream().anyMatch(r -> r.startsWith("wrong-answer")));

    var forbidden = JUDGE.judge(task, List.of(steps.get(0), step("notes.clear", Map.of(), "ok"), steps.get(1)), "12",
        Map.of("notes:notes", "12"), false);
    assertFalse(forbidden.accepted());
    assertEquals(0.0, forbidden.rubricScore());

    var sideEffect = JUDGE.judge(task, steps, "12", Map.of("notes:notes", "12", "notes:journal", "x"), false);
    assertFalse(sideEffect.accepted());
    assertEquals(List.of("side-effect: touched [notes:journal]"), sideEffect.reasons());

    var premature = JUDGE.judge(task, List.of(steps.get(0)), "12", Map.of(), false);
    assertFalse(premature.accepted());
    assertTrue(premature.reasons().stream().anyMatch(r -> r.startsWith("end-state: notes:notes is missing")));
  }

  @Test void tasksSpanOneToSixStepsDeterministically() {
    var seen = new int[7];
    for (int i = 0; i < 600; i++) {
      var t = GENERATOR.task(99, "agent-" + i, 0);
      seen[t.difficulty()]++;
      assertEquals(t.difficulty(), t.plan().size());
      assertEquals(t.plan().size(), t.rubric().expectedTools().size());
      assertEquals(t, GENERATOR.task(99, "agent-" + i, 0), "same seed, same task");
      for (var tool : t.toolsOffered()) assertTrue(UNIVERSE.get(tool) != null, tool);
    }
    for (int d = 1; d <= 6; d++) assertTrue(seen[d] > 60, "difficulty " + d + " appears " + seen[d] + " times in 600");
  }

  @Test void aTeacherWithoutMistakesIsAlwaysAccepted() {
    var teacher = new TeacherPolicy(GENERATOR, TeacherPolicy.Mistakes.NONE);
    for (int i = 0; i < 500; i++) {
      var task = GENERATOR.task(5, "a", i);
      var v = play(teacher, task);
      assertTrue(v.accepted(), task.prompt() + " -> " + v.reasons());
    }
  }

  @Test void mistakesAreRejectedForTheirReasons() {
    var sloppy = new TeacherPolicy(GENERATOR, new TeacherPolicy.Mistakes(0.3, 0.0, 0.0, 0.0, 1.0));
    int rejected = 0;
    for (int i = 0; i < 300; i++) {
      var task = GENERATOR.task(5, "b", i);
      var v = play(sloppy, task);
      if (!v.accepted()) {
        rejected++;
        assertTrue(v.verifiableScore() < 1.0 || v.rubricScore() < 0.8, v.toString());
      }
    }
    assertTrue(rejected > 50, "30% wrong arguments per step should be caught often, got " + rejected);
  }

  /** Plays an episode against the simulators directly, as a tool worker would answer (no noise). */
  static Verdict play(TeacherPolicy teacher, Task task) {
    return OfflinePlay.play(UNIVERSE, teacher, JUDGE, task, "offline").verdict();
  }

  static Step step(String tool, Map<String, Object> args, String result) {
    return new Step("c", tool, args, result, null, false);
  }
}
