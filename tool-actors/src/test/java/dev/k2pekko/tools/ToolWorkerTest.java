package dev.k2pekko.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.EndEpisode;
import dev.k2pekko.protocol.ToolCall;
import dev.k2pekko.protocol.ToolError;
import dev.k2pekko.protocol.ToolResult;
import dev.k2pekko.protocol.WorldSnapshot;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** Bad calls get structured errors and never stop the worker; an episode's calls share its world state. */
class ToolWorkerTest {
  static final ActorTestKit KIT = ActorTestKit.create(com.typesafe.config.ConfigFactory.parseString(
      "pekko.actor.provider = local\npekko.actor.serialize-messages = on").withFallback(com.typesafe.config.ConfigFactory.load()));
  static final ToolUniverse U = ToolUniverse.generate(7, Stochasticity.NONE);

  @AfterAll static void stop() { KIT.shutdownTestKit(); }

  @Test void structuredErrorsAndConsistentWorldState() {
    var worker = KIT.spawn(ToolWorker.create(U, new ToolWorker.Settings(7, 4096, Duration.ofMinutes(1))));
    var results = KIT.<ToolResult>createTestProbe();
    var snapshots = KIT.<WorldSnapshot>createTestProbe();

    worker.tell(new ToolCall("ep1", "c0", "no.such.tool", Map.of(), results.getRef()));
    assertEquals(ToolError.UNKNOWN_TOOL, results.receiveMessage().error());
    worker.tell(new ToolCall("ep1", "c1", "calc.add", Map.of("a", "seven", "b", 5L), results.getRef()));
    var wrongType = results.receiveMessage();
    assertEquals(ToolError.INVALID_ARGUMENTS, wrongType.error());
    assertTrue(wrongType.content().contains("'a' must be a finite number"), wrongType.content());
    worker.tell(new ToolCall("ep1", "c2", "calc.add", Map.of("a", 7L), results.getRef()));
    assertEquals(ToolError.INVALID_ARGUMENTS, results.receiveMessage().error());
    worker.tell(new ToolCall("ep1", "c3", "notes.write", Map.of("text", "x".repeat(5000)), results.getRef()));
    assertEquals(ToolError.PAYLOAD_TOO_LARGE, results.receiveMessage().error());
    var nullArg = new LinkedHashMap<String, Object>();
    nullArg.put("text", null);
    worker.tell(new ToolCall("ep1", "c4", "notes.write", nullArg, results.getRef()));
    assertEquals(ToolError.INVALID_ARGUMENTS, results.receiveMessage().error());

    worker.tell(new ToolCall("ep1", "c5", "calc.add", Map.of("a", 7L, "b", 5L), results.getRef()));
    var sum = results.receiveMessage();
    assertTrue(sum.ok());
    assertEquals("12", sum.content());
    worker.tell(new ToolCall("ep1", "c6", "notes.write", Map.of("text", sum.content()), results.getRef()));
    assertEquals("ok", results.receiveMessage().content());
    worker.tell(new ToolCall("ep2", "c0", "notes.write", Map.of("text", "other episode"), results.getRef()));
    results.receiveMessage();
    worker.tell(new ToolCall("ep1", "c7", "notes.read", Map.of(), results.getRef()));
    assertEquals("12", results.receiveMessage().content());

    worker.tell(new EndEpisode("ep1", snapshots.getRef()));
    assertEquals(Map.of("notes:notes", "12"), snapshots.receiveMessage().state());
    worker.tell(new EndEpisode("ep1", snapshots.getRef()));
    assertEquals(Map.of(), snapshots.receiveMessage().state(), "an ended episode is forgotten");
  }

  @Test void transientFailuresAreReproducibleFromTheCallIds() {
    var noisy = ToolUniverse.generate(7, new Stochasticity(0.5, 0, 0));
    var a = KIT.spawn(ToolWorker.create(noisy, new ToolWorker.Settings(7, 4096, Duration.ofMinutes(1))));
    var b = KIT.spawn(ToolWorker.create(noisy, new ToolWorker.Settings(7, 4096, Duration.ofMinutes(1))));
    var probe = KIT.<ToolResult>createTestProbe();
    int failures = 0;
    for (int i = 0; i < 100; i++) {
      a.tell(new ToolCall("ep", "c" + i, "calc.mul", Map.of("a", 2L, "b", 3L), probe.getRef()));
      var ra = probe.receiveMessage();
      b.tell(new ToolCall("ep", "c" + i, "calc.mul", Map.of("a", 2L, "b", 3L), probe.getRef()));
      assertEquals(ra, probe.receiveMessage());
      if (ra.error() == ToolError.TRANSIENT_FAILURE) failures++;
      else assertEquals("6", ra.content());
    }
    assertTrue(failures > 5 && failures < 95, "failures " + failures);
  }

  @Test void callsAreCountedByOutcomeAndRefusalsByReason() {
    var kit = ActorTestKit.create("counting", com.typesafe.config.ConfigFactory.parseString("pekko.actor.provider = local")
        .withFallback(com.typesafe.config.ConfigFactory.load()));
    try {
      var firewall = new Firewall(new Firewall.Settings(true, Firewall.Limit.NONE, Firewall.Limit.NONE, 4096, null, java.util.Set.of()));
      var worker = kit.spawn(ToolWorker.create(U, new ToolWorker.Settings(7, 4096, Duration.ofMinutes(1)), firewall, r -> {}));
      var results = kit.<ToolResult>createTestProbe();
      worker.tell(new dev.k2pekko.protocol.OpenEpisode("ep", "agent-1", java.util.List.of("calc.add")));
      worker.tell(new ToolCall("ep", "c0", "calc.add", Map.of("a", 7L, "b", 5L), results.getRef()));
      worker.tell(new ToolCall("ep", "c1", "calc.add", Map.of("a", 7L), results.getRef()));
      worker.tell(new ToolCall("ep", "c2", "notes.write", Map.of("text", "x"), results.getRef()));
      worker.tell(new ToolCall("ep", "c3", "calc.add", Map.of("a", 1L, "b", 1L), results.getRef()));
      var got = results.receiveSeveralMessages(4);
      assertEquals(ToolError.NOT_OFFERED, got.get(2).error());
      var metrics = dev.k2pekko.metrics.Metrics.get(kit.system());
      assertEquals(2, metrics.counter("k2_tool_calls", "", "outcome", "ok").count());
      assertEquals(1, metrics.counter("k2_tool_calls", "", "outcome", "invalid_arguments").count());
      assertEquals(1, metrics.counter("k2_tool_calls", "", "outcome", "not_offered").count());
      assertEquals(1, metrics.counter("k2_firewall_refusals", "", "reason", "NOT_OFFERED").count());
      assertEquals(0, metrics.counter("k2_firewall_refusals", "", "reason", "RATE_LIMITED").count());
    } finally {
      kit.shutdownTestKit();
    }
  }
}
