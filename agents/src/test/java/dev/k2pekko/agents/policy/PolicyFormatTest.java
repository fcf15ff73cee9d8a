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

  @Test void garbageParsesToACallTheToolsWillRefuse() {
    int[] junk = F.tokenizer().encode("hello");
    var a = F.parse(junk);
    assertTrue(a instanceof Action.Call c && U.get(c.tool()) == null);
    var noArgs = (Action.Call) F.parse(F.call("calc.add", Map.of()));
    assertTrue(noArgs.arguments().isEmpty());
    var wrongType = (Action.Call) F.parse(F.tokenizer().encode("<call>calc.add a=x|b=2<eos>"));
    assertEquals("x", wrongType.arguments().get("a")); // the schema check names it
  }

  @Test void aTrajectoryBecomesOneSequenceWithTheActionsMarked() {
    var gen = new TaskGenerator(U, 5).coreOnly(true);
    var teacher = new TeacherPolicy(gen, TeacherPolicy.Mistakes.NONE);
    var task = gen.taskOfDifficulty(99, "t", 3);
    var t = OfflinePlay.play(U, teacher, new JudgeRubric(0.8), task, "x");
    assertTrue(t.verdict().accepted());
    var seq = F.sequence(t);
    String text = F.tokenizer().decode(seq.tokens());
    assertTrue(text.startsWith("<bos>#1 "), text);
    assertTrue(text.contains("<result>#3 "), text);
    assertTrue(text.endsWith("<answer>" + t.finalAnswer() + "<eos>"), text);
    // marked exactly: the calls and the answer, nothing the environment wrote
    var marked = new StringBuilder();
    for (int i = 0; i < seq.length(); i++) if (seq.action()[i]) marked.append(F.tokenizer().token(seq.tokens()[i]));
    assertFalse(marked.toString().contains("<result>"));
    assertEquals(3, marked.toString().split("<call>", -1).length - 1);
    assertTrue(seq.length() < 120, "a three-step episode takes " + seq.length() + " tokens");
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
