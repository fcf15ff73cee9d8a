package dev.k2pekko.agents.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.agents.tasks.KnowledgeGraphTasks;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The nested arguments of the learned policy's MCP calls: they read back to the JSON arguments they were written from,
 * malformed text is refused with the place and what was expected, and the knowledge-graph tasks' actions and views
 * fit the policy's action and context limits.
 */
class NestedArgsTest {
  static final ToolUniverse U = ToolUniverse.generate(7, Stochasticity.NONE);
  static final KnowledgeGraphTasks KG = new KnowledgeGraphTasks("mem");
  static final PolicyFormat CORE = new PolicyFormat(U), F = new PolicyFormat(U, KG.vocabulary());

  @Test void nestedArgumentsRoundTrip() {
    Map<String, Object> args = Map.of("entities", List.of(
        Map.of("observations", List.of("likes tea", "a|b [c] {d} \\e"), "name", "Ada", "entityType", "person"),
        Map.of("name", "Acme", "entityType", "organization", "observations", List.of())));
    String text = NestedArgs.renderArguments(args);
    // fixed key order whatever the map's: the memory server's own
    assertEquals("entities=[{name=Ada|entityType=person|observations=[likes tea|a\\|b \\[c\\] \\{d\\} \\\\e]}|{name=Acme|entityType=organization|observations=[]}]", text);
    assertEquals(args, NestedArgs.parseArguments(text));
    // as the journal gives them back: Scala collections, the same text
    var scalaArgs = Map.<String, Object>of("entities", scala.jdk.javaapi.CollectionConverters.asScala(List.<Object>of(
        scala.collection.immutable.Map.from(scala.jdk.javaapi.CollectionConverters.asScala(Map.of("observations",
            scala.jdk.javaapi.CollectionConverters.asScala(List.of("likes tea", "a|b [c] {d} \\e")).toList(), "name", "Ada", "entityType", "person"))),
        Map.of("name", "Acme", "entityType", "organization", "observations", List.of()))).toList());
    assertEquals(text, NestedArgs.renderArguments(scalaArgs));
    assertEquals(Map.of("a", "", "b", Map.of(), "c", List.of(), "d", List.of("", "x=y")), NestedArgs.parseArguments("a=|b={}|c=[]|d=[|x=y]"));
    assertEquals(List.of(), NestedArgs.parse("[]"));
    assertEquals(Map.of(), NestedArgs.parseArguments(""));
  }

  @Test void malformedTextIsRefusedSayingWhereAndWhat() {
    var cases = Map.of(
        "entities=[{name=Ada", "expected '}' to close the object",
        "entities=[x", "'[' is never closed",
        "entities=[{name=Ada]", "expected '|' or '}'",
        "entities", "found no '='",
        "=x", "expected a key",
        "a=1]", "expected '|' or the end",
        "a=x\\", "a backslash at the end",
        "a=1|a=2", "given twice",
        "a=x{y", "inside a value",
        "a=[x;y}", "expected '|' or ']'");
    cases.forEach((text, what) -> {
      var e = assertThrows(NestedArgs.Malformed.class, () -> NestedArgs.parseArguments(text), text);
      assertTrue(e.getMessage().contains(what) && e.getMessage().contains("'" + text + "'") && e.getMessage().contains("at character"), text + ": " + e.getMessage());
    });
    // in an action, a malformed call still goes to its tool, without arguments: the server's refusal is the step's error
    int[] tokens = F.tokenizer().encode("mem.create_entities entities=[{name=Ada");
    int[] action = PolicyFormat.concat(new int[] {F.callToken()}, tokens, new int[] {F.eos()});
    assertEquals(new Action.Call("mem.create_entities", Map.of()), F.parse(action));
  }

  /** Every call of every difficulty's plan reads back as itself, within the action limit; views fit the context. */
  @Test void theGraphTasksPlaysFitThePolicy() throws Exception {
    int longestAction = 0, longestView = 0;
    for (long seed = 1; seed <= 300; seed++) {
      var task = KG.task(seed, "t", 1 + (int) (seed % 3));
      var steps = new ArrayList<Step>();
      for (var p : task.plan()) {
        int[] call = F.call(p.tool(), p.arguments());
        longestAction = Math.max(longestAction, call.length - 1); // the <call> token is written by the policy too, counted by the limit
        assertEquals(new Action.Call(p.tool(), p.arguments()), F.parse(call));
        // the server answers pretty-printed JSON of what it created; the view shows it compactly
        String result = new com.fasterxml.jackson.databind.ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(p.arguments().values().iterator().next());
        steps.add(new Step("call_" + steps.size(), p.tool(), p.arguments(), result, null, false));
        longestView = Math.max(longestView, F.view(task.prompt(), steps).length);
      }
      assertEquals(new Action.Answer("done"), F.parse(F.answer("done")));
    }
    System.out.println("kg: longest action " + longestAction + " tokens, longest view " + longestView);
    assertTrue(longestAction <= LearnedPolicy.MAX_ACTION_TOKENS, "longest action " + longestAction);
    assertTrue(longestView + longestAction <= 192, "longest view " + longestView + " + action " + longestAction + " > the context of 192");
  }

  /** The file tasks' calls (flat arguments) read back as themselves, within the limits. */
  @Test void theFileTasksPlaysFitThePolicy() {
    var files = new dev.k2pekko.agents.tasks.FileTasks("fs");
    var fs = new PolicyFormat(U, files.vocabulary());
    int longest = 0;
    for (long seed = 1; seed <= 300; seed++) {
      var task = files.task(seed, "t", 1 + (int) (seed % 3), TaskGenerator.Split.TRAIN);
      var steps = new ArrayList<Step>();
      for (var p : task.plan()) {
        int[] call = fs.call(p.tool(), p.arguments());
        assertEquals(new Action.Call(p.tool(), p.arguments()), fs.parse(call));
        steps.add(new Step("call_" + steps.size(), p.tool(), p.arguments(), "Successfully wrote to report.txt", null, false));
        longest = Math.max(longest, fs.view(task.prompt(), steps).length + call.length);
      }
    }
    assertTrue(longest <= 192, "view and action of " + longest + " tokens");
  }

  @Test void theCoreTokensKeepTheirIdsAndTheSplitIsThePromptsOwn() {
    var core = CORE.tokenizer().vocabulary();
    assertEquals(core, F.tokenizer().vocabulary().subList(0, core.size()));
    var held = new ArrayList<String>();
    for (long seed = 1; seed <= 200; seed++) {
      var h = KG.task(seed, "h", 2, TaskGenerator.Split.HELD_OUT);
      var t = KG.task(seed, "t", 2, TaskGenerator.Split.TRAIN);
      assertTrue(TaskGenerator.heldOut(h) && !TaskGenerator.heldOut(t));
      held.add(h.prompt());
    }
    for (long seed = 1; seed <= 2000; seed++) {
      assertTrue(!held.contains(KG.task(seed, "t", 2, TaskGenerator.Split.TRAIN).prompt()), "a held-out prompt among the training tasks");
    }
  }
}
