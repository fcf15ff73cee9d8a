package dev.k2pekko.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** Kryo on the wire with registration required; Jackson CBOR in the journal, reading events of older versions. */
class SerializationTest {
  static final ActorTestKit KIT = ActorTestKit.create(ConfigFactory.parseString("""
      pekko.actor.provider = local
      pekko.actor.allow-java-serialization = off
      """).withFallback(ConfigFactory.load()));

  @AfterAll static void stop() { KIT.shutdownTestKit(); }

  static Trajectory trajectory(String policy) {
    var args = new LinkedHashMap<String, Object>();
    args.put("a", 7L);
    args.put("b", 5.5);
    args.put("flag", true);
    var steps = new ArrayList<Step>();
    steps.add(new Step("call_0", "calc.add", args, "12.5", null, false));
    steps.add(new Step("call_1", "notes.write", Map.of("text", "12.5"), "busy", "TRANSIENT_FAILURE", false));
    return new Trajectory("run/agent-1/0", "t-1", "core", 2, 99L, "sys", "Calculate", List.of("calc.add", "notes.write"),
        steps, "12.5", new Verdict(true, 1.0, 0.9, List.of()), policy);
  }

  @Test void wireMessagesRoundTripThroughKryo() {
    var kit = KIT.serializationTestKit();
    var probe = KIT.<ToolResult>createTestProbe();
    kit.verifySerialization(new ToolCall("ep", "c0", "calc.add", Map.of("a", 7L, "b", 5L), probe.getRef()), true);
    kit.verifySerialization(ToolResult.failed("c0", ToolError.INVALID_ARGUMENTS, "bad"), true);
    kit.verifySerialization(ToolResult.failed("c1", ToolError.PATH_OUTSIDE_SANDBOX, "{\"refused\":\"..\"}"), true);
    kit.verifySerialization(new OpenEpisode("ep", "agent-1", List.of("calc.add", "notes.write")), true);
    kit.verifySerialization(new WorldSnapshot("ep", Map.of("notes:notes", "12")), true);
    kit.verifySerialization(trajectory("teacher"), true);
    var serializer = SerializationExtension.get(Adapter.toClassic(KIT.system())).findSerializerFor(trajectory("teacher"));
    assertEquals(KryoSerializer.class, serializer.getClass());
  }

  @Test void kryoRefusesUnregisteredClasses() {
    var ser = new KryoSerializer((org.apache.pekko.actor.ExtendedActorSystem) Adapter.toClassic(KIT.system()));
    record Unregistered(int x) implements KryoWire {}
    var e = assertThrows(RuntimeException.class, () -> ser.toBinary(new Unregistered(1)));
    assertTrue(e.getMessage().contains("Class is not registered"), e.getMessage());
  }

  @Test void journalEventsUseJacksonCborAndReadVersionOne() throws Exception {
    var serialization = SerializationExtension.get(Adapter.toClassic(KIT.system()));
    var event = new TrajectoryRecorded(trajectory("learned-v3"), "collector|0", 1234L);
    var serializer = serialization.findSerializerFor(event);
    assertEquals("JacksonCborSerializer", serializer.getClass().getSimpleName());
    var bytes = serializer.toBinary(event);
    var manifest = Serializers.manifestFor(serializer, event);
    assertEquals(event, serialization.deserialize(bytes, serializer.identifier(), manifest).get());
    var batch = new TrajectoriesRecorded(List.of(trajectory("teacher"), trajectory("learned-v3")), "collector|1", 99L);
    var batchSerializer = serialization.findSerializerFor(batch);
    assertEquals("JacksonCborSerializer", batchSerializer.getClass().getSimpleName());
    assertEquals(batch, serialization.deserialize(batchSerializer.toBinary(batch), batchSerializer.identifier(),
        Serializers.manifestFor(batchSerializer, batch)).get());

    var refused = new CallsRefused(List.of(new CallsRefused.Refusal("ep", "agent-1", "call_0", "calc.max", "NOT_OFFERED",
        "calc.max was not offered", 5L)), "k2@127.0.0.1:2551");
    var refusedSerializer = serialization.findSerializerFor(refused);
    assertEquals("JacksonCborSerializer", refusedSerializer.getClass().getSimpleName());
    assertEquals(refused, serialization.deserialize(refusedSerializer.toBinary(refused), refusedSerializer.identifier(),
        Serializers.manifestFor(refusedSerializer, refused)).get());

    // Written by version 1, before trajectories named their policy (see src/test/resources/trajectory-recorded-v1.cbor).
    try (var in = getClass().getResourceAsStream("/trajectory-recorded-v1.cbor")) {
      var v1 = in.readAllBytes();
      var old = (TrajectoryRecorded) serialization.deserialize(v1, serializer.identifier(), TrajectoryRecorded.class.getName()).get();
      assertEquals("teacher", old.trajectory().policy());
      assertEquals("run/agent-1/0", old.trajectory().trajectoryId());
      assertEquals(7L, ((Number) old.trajectory().steps().get(0).arguments().get("a")).longValue());
    }
  }
}
