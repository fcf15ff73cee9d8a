package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** A chat-completions request read and checked without a server: what the policy is asked, or the one error a client gets. */
class ChatRequestTest {
  private static final ToolUniverse UNIVERSE = ToolUniverse.generate(7, Stochasticity.NONE);
  private static final PolicyFormat FORMAT = new PolicyFormat(UNIVERSE);
  /** A dotted tool the policy can call, as a client names it (dots as __). */
  private static final String TOOL = UNIVERSE.all().stream().map(t -> t.name()).filter(FORMAT::knows).filter(n -> n.contains(".")).sorted()
      .findFirst().orElseThrow();

  private static ChatRequest parse(String json, int context) {
    return ChatRequest.parse(json.getBytes(StandardCharsets.UTF_8), "k2", FORMAT, UNIVERSE, context);
  }

  private static ChatRequest parse(String json) {
    return parse(json, 4096);
  }

  @Test void theLastUserMessageIsTheTaskAndEachAnsweredCallAStep() {
    String client = TOOL.replace(".", "__");
    var r = parse("""
        {"model": "k2", "temperature": 0.5, "seed": 3, "max_tokens": 9,
         "tools": [{"type": "function", "function": {"name": "%s"}}],
         "messages": [{"role": "system", "content": "ignored"}, {"role": "user", "content": "an earlier task"},
                      {"role": "user", "content": [{"type": "text", "text": "the "}, {"type": "text", "text": "task"}]},
                      {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "%s", "arguments": "{\\"x\\": 1}"}}]},
                      {"role": "tool", "tool_call_id": "c1", "content": "{\\"error\\": \\"TIMEOUT\\", \\"message\\": \\"slow\\"}"}]}
        """.formatted(client, client));
    assertEquals("the task", r.prompt());
    assertEquals(1, r.history().size());
    var step = r.history().getFirst();
    assertEquals(TOOL, step.tool(), "the client's __ read as the universe's dot");
    assertEquals("TIMEOUT", step.error());
    assertEquals("slow", step.result());
    assertEquals(client, r.clientNames().get(TOOL), "the answer names the tool as the client did");
    assertEquals(0.5, r.temperature());
    assertEquals(3, r.seed());
    assertEquals(9, r.maxTokens());
    assertTrue(r.limits().mayCall() && r.limits().mayAnswer());
    assertEquals(Set.of(TOOL), r.limits().tools());
  }

  /**
   * A kg policy (k2.policy.tasks = kg) served without its MCP server attached: the client's {@code mem__create_entities}
   * is the policy's {@code mem.create_entities}, and a nested call in the history reads back as the JSON it was.
   */
  @Test void aGraphPolicysToolsAreOfferedAndItsNestedCallsReadBack() {
    var kg = new PolicyFormat(UNIVERSE, new dev.k2pekko.agents.tasks.KnowledgeGraphTasks("mem").vocabulary());
    var r = ChatRequest.parse("""
        {"model": "k2", "tools": [{"type": "function", "function": {"name": "mem__create_entities"}}],
         "messages": [{"role": "user", "content": "t"},
                      {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "mem__create_entities",
                       "arguments": "{\\"entities\\": [{\\"name\\": \\"Ada\\", \\"observations\\": [\\"x\\"]}]}"}}]},
                      {"role": "tool", "tool_call_id": "c1", "content": "[]"}]}
        """.getBytes(StandardCharsets.UTF_8), "k2", kg, UNIVERSE, 4096);
    assertEquals(Set.of("mem.create_entities"), r.limits().tools());
    var step = r.history().getFirst();
    assertEquals("mem.create_entities", step.tool());
    assertEquals("entities=[{name=Ada|observations=[x]}]", dev.k2pekko.agents.policy.NestedArgs.renderArguments(step.arguments()));
    assertEquals("mem__create_entities", r.clientNames().get("mem.create_entities"));
  }

  @Test void aNamedToolChoiceMeansThatToolAndNoAnswer() {
    var r = parse("""
        {"model": "k2", "tools": [{"type": "function", "function": {"name": "%s"}}],
         "tool_choice": {"type": "function", "function": {"name": "%s"}}, "messages": [{"role": "user", "content": "t"}]}
        """.formatted(TOOL, TOOL));
    assertFalse(r.limits().mayAnswer());
    assertEquals(Set.of(TOOL), r.limits().tools());
  }

  @Test void eachMistakeIsOneErrorThatNamesItsParameter() {
    record Case(String body, int status, String param) {}
    for (var c : new Case[] {
        new Case("[1]", 400, null),
        new Case("{\"model\": \"gpt\", \"messages\": [{\"role\": \"user\", \"content\": \"t\"}]}", 404, "model"),
        new Case("{\"model\": \"k2\", \"temperature\": 3, \"messages\": [{\"role\": \"user\", \"content\": \"t\"}]}", 400, "temperature"),
        new Case("{\"model\": \"k2\", \"tool_choice\": \"required\", \"messages\": [{\"role\": \"user\", \"content\": \"t\"}]}", 400, "tool_choice"),
        new Case("{\"model\": \"k2\", \"messages\": [{\"role\": \"tool\", \"tool_call_id\": \"x\", \"content\": \"r\"}, {\"role\": \"user\", \"content\": \"t\"}]}",
            200, null),
        new Case("{\"model\": \"k2\", \"messages\": [{\"role\": \"user\", \"content\": \"t\"}, {\"role\": \"tool\", \"tool_call_id\": \"x\", \"content\": \"r\"}]}",
            400, "messages[1].tool_call_id"),
        new Case("{\"model\": \"k2\", \"messages\": []}", 400, "messages")}) {
      if (c.status() == 200) {
        parse(c.body()); // a tool message before the task is not part of the view
        continue;
      }
      var e = assertThrows(ChatServer.ApiError.class, () -> parse(c.body()), c.body());
      assertEquals(c.status(), e.status, c.body());
      assertEquals(c.param(), e.param, c.body());
    }
  }

  @Test void aConversationOverTheContextIsRefusedBeforeThePolicyIsAsked() {
    var e = assertThrows(ChatServer.ApiError.class, () -> parse("{\"model\": \"k2\", \"messages\": [{\"role\": \"user\", \"content\": \"a long task\"}]}", 3));
    assertEquals("context_length_exceeded", e.code);
  }
}
