package dev.k2pekko.agents.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.agents.JudgeRubric;
import dev.k2pekko.agents.OfflinePlay;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.model.Decoder;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PolicyFormatTest {
  static final ToolUniverse U = ToolUniverse.generate(7, Stochasticity.NONE);
  static final PolicyFormat F = new PolicyFormat(U);

  @Test void callsParseBackToTheSameCallWithTypedArguments() {
    var args = new LinkedHashMap<String, Object>();
    args.put("b", 5L);
    args.put("a", 1457L);
    int[] tokens = F.call("calc.add", args);
    var back = (Action.Call) F.parse(tokens);
    assertEquals("calc.add", back.tool());
    assertEquals(Map.of("a", 1457L, "b", 5L), back.arguments());
    assertEquals("<call>calc.add a=1457|b=5<eos>", F.tokenizer().decode(tokens)); // the tool's parameter order
    var ev = (Action.Call) F.parse(F.call("calendar.create", Map.of("title", "standup 1", "date", "2026-03-14")));
    assertEquals(Map.of("title", "standup 1", "date", "2026-03-14"), ev.arguments());
    assertEquals(new Action.Answer("-43"), F.parse(F.answer("-43")));
  }

  @Test void valuesFromEarlierResultsAreWrittenAsReferencesAndResolved() {
    var results = java.util.List.of("38", "9048");
    int[] tokens = F.call("calc.add", Map.of("a", 9048L, "b", 7L), results);
    assertEquals("<call>calc.add a=#2|b=7<eos>", F.tokenizer().decode(tokens));
    assertEquals(new Action.Call("calc.add", Map.of("a", 9048L, "b", 7L)), F.parse(tokens, results));
    assertEquals("<answer>#1<eos>", F.tokenizer().decode(F.answer("38", results)));
    assertEquals(new Action.Answer("38"), F.parse(F.answer("38", results), results));
    // a reference to a result that does not exist stays as written: the schema check refuses it
    var dangling = (Action.Call) F.parse(F.tokenizer().encode("<call>calc.add a=#7|b=1<eos>"), results);
    assertEquals("#7", dangling.arguments().get("a"));
  }

  @Test void garbageParsesToACallTheToolsWillRefuse() {
    int[] junk = F.tokenizer().encode("hello");
    var a = F.parse(junk);
    assertTrue(a instanceof Action.Call c && U.get(c.tool()) == null);
    var noArgs = (Action.Call) F.parse(F.call("calc.add", Map.of()));
    assertTrue(noArgs.arguments().isEmpty());
    var wrongType = (Action.Call) F.parse(F.tokenizer().encode("<call>calc.add a=x|b=2<eos>"));
    assertEquals("x", wrongType.arguments().get("a")); // the schema check names it
  }

  @Test void anEpisodeBecomesOneShortExamplePerActionWithTheActionMarked() {
    var gen = new TaskGenerator(U, 5).coreOnly(true);
    var teacher = new TeacherPolicy(gen, TeacherPolicy.Mistakes.NONE);
    var task = gen.taskOfDifficulty(99, "t", 3);
    var t = OfflinePlay.play(U, teacher, new JudgeRubric(0.8), task, "x");
    assertTrue(t.verdict().accepted());
    var items = PolicyFormat.checklist(t.prompt());
    assertEquals(4, items.size()); // three steps and the closing instruction
    assertEquals(PolicyFormat.CLOSING, items.getLast());
    var ex = F.examples(t);
    assertEquals(4, ex.size()); // three calls and the answer
    String first = F.tokenizer().decode(ex.get(0).tokens());
    assertTrue(first.startsWith("<bos>#1 " + items.get(0) + "<sep><call>"), first);
    String third = F.tokenizer().decode(ex.get(2).tokens());
    var s = t.steps();
    assertTrue(third.startsWith("<bos>#3 " + items.get(2) + "<sep><result>#1 " + s.get(0).result() + "<sep><result>#2 " + s.get(1).result()
        + "<sep><call>"), third);
    String last = F.tokenizer().decode(ex.get(3).tokens());
    assertTrue(last.startsWith("<bos>#4 " + PolicyFormat.CLOSING + "<sep><result>#2 "), last);
    int[] lastTokens = ex.get(3).tokens();
    var answerTokens = java.util.Arrays.copyOfRange(lastTokens, indexOf(lastTokens, F.tokenizer().id("<answer>")), lastTokens.length);
    assertEquals(new Action.Answer(t.finalAnswer()), F.parse(answerTokens, PolicyFormat.results(t.steps())), last);
    for (var e : ex) {
      var marked = new StringBuilder();
      for (int i = 0; i < e.length(); i++) if (e.action()[i]) marked.append(F.tokenizer().token(e.tokens()[i]));
      assertTrue(marked.toString().matches("<(call|answer)>[^<]*<eos>"), marked.toString()); // exactly the action
      assertTrue(e.length() < 60, "an example of " + e.length() + " tokens");
    }
  }

  static int indexOf(int[] xs, int x) {
    for (int i = 0; i < xs.length; i++) if (xs[i] == x) return i;
    return -1;
  }

  @Test void failedAttemptsSinceTheLastSuccessAreShown() {
    var ok = new dev.k2pekko.protocol.Step("c0", "calc.add", Map.of("a", 1L, "b", 2L), "3", null, false);
    var failed = new dev.k2pekko.protocol.Step("c1", "notes.write", Map.of("text", "3"), "notes.write is temporarily unavailable, retry", "TRANSIENT_FAILURE", false);
    String v = F.tokenizer().decode(F.view("Calculate 1 + 2, then write it into the notes. Answer with the final value.", java.util.List.of(ok, failed)));
    assertEquals("<bos>#2 write it into the notes<sep><result>#1 3<sep><call>notes.write text=#1<eos><result>error TRANSIENT_FAILURE<sep>", v);
  }

  @Test void theHeldOutSplitIsDisjointFromTraining() {
    var train = new TaskGenerator(U, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN);
    var held = new TaskGenerator(U, 5).coreOnly(true).withSplit(TaskGenerator.Split.HELD_OUT);
    var seen = new java.util.HashSet<String>();
    for (int i = 0; i < 3000; i++) seen.add(train.task(i, "t").prompt());
    int[] perDifficulty = new int[6];
    for (int i = 0; i < 500; i++) {
      var t = held.taskOfDifficulty(100_000 + i, "h", 1 + i % 5);
      assertFalse(seen.contains(t.prompt()), t.prompt());
      assertTrue(TaskGenerator.heldOut(t));
      perDifficulty[t.difficulty()]++;
    }
    assertEquals("[0, 100, 100, 100, 100, 100]", Arrays.toString(perDifficulty));
  }

  @Test void theLearnedPolicyPlaysAnEpisodeAndSumsItsLogProb() {
    var cfg = new ModelConfig(F.tokenizer().vocabSize(), 16, 1, 2, 192, 2, 1e-5);
    var policy = new LearnedPolicy(F, new Decoder(new PolicyModel(cfg, new ReferenceOps(), 1)), 3, 1.0);
    var task = new TaskGenerator(U, 5).coreOnly(true).taskOfDifficulty(5, "t", 2);
    var run = (LearnedPolicy.Run) policy.start(task, 1);
    var a = run.next(null);
    assertTrue(a != null);
    assertTrue(run.logProb() < 0, "an untrained policy's sample has log-probability below 0: " + run.logProb());
    assertEquals("learned@v3", policy.name());
  }
}
