package dev.k2pekko.pipeline;

import dev.k2pekko.protocol.PsProtocol;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.JournalSchema;
import dev.k2pekko.agents.K2Node;
import dev.k2pekko.agents.PostgresTestDatabase;
import dev.k2pekko.agents.RunDriver;
import dev.k2pekko.agents.TrajectoryReplay;
import dev.k2pekko.ps.server.PsCoordinator;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.Test;

/**
 * Three nodes on a shared PostgreSQL journal, every message serialized: node A runs agents, tools, the parameter
 * server and the clip-monitor; the three learners run on B and C, and the one hosting more of them is stopped while they consume the
 * synthesis: its learner moves to another node, training continues, and every trajectory in the journal is consumed
 * exactly once, as the parameter server's per-version counts show (the learners train the sealed part sorted by id, so
 * the moved learner goes on from how much of each tag was trained).
 */
class LearnerFailoverTest {
  static Config config(String url, List<String> roles) {
    var o = new HashMap<String, Object>();
    o.put("pekko.actor.serialize-messages", "on");
    o.put("pekko.remote.artery.canonical.port", 0);
    o.put("pekko.loglevel", "WARNING");
    o.put("pekko.cluster.roles", roles);
    o.put("k2.judge.flush-interval", "20ms");
    o.put("k2.judge.batch-size", 20);
    o.put("k2.learner.count", 3);
    o.put("k2.learner.batch-size", 8);
    o.put("k2.journal.dir", System.getProperty("java.io.tmpdir") + "/k2-failover-" + ProcessHandle.current().pid());
    o.put("pekko-persistence-jdbc.shared-databases.slick.db.url", url);
    return ConfigFactory.load(ConfigFactory.parseMap(o).withFallback(
        ConfigFactory.parseResources("persistence-postgres.conf").withFallback(ConfigFactory.parseResources("application.conf"))));
  }

  static PsCoordinator.Status status(ActorSystem<?> system, TrainerNode.Started node) {
    return AskPattern.<PsProtocol.ToCoordinator, PsCoordinator.Status>ask(node.coordinator(), PsCoordinator.GetStatus::new,
        Duration.ofSeconds(10), system.scheduler()).toCompletableFuture().orTimeout(15, TimeUnit.SECONDS).join();
  }

  @Test void aLearnerNodeStopsMidRunAndEveryTrajectoryIsConsumedOnce() throws Exception {
    var db = PostgresTestDatabase.create("k2fail");
    var url = db.url();
    var systems = new ArrayList<ActorSystem<Void>>();
    String run = "fo" + Long.toString(System.nanoTime(), 36);
    try {
      // A runs no learner: the three learner instances live on B and C
      var a = K2Node.start("k2", config(url, List.of("agent", "tool", "ps", "monitor")));
      systems.add(a);
      JournalSchema.ensure(a.settings().config());
      var b = K2Node.start("k2", config(url, List.of("learner")));
      var c = K2Node.start("k2", config(url, List.of("learner")));
      systems.add(b);
      systems.add(c);
      var seed = Cluster.get(a).selfMember().address();
      for (var s : systems) Cluster.get(s).manager().tell(Join.create(seed));
      K2Node.awaitMembersUp(a, 3, Duration.ofSeconds(30));
      var nodeA = TrainerNode.start(a, run);
      TrainerNode.start(b, run);
      TrainerNode.start(c, run);

      var spec = new RunDriver.RunSpec(run + "-synth", 40, 14, 5, Agent.PersistMode.ACCEPTED, Duration.ofSeconds(120),
          new Agent.EpisodeSpec(Agent.Tasks.TRAIN, "teacher", 0, 1));
      var summary = RunDriver.start(a, spec, s -> {}).get(150, TimeUnit.SECONDS);
      assertTrue(summary.complete());
      long persisted = summary.get("persisted");
      assertTrue(persisted > 100, "persisted " + persisted); // the teacher passes about a quarter of the default world's episodes
      // the learners hold the part until it is sealed (sft-order = sealed), as the pipeline does after each part; the
      // learner that starts again elsewhere reads the part again and skips, tag by tag, what was trained of it
      dev.k2pekko.agents.PartSeal.seal(a, run + "-synth", 1, Duration.ofSeconds(30));

      // stop a learner node once training is under way
      var probe = TestProbe.<PsCoordinator.Status>create(a);
      probe.awaitAssert(Duration.ofSeconds(120), Duration.ofMillis(100), () -> {
        assertTrue(status(a, nodeA).counters().getOrDefault("trajectories", 0L) >= persisted / 4, "training did not start");
        return null;
      });
      // stop the learner node that hosts the most learners
      var hosts = status(a, nodeA).learnerNodes();
      var victim = hosts.values().stream().filter(h -> !h.equals(Cluster.get(a).selfMember().address().toString()))
          .collect(java.util.stream.Collectors.groupingBy(h -> h, java.util.stream.Collectors.counting())).entrySet().stream()
          .max(Map.Entry.comparingByValue()).orElseThrow().getKey();
      long hosted = hosts.values().stream().filter(victim::equals).count();
      var stopped = Cluster.get(b).selfMember().address().toString().equals(victim) ? b : c;
      stopped.terminate();
      stopped.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
      long stoppedAt = status(a, nodeA).counters().getOrDefault("trajectories", 0L);

      var st = probe.awaitAssert(Duration.ofSeconds(180), Duration.ofMillis(200), () -> {
        var now = status(a, nodeA);
        long done = now.counters().getOrDefault("trajectories", 0L) + now.counters().getOrDefault("trajectories_rejected", 0L);
        assertTrue(done >= persisted, "consumed " + done + " of " + persisted + " after the node stopped: " + now.counters());
        return now;
      });
      assertTrue(st.counters().getOrDefault("trajectories", 0L) > stoppedAt, "training continued after the stop");
      // the stopped node's learners run elsewhere now, registered again (a new incarnation replaces the old one)
      assertTrue(hosted >= 1);
      assertEquals(3, st.learnerNodes().size(), "every learner registered: " + st.learnerNodes());
      assertTrue(st.learnerNodes().values().stream().noneMatch(victim::equals), "no learner left on the stopped node: " + st.learnerNodes());
      assertEquals(0L, st.counters().getOrDefault("duplicates", 0L));
      long perVersion = st.consumedPerVersion().values().stream().mapToLong(Integer::longValue).sum();
      assertEquals(st.counters().get("trajectories").longValue(), perVersion);

      var ids = new HashSet<String>();
      long[] rows = {0};
      new TrajectoryReplay(a).forEach(TrajectoryReplay.Filter.ALL, Duration.ofSeconds(60), (tag, t) -> {
        if (!t.trajectoryId().startsWith(run + "-")) return;
        rows[0]++;
        ids.add(t.trajectoryId());
      });
      assertEquals(persisted, rows[0]);
      assertEquals(rows[0], ids.size());
      assertEquals(rows[0], st.counters().get("trajectories") + st.counters().getOrDefault("trajectories_rejected", 0L),
          "consumed per version = the journal: none skipped, none twice");
    } finally {
      for (var s : systems) s.terminate();
      for (var s : systems) s.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
      db.close();
    }
  }
}
