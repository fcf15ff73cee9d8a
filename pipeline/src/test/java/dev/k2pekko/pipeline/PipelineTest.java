package dev.k2pekko.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.k2pekko.agents.JournalSchema;
import dev.k2pekko.agents.K2Node;
import dev.k2pekko.agents.TrajectoryReplay;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ps.checkpoint.Checkpoints;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.apache.pekko.stream.javadsl.Sink;
import org.junit.jupiter.api.Test;

/**
 * The whole loop on a one-node cluster with a small configuration: evaluation, synthesis, SFT from the journal,
 * RL rollouts, evaluation. Every trajectory of the run in the journal is consumed exactly once, per version as the
 * parameter server recorded, and the run ends with a checkpoint that verifies.
 */
class PipelineTest {
  static Config config(Path dir, Map<String, Object> extra) {
    var o = new HashMap<String, Object>();
    o.put("pekko.actor.serialize-messages", "on");
    o.put("pekko.remote.artery.canonical.port", 0);
    o.put("pekko.loglevel", "WARNING");
    o.put("k2.judge.flush-interval", "20ms");
    o.put("k2.journal.dir", dir.toAbsolutePath().toString());
    o.put("pekko-persistence-jdbc.shared-databases.slick.db.url", "jdbc:h2:file:" + dir.resolve("journal").toAbsolutePath() + ";DB_CLOSE_ON_EXIT=FALSE");
    o.put("k2.pipeline.eval-tasks", 5);
    o.put("k2.pipeline.eval-trials", 2);
    o.put("k2.pipeline.synth-agents", 20);
    o.put("k2.pipeline.synth-episodes", 10);
    o.put("k2.pipeline.rl-rounds", 2);
    o.put("k2.pipeline.rl-prioritized", "on");
    o.put("k2.pipeline.rl-tasks", 10);
    o.put("k2.pipeline.rl-rollouts", 2);
    o.put("k2.pipeline.stage-timeout", "3 minutes");
    o.put("k2.ps.checkpoint-every", 5);
    o.put("k2.open.eval-tasks", 4); // the held-out open set, small
    // no open tasks in synthesis or RL (the default has them): the counts below are of verifiable episodes; the test of
    // open tasks in the pipeline turns both shares on
    o.put("k2.open.synthesis-share", 0);
    o.put("k2.open.rl-share", 0);
    o.putAll(extra);
    return ConfigFactory.load(ConfigFactory.parseMap(o).withFallback(ConfigFactory.parseResources("application.conf")));
  }

  @Test void theLoopConsumesEveryTrajectoryOnceAndCheckpoints() throws Exception {
    Path dir = Files.createTempDirectory("k2-pipeline-test");
    var cfg = config(dir, Map.of());
    JournalSchema.ensure(cfg);
    ActorSystem<Void> system = K2Node.start("k2", cfg);
    try {
      var cluster = Cluster.get(system);
      cluster.manager().tell(Join.create(cluster.selfMember().address()));
      K2Node.awaitMembersUp(system, 1, Duration.ofSeconds(20));
      var node = TrainerNode.start(system, "ptest");
      var pipeline = new Pipeline(system, node, Pipeline.Spec.fromConfig("ptest", 7, cfg), p -> {});
      var r = pipeline.run();

      assertEquals(5, r.init().tasks());
      assertEquals(2, r.init().passK().length);
      assertTrue(r.init().success() <= 0.05, "an untrained policy solves held-out tasks: " + r.init().success());
      assertTrue(r.synthesized() > 30, "synthesis persisted " + r.synthesized()); // about a quarter of 200 in the default world
      // synthesis and SFT in two parts (the default sft-parts), evaluated after each: the SFT curve ends at the sft evaluation
      assertEquals(2, r.sftCurve().size(), r.sftCurve().toString());
      assertEquals(r.sft(), r.sftCurve().get(1));
      assertEquals("sft-1", r.sftCurve().get(0).stage());
      assertTrue(r.sftCurve().get(0).version() > 0 && r.sftCurve().get(0).version() < r.sft().version(), r.sftCurve().toString());
      assertEquals(40, r.rollouts()); // 2 rounds of 10 tasks x 2 rollouts, all persisted
      assertEquals(2, r.roundSuccess().length);
      assertTrue(r.roundSuccess()[0] >= 0 && r.roundSuccess()[0] <= 1, "round success " + r.roundSuccess()[0]);
      // prioritized sampling: the first round uniform, the second by the first's failures (if it had any)
      assertEquals(null, r.roundDifficultyWeights().get(0));
      if (r.roundSuccess()[0] < 1) assertEquals(5, r.roundDifficultyWeights().get(1).length);

      // the critic trained after synthesis on every judged teacher episode (rejected ones too), then after each round
      // on its rollouts (and as many replayed), each time measured on the sft evaluation's episodes
      var critic = r.critic().trainings();
      assertEquals(List.of("synthesis", "rl 1", "rl 2"), critic.stream().map(Pipeline.CriticRound::trainedOn).toList());
      assertEquals(List.of(1L, 2L, 3L), critic.stream().map(Pipeline.CriticRound::version).toList(), critic.toString());
      assertEquals(200, critic.get(0).examples());
      assertTrue(critic.get(0).accepted() < 200 && critic.get(0).accepted() == r.synthesized(), "synthesis verdicts: " + critic.get(0));
      assertEquals(40, critic.get(1).examples());
      for (var c : critic) assertEquals(10, c.heldOutEpisodes(), c.toString());
      assertEquals(10, r.critic().onRlEval().heldOutEpisodes());
      assertEquals(3, r.critic().onRlEval().version());

      // every trajectory of this run in the journal was consumed, once
      var ids = new HashSet<String>();
      long[] count = {0};
      new TrajectoryReplay(system).source(TrajectoryReplay.Filter.ALL)
          .filter(t -> t.trajectory().trajectoryId().startsWith("ptest-"))
          .runWith(Sink.foreach(t -> { count[0]++; ids.add(t.trajectory().trajectoryId()); }), system)
          .toCompletableFuture().get(60, TimeUnit.SECONDS);
      var st = r.status();
      assertEquals(count[0], ids.size());
      assertEquals(count[0], st.counters().getOrDefault("trajectories", 0L) + st.counters().getOrDefault("trajectories_rejected", 0L));
      assertEquals(count[0], r.synthesized() + r.rollouts());
      assertEquals(0L, st.counters().getOrDefault("duplicates", 0L));
      long perVersion = st.consumedPerVersion().values().stream().mapToLong(Integer::longValue).sum();
      assertEquals(st.counters().get("trajectories").longValue(), perVersion);
      assertEquals(st.version(), st.counters().get("steps").longValue());

      // a resumed run restores the last checkpoint, version and offsets, and synthesizes nothing again
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
      system = K2Node.start("k2", cfg);
      var cluster2 = Cluster.get(system);
      cluster2.manager().tell(Join.create(cluster2.selfMember().address()));
      K2Node.awaitMembersUp(system, 1, Duration.ofSeconds(20));
      var again = new Pipeline(system, TrainerNode.start(system, "ptest"), Pipeline.Spec.fromConfig("ptest", 7, cfg), p -> {}).run();
      assertEquals(st.version(), again.status().restoredFrom());
      assertEquals(r.synthesized(), again.synthesized());
      assertEquals(r.rollouts(), again.rollouts());
      // every stage is in the run's record: evaluations and rounds are taken from it, nothing is rolled out again
      assertEquals(r.roundSuccess()[0], again.roundSuccess()[0]);
      assertEquals(r.roundSuccess()[1], again.roundSuccess()[1]);
      assertEquals(r.init().success(), again.init().success());
      assertEquals(r.init().version(), again.init().version());
      assertEquals(r.sft().version(), again.sft().version());
      assertEquals(r.sftCurve().get(0).version(), again.sftCurve().get(0).version());
      assertEquals(r.sftCurve().get(0).success(), again.sftCurve().get(0).success());
      // the open evaluations are recorded too: taken as they were
      assertEquals(4, again.open().sft().tasks());
      assertEquals(r.open().sft().success(), again.open().sft().success());
      assertEquals(r.open().sft().version(), again.open().sft().version());
      assertEquals(r.open().rl().success(), again.open().rl().success());
      assertEquals(r.open().rl().version(), again.open().rl().version());
      assertTrue(r.resumed().isEmpty(), "a fresh run resumed nothing: " + r.resumed());
      assertTrue(again.resumed().stream().anyMatch(x -> x.startsWith("rl 2: done before")), again.resumed().toString());
      assertTrue(again.resumed().stream().anyMatch(x -> x.startsWith("eval open-rl: done before")), again.resumed().toString());
      assertEquals(0L, again.status().counters().getOrDefault("duplicates", 0L));
      // the critic's data of stages judged before the restart was in memory only: the synthesis' is gone (said so, not
      // trained on nothing); the rounds' rollouts are read back from the journal; the sft evaluation's episodes are gone,
      // so nothing measures it (AUC n/a)
      var resumedCritic = again.critic().trainings();
      assertTrue(resumedCritic.get(0).problem() != null && resumedCritic.get(0).problem().contains("no episode"), resumedCritic.toString());
      assertEquals(20, resumedCritic.get(1).examples(), resumedCritic.toString());
      assertEquals(40, resumedCritic.get(2).examples(), "the second round's 20 and 20 replayed from the first: " + resumedCritic);
      assertEquals(null, resumedCritic.get(2).problem());
      assertEquals(0, resumedCritic.get(2).heldOutEpisodes());
      assertTrue(Double.isNaN(resumedCritic.get(2).auc()));
      assertEquals(count[0], again.status().counters().get("trajectories") + again.status().counters().getOrDefault("trajectories_rejected", 0L));

      // the last checkpoint is the final version and verifies; a damaged copy is named, never loaded
      var latest = Checkpoints.loadLatest(dir.resolve("checkpoints").resolve("ptest"), new ReferenceOps()).orElseThrow();
      assertEquals(again.status().version(), latest.version());
      assertEquals(Files.list(dir.resolve("checkpoints").resolve("ptest")).filter(p -> p.toString().endsWith(".json")).count() <= 3, true);
      var st2 = Checkpoints.safetensorsPath(dir.resolve("checkpoints").resolve("ptest"), latest.version());
      byte[] bytes = Files.readAllBytes(st2);
      bytes[bytes.length - 3] ^= 1;
      Files.write(st2, bytes);
      var e = org.junit.jupiter.api.Assertions.assertThrows(Exception.class,
          () -> Checkpoints.read(Checkpoints.jsonPath(dir.resolve("checkpoints").resolve("ptest"), latest.version()), new ReferenceOps()));
      assertTrue(e.getMessage().contains(st2.getFileName().toString()) || e.getMessage().contains("sha256"), e.getMessage());
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  /**
   * Open tasks in the loop (docs/LOOP.md, "Open tasks"): a share of the synthesis and of the RL rollouts is open; the
   * teacher's open episodes reach the journal (SFT's data) by the public checks alone; the critic trains on none of them
   * (synthesis nor round); the held-out open set is evaluated after SFT and after RL; the round's open rollouts have
   * their own hacking watch row.
   */
  @Test void openTasksAreSynthesizedByThePublicChecksRolledOutEvaluatedAndKeptFromTheCritic() throws Exception {
    Path dir = Files.createTempDirectory("k2-pipeline-open");
    var cfg = config(dir, Map.of("k2.pipeline.rl-rounds", 1, "k2.pipeline.rl-prioritized", "off", "k2.open.synthesis-share", 0.3,
        "k2.open.rl-share", 0.5, "k2.open.eval-tasks", 4));
    JournalSchema.ensure(cfg);
    ActorSystem<Void> system = K2Node.start("k2", cfg);
    try {
      var cluster = Cluster.get(system);
      cluster.manager().tell(Join.create(cluster.selfMember().address()));
      K2Node.awaitMembersUp(system, 1, Duration.ofSeconds(20));
      var node = TrainerNode.start(system, "open");
      var r = new Pipeline(system, node, Pipeline.Spec.fromConfig("open", 7, cfg), p -> {}).run();
      var open = r.open();
      assertEquals(new Pipeline.Open(0.3, 0.5, 4), open.settings());

      // the journal: the teacher's open episodes that passed the public checks, hidden-rubric rejections among them if any
      var synthOpen = new java.util.ArrayList<dev.k2pekko.protocol.Trajectory>();
      var rolloutsOpen = new java.util.ArrayList<dev.k2pekko.protocol.Trajectory>();
      new TrajectoryReplay(system).source(TrajectoryReplay.Filter.ALL)
          .filter(t -> t.trajectory().trajectoryId().startsWith("open-") && "open".equals(t.trajectory().category()))
          .runWith(Sink.foreach(t -> (t.trajectory().trajectoryId().contains("-synth") ? synthOpen : rolloutsOpen).add(t.trajectory())), system)
          .toCompletableFuture().get(60, TimeUnit.SECONDS);
      assertTrue(open.synthesisEpisodes() > 30 && open.synthesisEpisodes() < 100, "about 30% of 200 teacher episodes open: " + open.synthesisEpisodes());
      assertEquals(synthOpen.size(), open.synthesisKept());
      assertTrue(synthOpen.size() > 0, "open episodes kept for SFT");
      for (var t : synthOpen) assertTrue(dev.k2pekko.agents.JudgeRubric.passesPublicChecks(t.verdict()), t.verdict().toString());
      long hiddenRejected = synthOpen.stream().filter(t -> !t.verdict().accepted()).count();
      // SFT consumed them with the rest of the synthesis (the journal's every trajectory, once)
      var st = r.status();
      assertEquals(r.synthesized() + r.rollouts(), st.counters().getOrDefault("trajectories", 0L) + st.counters().getOrDefault("trajectories_rejected", 0L));

      // the critic trained on the verifiable synthesis episodes only, then on the round's verifiable rollouts only
      var critic = r.critic().trainings();
      assertEquals(200 - open.synthesisEpisodes(), critic.get(0).examples(), critic.toString());
      assertTrue(rolloutsOpen.size() > 0 && rolloutsOpen.size() < 20, "open rollouts of 20: " + rolloutsOpen.size());
      assertEquals(rolloutsOpen.size() % 2, 0, "an open task's K rollouts share it");
      assertEquals(2 * (20 - rolloutsOpen.size()), critic.get(1).examples(), "the round's verifiable rollouts and as many replayed: " + critic);

      // the open hacking watch: the critic's mean on the round's open rollouts against their hidden success
      assertEquals(1, open.rounds().size());
      var w = open.rounds().getFirst();
      assertEquals(null, w.problem());
      assertEquals(rolloutsOpen.size(), w.episodes());
      assertEquals((double) rolloutsOpen.stream().filter(t -> t.verdict().accepted()).count() / rolloutsOpen.size(), w.hiddenSuccess(), 1e-9);
      assertEquals(1, w.criticVersion(), "scored at the weights that rewarded the round");
      // the verifiable watch and the round's acceptance are over the verifiable rollouts only
      assertEquals(20 - rolloutsOpen.size(), r.reward().rounds().getFirst().episodes());

      // the held-out open set, after SFT and after RL: 4 tasks x 2 trials, never persisted
      assertEquals(4, open.sft().tasks());
      assertEquals(2, open.sft().passK().length);
      assertEquals(r.sft().version(), open.sft().version());
      assertEquals(r.rl().version(), open.rl().version());
      assertTrue(open.rl().success() >= 0 && open.rl().success() <= 1);
      assertTrue(r.times().containsKey("eval-open-sft") && r.times().containsKey("eval-open-rl"), r.times().toString());
      system.log().info("open synthesis: {} episodes, {} kept ({} of them rejected by the hidden rubric); open eval sft {} rl {}", open.synthesisEpisodes(),
          synthOpen.size(), hiddenRejected, open.sft().success(), open.rl().success());
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  /**
   * The same seed twice gives the same SFT weights on the java backend (docs/DESIGN.md, "Reproducible runs"), though
   * the two runs' judges write the synthesis to the journal in other batches and another order (flushing every 10 ms
   * and every 300 ms): each part is trained once sealed, sorted by trajectory id, each step from both learners.
   */
  @Test void theSameSeedGivesTheSameSftWeightsWhateverTheJournalsOrder() throws Exception {
    var a = sft("10ms");
    var b = sft("300ms");
    assertEquals(a.sft().version(), b.sft().version(), "SFT steps");
    assertTrue(a.sft().version() > 10, "SFT made " + a.sft().version() + " steps");
    assertEquals(64, a.sft().weights().length());
    assertEquals(a.sftCurve().get(0).weights(), b.sftCurve().get(0).weights(), "weights after the first part");
    assertEquals(a.sft().weights(), b.sft().weights(), "weights after SFT");
    assertEquals(a.status().losses(), b.status().losses(), "every step's loss");
    assertEquals(0L, a.status().counters().getOrDefault("sync_timeouts", 0L));
  }

  private static Pipeline.Result sft(String flush) throws Exception {
    Path dir = Files.createTempDirectory("k2-pipeline-sft");
    // 400 teacher episodes: about a quarter are accepted in the default world, enough for a dozen and more SFT steps
    var cfg = config(dir, Map.of("k2.pipeline.rl-rounds", 0, "k2.judge.flush-interval", flush, "k2.learner.backend", "java",
        "k2.learner.count", 2, "k2.pipeline.synth-episodes", 20));
    JournalSchema.ensure(cfg);
    ActorSystem<Void> system = K2Node.start("k2", cfg);
    try {
      var cluster = Cluster.get(system);
      cluster.manager().tell(Join.create(cluster.selfMember().address()));
      K2Node.awaitMembersUp(system, 1, Duration.ofSeconds(20));
      var node = TrainerNode.start(system, "sft-" + flush);
      return new Pipeline(system, node, Pipeline.Spec.fromConfig("sft-" + flush, 11, cfg), p -> {}).run();
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }
}
