package dev.k2pekko.bench;

import dev.k2pekko.agents.JudgeRubric;
import dev.k2pekko.agents.OfflinePlay;
import dev.k2pekko.agents.inference.InferenceServer;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.agents.policy.TeacherPolicy;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.clip.ClipMonitor;
import dev.k2pekko.model.Losses;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.Sequence;
import dev.k2pekko.model.TokenBatch;
import dev.k2pekko.ops.TensorOps;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.ps.server.CoordinatorAddress;
import dev.k2pekko.ps.server.PsCoordinator;
import dev.k2pekko.ps.server.PsGroup;
import dev.k2pekko.ps.server.PsSettings;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;

/** Measurements of the training loop's parts for {@code k2 bench learner|ps}. */
public final class LoopBench {
  private LoopBench() {}

  /** Teacher examples of the default task family, as the learners see them. */
  public static List<Sequence> examples(int episodes, long seed, int context) {
    var universe = ToolUniverse.generate(7, Stochasticity.NONE);
    var format = new PolicyFormat(universe);
    var gen = new TaskGenerator(universe, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN);
    var teacher = new TeacherPolicy(gen, new TeacherPolicy.Mistakes(0.03, 0.02, 0.02, 0.01, 0.9));
    var out = new ArrayList<Sequence>();
    for (int i = 0; i < episodes; i++) {
      var t = OfflinePlay.play(universe, teacher, new JudgeRubric(0.8), gen.task(seed + i, "t" + i), "x" + i);
      if (t.verdict().accepted()) for (var s : format.examples(t)) if (s.length() <= context + 1) out.add(s);
    }
    return out;
  }

  /** One learner's SFT step (forward, backward) on batches of {@code batch} examples: tokens/s and ms per step. */
  public record LearnerResult(String backend, int batch, double tokensPerSecond, double msPerStep, long parameters) {}

  public static LearnerResult learner(TensorOps ops, ModelConfig shape, int batch, int warmup, int steps) {
    var data = examples(400, 11, shape.context());
    var vocab = new PolicyFormat(ToolUniverse.generate(7, Stochasticity.NONE)).tokenizer().vocabSize();
    var cfg = new ModelConfig(vocab, shape.dModel(), shape.layers(), shape.heads(), shape.context(), shape.mlpRatio(), shape.normEps());
    var model = new PolicyModel(cfg, ops, 1);
    var rnd = new Random(5);
    long tokens = 0, t0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
      if (s == warmup) {
        tokens = 0;
        t0 = System.nanoTime();
      }
      var b = new ArrayList<Sequence>();
      for (int i = 0; i < batch; i++) b.add(data.get(rnd.nextInt(data.size())));
      var tb = TokenBatch.of(b, 0);
      Losses.nextToken(model, tb);
      tokens += tb.ids().length;
    }
    double secs = (System.nanoTime() - t0) / 1e9;
    return new LearnerResult(ops.name(), batch, tokens / secs, secs * 1000 / steps, model.parameterCount());
  }

  /**
   * Parameter-server step latency: one learner pushes random gradients for a model of width d; the time from its
   * push to receiving the next published version (prepare, Muon/AdamW per group, rescale, checksum, publish), with
   * {@code subscribers} extra weight subscribers registered (each verifies the checksum). Also the time from the
   * first to the last subscriber receiving the version.
   */
  public record PsResult(int dModel, long parameters, int subscribers, double stepMsMedian, double stepMsP90, double fanOutMsMedian) {}

  public static PsResult ps(ActorSystem<?> system, int dModel, int layers, int subscribers, int steps, Path dir) throws Exception {
    var cfg = new ModelConfig(1222, dModel, layers, 4, 192, 4, 1e-5);
    var opt = MuonClip.Config.defaults().withWeightDecay(0.0).withClip(true, 100);
    String run = "bench-d" + dModel + "-s" + subscribers + "-" + System.nanoTime();
    var settings = PsSettings.builder(run, cfg, dir, "jdbc:h2:mem:" + run + ";DB_CLOSE_DELAY=-1").jdbcUser("sa")
        .seed(1).optimizer(opt).mode(PsSettings.Mode.SYNC).staleness(0).lrSft(0.01).lrRl(0.01).warmup(1).decaySteps(0)
        .syncTimeout(Duration.ofSeconds(10)).clipTimeout(Duration.ofSeconds(10)).applyTimeout(Duration.ofSeconds(60))
        .checkpointEvery(0).keepCheckpoints(1).build();
    var monitor = system.systemActorOf(ClipMonitor.create(100, cfg.layers(), cfg.heads(), Duration.ofSeconds(10)), "monitor-" + run, Props.empty());
    var coordinator = system.systemActorOf(PsCoordinator.create(settings, monitor), "coord-" + run, Props.empty());
    CoordinatorAddress.register(system, coordinator);
    var received = new ConcurrentHashMap<Long, long[]>(); // version -> {first, last, count}
    var versions = new ConcurrentHashMap<Long, CompletableFuture<PsProtocol.Weights>>();
    for (int i = 0; i < subscribers; i++) {
      var sub = system.systemActorOf(Behaviors.<PsProtocol.Weights>receiveMessage(w -> {
        InferenceServer.snapshot(w).verify(); // what an inference server does with a version before it swaps
        long now = System.nanoTime();
        received.compute(w.version(), (k, v) -> v == null ? new long[] {now, now, 1} : new long[] {v[0], now, v[2] + 1});
        return Behaviors.same();
      }), "sub-" + run + "-" + i, Props.empty());
      system.receptionist().tell(Receptionist.register(PsProtocol.WEIGHTS, sub));
    }
    var learner = system.systemActorOf(Behaviors.<PsProtocol.Weights>receiveMessage(w -> {
      versions.computeIfAbsent(w.version(), v -> new CompletableFuture<>()).complete(w);
      return Behaviors.same();
    }), "learner-" + run, Props.empty());
    coordinator.tell(new PsProtocol.RegisterLearner("bench", learner, system.ignoreRef()));
    var sharding = ClusterSharding.get(system);
    var rnd = new Random(3);
    var ms = new ArrayList<Double>();
    var fan = new ArrayList<Double>();
    org.apache.pekko.actor.typed.ActorRef<PsProtocol.PushOutcome> refused = system.ignoreRef();
    versions.computeIfAbsent(0L, v -> new CompletableFuture<>()).get(60, TimeUnit.SECONDS);
    Thread.sleep(subscribers > 0 ? 2000 : 200); // let the receptionist's listing reach the coordinator
    for (int s = 0; s < steps; s++) {
      var grads = new HashMap<String, float[]>();
      for (var spec : PolicyModel.specsOf(cfg)) {
        float[] f = new float[spec.size()];
        for (int i = 0; i < f.length; i++) f[i] = (float) (rnd.nextGaussian() * 0.01);
        grads.put(spec.name(), f);
      }
      var max = new double[cfg.layers()][cfg.heads()];
      long t0 = System.nanoTime();
      for (var e : PsProtocol.byGroup(grads).entrySet()) sharding.entityRefFor(PsGroup.KEY, e.getKey()).tell(new PsProtocol.PushGradient(s, "bench", e.getValue()));
      monitor.tell(new dev.k2pekko.protocol.ClipMonitorProtocol.ReportMaxLogits(s, "bench", max));
      coordinator.tell(new PsProtocol.Pushed(s, "bench", new ArrayList<>(), new HashMap<>(), 0, 0, PsProtocol.StageKind.SFT, Double.NaN, refused));
      versions.computeIfAbsent(s + 1L, v -> new CompletableFuture<>()).get(60, TimeUnit.SECONDS);
      ms.add((System.nanoTime() - t0) / 1e6);
      if (subscribers > 0) {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (System.nanoTime() < deadline && (received.get(s + 1L) == null || received.get(s + 1L)[2] < subscribers)) Thread.sleep(1);
        var r = received.get(s + 1L);
        fan.add(r == null ? Double.NaN : (r[1] - r[0]) / 1e6);
      }
    }
    ms.sort(null);
    fan.sort(null);
    long params = PolicyModel.specsOf(cfg).stream().mapToLong(x -> x.size()).sum();
    return new PsResult(dModel, params, subscribers, ms.get(ms.size() / 2), ms.get((int) (ms.size() * 0.9)), fan.isEmpty() ? Double.NaN : fan.get(fan.size() / 2));
  }

}
