package dev.k2pekko.agents.inference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** The inference server: verified swaps, episodes pinned to the version that began them, batched requests. */
class InferenceServerTest {
  static final ActorTestKit kit = ActorTestKit.create(ConfigFactory.load(ConfigFactory.parseMap(Map.of("pekko.actor.provider", "local"))
      .withFallback(ConfigFactory.parseResources("application.conf"))));
  static final ToolUniverse U = ToolUniverse.generate(7, Stochasticity.NONE);
  static final PolicyFormat F = new PolicyFormat(U);
  static final ModelConfig CFG = new ModelConfig(F.tokenizer().vocabSize(), 16, 1, 2, 192, 2, 1e-5);

  @AfterAll static void stop() { kit.shutdownTestKit(); }

  static InferenceServer.Stats stats(org.apache.pekko.actor.typed.ActorRef<InferenceServer.Command> s) {
    var p = kit.<InferenceServer.Stats>createTestProbe();
    s.tell(new InferenceServer.GetStats(p.getRef()));
    return p.receiveMessage();
  }

  @Test void threadsAreAutoOrAPositiveNumber() {
    var base = ConfigFactory.parseMap(Map.of("window", "2ms", "max-batch", 8));
    assertEquals(Runtime.getRuntime().availableProcessors(), dev.k2pekko.agents.NodeServices.inferenceSettings(base.withFallback(ConfigFactory.parseMap(Map.of("threads", "auto")))).threads());
    assertEquals(3, dev.k2pekko.agents.NodeServices.inferenceSettings(base.withFallback(ConfigFactory.parseMap(Map.of("threads", "3")))).threads());
    for (var bad : new String[] {"0", "-1", "two"}) {
      var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
          () -> dev.k2pekko.agents.NodeServices.inferenceSettings(base.withFallback(ConfigFactory.parseMap(Map.of("threads", bad)))));
      assertTrue(e.getMessage().contains("k2.inference.threads"), e.getMessage());
    }
  }

  @Test void damagedWeightsAreRefusedAndEpisodesKeepTheirVersion() {
    var server = kit.spawn(InferenceServer.create(F, new InferenceServer.Settings(Duration.ofMillis(2), 8)));
    var task = new TaskGenerator(U, 5).coreOnly(true).taskOfDifficulty(3, "t", 2);
    var replies = kit.<InferenceServer.Reply>createTestProbe();
    // no weights yet: a clear error, not a hang
    server.tell(new InferenceServer.Begin("e0", task, 1, 0, replies.getRef()));
    var none = replies.receiveMessage();
    assertTrue(none.error().startsWith("no-policy"), none.error());

    var v1 = WeightsSnapshot.of(1, new PolicyModel(CFG, new ReferenceOps(), 1));
    server.tell(new InferenceServer.NewWeights(v1));
    server.tell(new InferenceServer.Begin("e1", task, 1, 0, replies.getRef()));
    var first = replies.receiveMessage();
    assertNull(first.error());
    assertEquals(1, first.version());

    // a damaged version 2 is refused: the server stays at 1
    var v2 = WeightsSnapshot.of(2, new PolicyModel(CFG, new ReferenceOps(), 2));
    var data = new ArrayList<>(v2.data());
    float[] bad = data.get(0).clone();
    bad[0] += 1;
    data.set(0, bad);
    server.tell(new InferenceServer.NewWeights(new WeightsSnapshot(2, CFG, v2.names(), data, v2.sha256())));
    var st = stats(server);
    assertEquals(1, st.version());
    assertEquals(1, st.weightsRejected());

    // a good version 2 swaps in for new episodes; e1 stays pinned to version 1
    server.tell(new InferenceServer.NewWeights(v2));
    assertEquals(2, stats(server).version());
    var step = new dev.k2pekko.protocol.Step("c0", "calc.add", Map.of("a", 1L, "b", 2L), "3", null, false);
    server.tell(new InferenceServer.Continue("e1", step, replies.getRef()));
    assertEquals(1, replies.receiveMessage().version());
    server.tell(new InferenceServer.Begin("e2", task, 2, 0, replies.getRef()));
    assertEquals(2, replies.receiveMessage().version());
    server.tell(new InferenceServer.End("e1"));
    server.tell(new InferenceServer.Continue("e1", step, replies.getRef()));
    assertTrue(replies.receiveMessage().error().startsWith("no-session"));
  }

  /** What is registered under the weights key now. */
  static Set<ActorRef<PsProtocol.Weights>> subscribers() {
    var p = kit.<Receptionist.Listing>createTestProbe();
    kit.system().receptionist().tell(Receptionist.find(PsProtocol.WEIGHTS, p.getRef()));
    return p.receiveMessage().getServiceInstances(PsProtocol.WEIGHTS);
  }

  static PsProtocol.Weights wire(WeightsSnapshot s, ModelConfig c) {
    return new PsProtocol.Weights(s.version(), new PsProtocol.Weights.Shape(c.vocab(), c.dModel(), c.layers(), c.heads(), c.context(),
        c.mlpRatio(), c.normEps()), s.names(), s.data(), s.sha256());
  }

  @Test void publishedVersionsComeUnderTheWeightsKeyAndAreVerified() {
    var before = subscribers();
    var server = kit.spawn(InferenceServer.create(F, new InferenceServer.Settings(Duration.ofMillis(2), 8)));
    var mine = new HashSet<ActorRef<PsProtocol.Weights>>();
    var probe = kit.createTestProbe();
    probe.awaitAssert(() -> {
      mine.clear();
      mine.addAll(subscribers());
      mine.removeAll(before);
      assertEquals(1, mine.size(), "the new server's subscription");
      return null;
    });
    var sub = mine.iterator().next();
    var v1 = WeightsSnapshot.of(1, new PolicyModel(CFG, new ReferenceOps(), 1));
    sub.tell(wire(v1, CFG));
    probe.awaitAssert(() -> { assertEquals(1, stats(server).version()); return null; });

    // a shape no model can have (dModel 16 over 3 heads) is refused like a wrong checksum: the server stays at 1
    var v2 = WeightsSnapshot.of(2, new PolicyModel(CFG, new ReferenceOps(), 2));
    var badShape = new PsProtocol.Weights(2, new PsProtocol.Weights.Shape(CFG.vocab(), CFG.dModel(), CFG.layers(), 3, CFG.context(),
        CFG.mlpRatio(), CFG.normEps()), v2.names(), v2.data(), v2.sha256());
    sub.tell(badShape);
    probe.awaitAssert(() -> { assertEquals(1, stats(server).weightsRejected()); return null; });
    // the same numbers of another valid shape do not match the checksum
    var otherShape = new PsProtocol.Weights(2, new PsProtocol.Weights.Shape(CFG.vocab(), CFG.dModel(), CFG.layers(), 4, CFG.context(),
        CFG.mlpRatio(), CFG.normEps()), v2.names(), v2.data(), v2.sha256());
    sub.tell(otherShape);
    probe.awaitAssert(() -> { assertEquals(2, stats(server).weightsRejected()); return null; });
    assertEquals(1, stats(server).version());

    sub.tell(wire(v2, CFG));
    probe.awaitAssert(() -> { assertEquals(2, stats(server).version()); return null; });
    assertEquals(2, stats(server).weightsRejected());
  }

  @Test void requestsAreServedInBatches() {
    var server = kit.spawn(InferenceServer.create(F, new InferenceServer.Settings(Duration.ofMillis(50), 16)));
    server.tell(new InferenceServer.NewWeights(WeightsSnapshot.of(1, new PolicyModel(CFG, new ReferenceOps(), 1))));
    var replies = kit.<InferenceServer.Reply>createTestProbe();
    var gen = new TaskGenerator(U, 5).coreOnly(true);
    for (int i = 0; i < 12; i++) server.tell(new InferenceServer.Begin("b" + i, gen.taskOfDifficulty(i, "t" + i, 1 + i % 5), i, 1.0, replies.getRef()));
    for (int i = 0; i < 12; i++) assertNotNull(replies.receiveMessage(Duration.ofSeconds(10)).action());
    var st = stats(server);
    assertEquals(12, st.requests() - 0);
    assertTrue(st.maxBatchSeen() >= 6, "largest batch " + st.maxBatchSeen() + " of 12 requests within one 50 ms window");
    assertTrue(st.batches() <= 4, st.batches() + " batches");
  }
}
