package dev.k2pekko.ps.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.optim.AdaptiveThreshold;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.optim.QkClip;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.protocol.ClipMonitorProtocol.CloseStep;
import dev.k2pekko.protocol.ClipMonitorProtocol.StepMaxLogits;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.protocol.PsProtocol.PushOutcome;
import dev.k2pekko.protocol.PsProtocol.Pushed;
import dev.k2pekko.protocol.PsProtocol.TagOffset;
import dev.k2pekko.protocol.PsProtocol.Weights;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The coordinator and its groups on a one-node cluster: a synchronous step equals MuonClip applied to the mean
 * gradient, rescales come after the optimizer, non-finite gradients are rejected, stale ones refused, and a
 * restarted coordinator comes back at its checkpointed version with its offsets.
 */
class ParameterServerTest {
  static final ModelConfig CFG = new ModelConfig(12, 8, 1, 2, 6, 2, 1e-5);
  static ActorTestKit kit;
  static Path dir;

  @BeforeAll static void start() throws Exception {
    dir = Files.createTempDirectory("k2-ps-test");
    var config = ConfigFactory.parseMap(Map.of(
            "pekko.actor.serialize-messages", "on",
            "pekko.remote.artery.canonical.port", 0,
            "pekko.loglevel", "WARNING"))
        .withFallback(ConfigFactory.parseResources("application.conf"));
    kit = ActorTestKit.create("ps-test", ConfigFactory.load(config));
    var cluster = Cluster.get(kit.system());
    cluster.manager().tell(Join.create(cluster.selfMember().address()));
    PsGroup.init(kit.system());
  }

  @AfterAll static void stop() {
    kit.shutdownTestKit();
  }

  /** A clip-monitor that answers every step with the given per-head maxima (layers x heads). */
  static ActorRef<ClipMonitorProtocol.Command> monitor(double[][] maxLogit) {
    return kit.spawn(Behaviors.receive(ClipMonitorProtocol.Command.class).onMessage(CloseStep.class, c -> {
      c.replyTo().tell(new StepMaxLogits(c.version(), maxLogit, c.contributors().size(), c.contributors().size()));
      return Behaviors.same();
    }).build());
  }

  static ActorRef<ClipMonitorProtocol.Command> monitor() {
    return monitor(new double[][] {{0, 0}});
  }

  static PsSettings settings(String run, PsSettings.Mode mode, int staleness, boolean clip, int checkpointEvery) {
    var opt = MuonClip.Config.defaults().withWeightDecay(0.1).withClip(clip, 100);
    return PsSettings.builder(run, CFG, dir.resolve("checkpoints"), "jdbc:h2:mem:" + run + ";DB_CLOSE_DELAY=-1").jdbcUser("sa")
        .seed(5).optimizer(opt).mode(mode).staleness(staleness).lrSft(0.05).lrRl(0.01).warmup(1).decaySteps(0)
        .syncTimeout(Duration.ofSeconds(5)).clipTimeout(Duration.ofSeconds(2)).applyTimeout(Duration.ofSeconds(10))
        .checkpointEvery(checkpointEvery).keepCheckpoints(3).build();
  }

  static HashMap<String, float[]> randomGrads(long seed, boolean nan) {
    var rnd = new Random(seed);
    var g = new HashMap<String, float[]>();
    for (var s : PolicyModel.specsOf(CFG)) {
      float[] f = new float[s.size()];
      for (int i = 0; i < f.length; i++) f[i] = (float) rnd.nextGaussian();
      if (nan && s.name().equals("layer0.w1")) f[3] = Float.NaN;
      g.put(s.name(), f);
    }
    return g;
  }

  static void push(long version, String learner, HashMap<String, float[]> grads, ActorRef<PsProtocol.ToCoordinator> coord, ActorRef<PushOutcome> refused,
                   Map<String, TagOffset> offsets) {
    var sharding = org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding.get(kit.system());
    PsProtocol.byGroup(grads).forEach((group, g) -> sharding.entityRefFor(PsGroup.KEY, group).tell(new PsProtocol.PushGradient(version, learner, g)));
    coord.tell(new Pushed(version, learner, new ArrayList<>(List.of(learner + "/t" + version)), new HashMap<>(offsets), 1.0, 10, PsProtocol.StageKind.SFT, Double.NaN, refused));
  }

  static ActorRef<PsProtocol.ToCoordinator> coordinator(PsSettings s, ActorRef<ClipMonitorProtocol.Command> monitor) {
    var c = kit.spawn(PsCoordinator.create(s, monitor));
    CoordinatorAddress.register(kit.system(), c);
    return c;
  }

  /** A published version as a learner takes it: a snapshot of the wire form's fields, verified. */
  static WeightsSnapshot verified(Weights w) {
    var sh = w.shape();
    var config = new ModelConfig(sh.vocab(), sh.dModel(), sh.layers(), sh.heads(), sh.context(), sh.mlpRatio(), sh.normEps());
    assertEquals(CFG, config);
    return new WeightsSnapshot(w.version(), config, w.names(), w.data(), w.sha256()).verify();
  }

  static PsCoordinator.Status status(ActorRef<PsProtocol.ToCoordinator> c) {
    var p = kit.<PsCoordinator.Status>createTestProbe();
    c.tell(new PsCoordinator.GetStatus(p.getRef()));
    return p.receiveMessage();
  }

  @Test void aSynchronousStepIsMuonClipOnTheMeanGradientThenTheRescales() {
    var c = coordinator(settings("sync1", PsSettings.Mode.SYNC, 0, true, 0), monitor(new double[][] {{20, 400}}));
    TestProbe<Weights> a = kit.createTestProbe(), b = kit.createTestProbe();
    TestProbe<PushOutcome> refused = kit.createTestProbe();
    c.tell(new PsProtocol.RegisterLearner("a", a.getRef(), kit.<PsProtocol.Offsets>createTestProbe().getRef()));
    c.tell(new PsProtocol.RegisterLearner("b", b.getRef(), kit.<PsProtocol.Offsets>createTestProbe().getRef()));
    var v0 = verified(a.receiveMessage(Duration.ofSeconds(10)));
    assertEquals(0, b.receiveMessage().version());
    var ga = randomGrads(1, false);
    var gb = randomGrads(2, false);
    push(0, "a", ga, c, refused.getRef(), Map.of("trajectories-0", new TagOffset(7, 2)));
    a.expectNoMessage(Duration.ofMillis(200)); // b has not pushed: a synchronous step waits
    push(0, "b", gb, c, refused.getRef(), Map.of("trajectories-1", new TagOffset(9, 1)));
    var v1 = verified(a.receiveMessage(Duration.ofSeconds(10)));
    assertEquals(1, v1.version());
    assertEquals(v1.sha256(), b.receiveMessage().sha256());

    // the same step done directly: Muon/AdamW as MuonClip routes them, on the mean gradient, no clip
    var ops = new ReferenceOps();
    var model = v0.toModel(ops);
    var mean = new LinkedHashMap<String, Tensor>();
    for (var s : PolicyModel.specsOf(CFG)) {
      double[] d = new double[s.size()];
      for (int i = 0; i < d.length; i++) d[i] = ((double) ga.get(s.name())[i] + gb.get(s.name())[i]) / 2;
      mean.put(s.name(), ops.tensor(s.rows(), s.cols(), d));
    }
    new MuonClip(MuonClip.Config.defaults().withWeightDecay(0.1).withClip(false, 100), model).step(model, mean, new double[][] {{0, 0}}, 0.05);
    var got = v1.asMap();
    int hd = CFG.headDim();
    for (var s : PolicyModel.specsOf(CFG)) {
      float[] want = WeightsSnapshot.toFloats(model.parameter(s.name()));
      boolean qk = s.name().equals("layer0.wq") || s.name().equals("layer0.wk");
      for (int i = 0; i < want.length; i++) {
        // head 1's max 400 over tau 100: gamma 0.25, alpha 0.5: its rows of W_q and W_k are each scaled by 0.5 after the step
        double expected = qk && i / CFG.dModel() >= hd ? want[i] * 0.5 : want[i];
        assertEquals(expected, got.get(s.name())[i], 2e-6, s.name() + "[" + i + "]");
      }
    }
    var st = status(c);
    assertEquals(1, st.version());
    assertEquals(Map.of(0L, 2), st.consumedPerVersion());
    assertEquals(Map.of("trajectories-0", new TagOffset(7, 2), "trajectories-1", new TagOffset(9, 1)), st.offsets());
    assertEquals(1L, st.counters().get("heads_clipped"));
    kit.stop(c);
  }

  /** A clip-monitor that answers step v with maxima[v] (layers x heads). */
  static ActorRef<ClipMonitorProtocol.Command> scripted(double[][][] maxima) {
    return kit.spawn(Behaviors.receive(ClipMonitorProtocol.Command.class).onMessage(CloseStep.class, c -> {
      c.replyTo().tell(new StepMaxLogits(c.version(), maxima[(int) c.version()], c.contributors().size(), c.contributors().size()));
      return Behaviors.same();
    }).build());
  }

  /** Steps 0..maxima.length-1 of one learner through a coordinator clipping as {@code mode} says at tau 100; its RescaleQK count. */
  static long rescalesOrdered(String run, QkClip.Mode mode, double[][][] maxima) {
    return rescalesOrdered(run, mode, 0, maxima);
  }

  static long rescalesOrdered(String run, QkClip.Mode mode, double headroom, double[][][] maxima) {
    return clipRun(run, mode, headroom, maxima.length, scripted(maxima)).counters().getOrDefault("heads_clipped", 0L);
  }

  /** {@code steps} steps of one learner through a coordinator clipping as {@code mode} says at tau 100; its status after them. */
  static PsCoordinator.Status clipRun(String run, QkClip.Mode mode, int steps, ActorRef<ClipMonitorProtocol.Command> monitor) {
    return clipRun(run, mode, 0, steps, monitor);
  }

  static PsCoordinator.Status clipRun(String run, QkClip.Mode mode, double headroom, int steps, ActorRef<ClipMonitorProtocol.Command> monitor) {
    // adaptive: warm-up 2 steps, threshold = the head's running mean (kappa 0), floor 25
    var s = PsSettings.builder(run, CFG, dir.resolve("checkpoints"), "jdbc:h2:mem:" + run + ";DB_CLOSE_DELAY=-1").jdbcUser("sa")
        .seed(5).optimizer(MuonClip.Config.defaults().withClip(mode, 100)).adaptive(new AdaptiveThreshold.Config(100, 25, 0, 0.5, 2))
        .lrSft(0.05).warmup(1).decaySteps(0).clipTimeout(Duration.ofSeconds(2)).checkpointEvery(0).clipHeadroom(headroom).build();
    var c = coordinator(s, monitor);
    TestProbe<Weights> a = kit.createTestProbe();
    TestProbe<PushOutcome> outcome = kit.createTestProbe();
    c.tell(new PsProtocol.RegisterLearner("a", a.getRef(), kit.<PsProtocol.Offsets>createTestProbe().getRef()));
    assertEquals(0, a.receiveMessage(Duration.ofSeconds(10)).version());
    for (int v = 0; v < steps; v++) {
      push(v, "a", randomGrads(v, false), c, outcome.getRef(), Map.of());
      assertEquals(v + 1, a.receiveMessage(Duration.ofSeconds(10)).version());
    }
    var st = status(c);
    kit.stop(c);
    return st;
  }

  @Test void withHeadroomTheHeadsOverTauLessTheHeadroomAreRescaled() {
    // tau 100, headroom 0.1: heads over 90 are rescaled (to 90); at or under 90 untouched. Adaptive: its thresholds
    // (tau in warm-up, then the running mean, floor 25) capped at 90
    double[][][] maxima = {{{95, 80}}, {{90, 91}}, {{20, 20}}};
    assertEquals(2, rescalesOrdered("headroom-on", QkClip.Mode.ON, 0.1, maxima));
    assertEquals(0, rescalesOrdered("headroom-none", QkClip.Mode.ON, 0, maxima));
    assertEquals(2, rescalesOrdered("headroom-adaptive", QkClip.Mode.ADAPTIVE, 0.1, maxima));
  }

  @Test void withQkClipOffTheMonitorStillMeasuresEveryStepAndNoStepWaitsForIt() {
    TestProbe<ClipMonitorProtocol.Command> silent = kit.createTestProbe(); // never answers
    var st = clipRun("clip-off-measured", QkClip.Mode.OFF, 3, silent.getRef());
    for (long v = 0; v < 3; v++) assertEquals(v, ((CloseStep) silent.receiveMessage(Duration.ofSeconds(10))).version());
    assertEquals(null, st.counters().get("clip_timeouts")); // with clipping on, a silent monitor holds every step for the clip timeout
    assertEquals(null, st.counters().get("heads_clipped"));
  }

  @Test void theCoordinatorRescalesTheHeadsOverTauOrOverTheirAdaptiveThresholdAndNoOthers() {
    double inf = Double.NEGATIVE_INFINITY; // step 3: its learners computed nothing (an RL step without signal)
    double[][][] maxima = {{{20, 20}}, {{20, 20}}, {{20, 60}}, {{inf, inf}}, {{100, 100}}, {{101, 10}}};
    // tau 100 for every head: only step 5's head 0 (101) is over; 100 is at tau, not over
    assertEquals(1, rescalesOrdered("clip-on", QkClip.Mode.ON, maxima));
    assertEquals(0, rescalesOrdered("clip-off", QkClip.Mode.OFF, maxima)); // measured (next test), never clipped
    // adaptive: tau during the 2 warm-up steps; then each head's running mean, between 25 and 100. Step 2: thresholds
    // 25, 25 (mean 20 under the floor): head 1 (60) only. Step 3 measured nothing and changes no threshold. Step 4: 25
    // and 40 (head 1's mean after 60 at decay 0.5): both. Step 5: head 0 (101) over any threshold, head 1 (10) under the floor.
    assertEquals(1 + 2 + 1, rescalesOrdered("clip-adaptive", QkClip.Mode.ADAPTIVE, maxima));
  }

  @Test void nonFiniteGradientsAreRejectedCountedAndLeftOutOfTheStep() {
    var c = coordinator(settings("nan1", PsSettings.Mode.SYNC, 0, false, 0), monitor());
    TestProbe<Weights> a = kit.createTestProbe(), b = kit.createTestProbe();
    TestProbe<PushOutcome> refusedA = kit.createTestProbe(), refusedB = kit.createTestProbe();
    c.tell(new PsProtocol.RegisterLearner("a", a.getRef(), kit.<PsProtocol.Offsets>createTestProbe().getRef()));
    c.tell(new PsProtocol.RegisterLearner("b", b.getRef(), kit.<PsProtocol.Offsets>createTestProbe().getRef()));
    a.receiveMessage(Duration.ofSeconds(10));
    b.receiveMessage();
    push(0, "a", randomGrads(1, true), c, refusedA.getRef(), Map.of());
    push(0, "b", randomGrads(2, false), c, refusedB.getRef(), Map.of());
    assertEquals(PsProtocol.Outcome.NON_FINITE, refusedA.receiveMessage(Duration.ofSeconds(10)).outcome());
    assertEquals(PsProtocol.Outcome.APPLIED, refusedB.receiveMessage(Duration.ofSeconds(10)).outcome());
    var v1 = verified(b.receiveMessage(Duration.ofSeconds(10)));
    assertEquals(1, v1.version());
    for (float f : v1.asMap().get("layer0.w1")) assertTrue(Float.isFinite(f));
    var st = status(c);
    assertTrue(st.counters().get("rejected_non_finite") >= 1);
    assertEquals(Map.of(0L, 1), st.consumedPerVersion()); // only b's trajectory went into version 0's step
    // every learner's gradient bad: the step is skipped, the version stays
    push(1, "a", randomGrads(3, true), c, refusedA.getRef(), Map.of());
    push(1, "b", randomGrads(4, true), c, refusedB.getRef(), Map.of());
    refusedA.receiveMessage(Duration.ofSeconds(10));
    refusedB.receiveMessage(Duration.ofSeconds(10));
    var st2 = status(c);
    assertEquals(1, st2.version());
    assertEquals(1L, st2.counters().get("steps_skipped"));
    kit.stop(c);
  }

  @Test void aStepOfZeroGradientsLeavesTheWeightsAsTheyAreAndStillAdvancesTheOffsets() {
    var c = coordinator(settings("zero1", PsSettings.Mode.SYNC, 0, false, 0), monitor());
    TestProbe<Weights> a = kit.createTestProbe();
    TestProbe<PushOutcome> refused = kit.createTestProbe();
    c.tell(new PsProtocol.RegisterLearner("a", a.getRef(), kit.<PsProtocol.Offsets>createTestProbe().getRef()));
    a.receiveMessage(Duration.ofSeconds(10));
    push(0, "a", randomGrads(1, false), c, refused.getRef(), Map.of("trajectories-0", new TagOffset(3, 0)));
    var v1 = verified(a.receiveMessage(Duration.ofSeconds(10)));
    // momentum (Muon) and moments (AdamW) now hold the first gradient: a zero gradient must not move anything
    var zeros = new HashMap<String, float[]>();
    for (var s : PolicyModel.specsOf(CFG)) zeros.put(s.name(), new float[s.size()]);
    push(1, "a", zeros, c, refused.getRef(), Map.of("trajectories-0", new TagOffset(5, 0)));
    var v2 = verified(a.receiveMessage(Duration.ofSeconds(10)));
    assertEquals(2, v2.version());
    for (var s : PolicyModel.specsOf(CFG)) assertArrayEquals(v1.asMap().get(s.name()), v2.asMap().get(s.name()), s.name());
    assertEquals(Map.of("trajectories-0", new TagOffset(5, 0)), status(c).offsets());
    kit.stop(c);
  }

  @Test void asynchronousModeAdmitsBoundedStalenessAndRefusesOlderGradients() {
    var c = coordinator(settings("async1", PsSettings.Mode.ASYNC, 1, false, 0), monitor());
    TestProbe<Weights> a = kit.createTestProbe();
    TestProbe<PushOutcome> refused = kit.createTestProbe();
    c.tell(new PsProtocol.RegisterLearner("a", a.getRef(), kit.<PsProtocol.Offsets>createTestProbe().getRef()));
    assertEquals(0, a.receiveMessage(Duration.ofSeconds(10)).version());
    push(0, "a", randomGrads(1, false), c, refused.getRef(), Map.of());
    assertEquals(1, a.receiveMessage(Duration.ofSeconds(10)).version());
    push(0, "b", randomGrads(2, false), c, refused.getRef(), Map.of()); // version 0 at current 1: within staleness 1
    assertEquals(2, a.receiveMessage(Duration.ofSeconds(10)).version());
    push(0, "c", randomGrads(3, false), c, refused.getRef(), Map.of()); // version 0 at current 2: too old
    assertEquals(PsProtocol.Outcome.APPLIED, refused.receiveMessage(Duration.ofSeconds(10)).outcome());
    assertEquals(PsProtocol.Outcome.APPLIED, refused.receiveMessage(Duration.ofSeconds(10)).outcome());
    var r = refused.receiveMessage(Duration.ofSeconds(10));
    assertEquals(PsProtocol.Outcome.STALE, r.outcome());
    assertEquals("c", r.learnerId());
    a.expectNoMessage(Duration.ofMillis(200));
    var st = status(c);
    assertEquals(2, st.version());
    assertEquals(1L, st.counters().get("refused_stale"));
    kit.stop(c);
  }

  @Test void aRestartedCoordinatorRestoresItsCheckpointVersionAndOffsets() throws Exception {
    var s = settings("restart1", PsSettings.Mode.SYNC, 0, false, 1);
    var c = coordinator(s, monitor());
    TestProbe<Weights> a = kit.createTestProbe();
    TestProbe<PushOutcome> refused = kit.createTestProbe();
    c.tell(new PsProtocol.RegisterLearner("a", a.getRef(), kit.<PsProtocol.Offsets>createTestProbe().getRef()));
    a.receiveMessage(Duration.ofSeconds(10));
    push(0, "a", randomGrads(1, false), c, refused.getRef(), Map.of("trajectories-3", new TagOffset(42, 5)));
    var v1 = a.receiveMessage(Duration.ofSeconds(10));
    var done = kit.<Long>createTestProbe();
    c.tell(new PsCoordinator.CheckpointNow(done.getRef()));
    assertEquals(1L, done.receiveMessage(Duration.ofSeconds(10)));
    kit.stop(c);
    var again = coordinator(s, monitor());
    TestProbe<Weights> a2 = kit.createTestProbe();
    var offs = kit.<PsProtocol.Offsets>createTestProbe();
    again.tell(new PsProtocol.RegisterLearner("a", a2.getRef(), offs.getRef()));
    assertEquals(Map.of("trajectories-3", new TagOffset(42, 5)), offs.receiveMessage(Duration.ofSeconds(10)).offsets());
    var restored = verified(a2.receiveMessage(Duration.ofSeconds(10)));
    assertEquals(1, restored.version());
    assertEquals(v1.sha256(), restored.sha256());
    var st = status(again);
    assertEquals(1, st.restoredFrom());
    assertEquals(Map.of("trajectories-3", new TagOffset(42, 5)), st.offsets());
    try (var store = new OffsetStore(s.jdbcUrl(), s.jdbcUser(), s.jdbcPassword())) {
      assertEquals(Map.of("trajectories-3", new TagOffset(42, 5)), store.load("restart1"));
    }
    kit.stop(again);
  }
}
