package dev.k2pekko.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import dev.k2pekko.protocol.PsProtocol.Outcome;
import dev.k2pekko.protocol.PsProtocol.StageKind;
import dev.k2pekko.protocol.PsProtocol.TagOffset;
import java.util.ArrayList;
import java.util.HashMap;
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

  @Test void parameterServerMessagesRoundTripThroughKryo() {
    var kit = KIT.serializationTestKit();
    var offsets = new HashMap<String, TagOffset>();
    offsets.put("trajectories-3", new TagOffset(42, 5));
    offsets.put(PsProtocol.SEALED_KEY, new TagOffset(2, 0));
    var outcomes = KIT.<PsProtocol.PushOutcome>createTestProbe();
    kit.verifySerialization(new PsProtocol.Pushed(3, "learner-0", new ArrayList<>(List.of("run-1/agent-2/0")), offsets, 1.5, 120,
        StageKind.RL, 0.25, outcomes.getRef(), 2), true);
    kit.verifySerialization(new PsProtocol.Pass(3, "learner-1", 2), true);
    kit.verifySerialization(new PsProtocol.PushOutcome(3, "learner-0", Outcome.STALE), true);
    kit.verifySerialization(new PsProtocol.Offsets(offsets, 7), true);
    kit.verifySerialization(new PsProtocol.BadGradient(3, "learner-0", "layer0", "non-finite value in layer0.wq"), true);
    kit.verifySerialization(new PsProtocol.RescaleQK(3, 1, 0, 0.8), true);
    kit.verifySerialization(new PsProtocol.RegisterLearner("learner-0", KIT.<PsProtocol.Weights>createTestProbe().getRef(),
        KIT.<PsProtocol.Offsets>createTestProbe().getRef()), true);

    // records of arrays compare their arrays by reference: these are compared field by field
    var grads = new HashMap<String, float[]>();
    grads.put("layer0.wq", new float[] {1f, -2.5f, Float.MIN_VALUE});
    var push = kit.verifySerialization(new PsProtocol.PushGradient(3, "learner-0", grads), false);
    assertEquals(3, push.version());
    assertEquals("learner-0", push.learnerId());
    assertArrayEquals(grads.get("layer0.wq"), push.grads().get("layer0.wq"));
    assertEquals(grads.keySet(), push.grads().keySet());

    var shape = new PsProtocol.Weights.Shape(1222, 64, 2, 4, 128, 4, 1e-5);
    var weights = new PsProtocol.Weights(9, shape, List.of("tok_emb", "pos_emb"), List.of(new float[] {0.5f, -1f}, new float[] {3f}),
        "0123abcd");
    var back = kit.verifySerialization(weights, false);
    assertEquals(9, back.version());
    assertEquals(shape, back.shape());
    assertEquals(weights.names(), back.names());
    assertEquals(2, back.data().size());
    for (int i = 0; i < 2; i++) assertArrayEquals(weights.data().get(i), back.data().get(i));
    assertEquals("0123abcd", back.sha256());
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
