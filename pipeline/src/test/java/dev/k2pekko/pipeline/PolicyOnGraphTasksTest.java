package dev.k2pekko.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.agents.JournalSchema;
import dev.k2pekko.agents.K2Node;
import dev.k2pekko.agents.TrajectoryReplay;
import dev.k2pekko.tools.ToolDirectory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.Test;

/**
 * The learned policy on the knowledge-graph tasks of the real {@code @modelcontextprotocol/server-memory} (npm,
 * package-lock.json), {@code k2.policy.tasks = kg}: the teacher synthesizes on the training split, the learners SFT on
 * the accepted trajectories (nested arguments and all), and the policy is evaluated on the held-out split, which
 * nothing trained on; after a short SFT it solves held-out tasks that it solved none of at initialisation.
 */
class PolicyOnGraphTasksTest {
  static Path root() {
    for (var p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isRegularFile(p.resolve("package-lock.json")) && Files.isDirectory(p.resolve("agents"))) {
        if (!Files.isDirectory(p.resolve("node_modules/@modelcontextprotocol/server-memory"))) {
          throw new AssertionError("the MCP servers are not installed under " + p + "/node_modules: run `npm ci` there (./k2 test does)");
        }
        return p;
      }
    }
    throw new AssertionError("no package-lock.json above " + Path.of("").toAbsolutePath());
  }

  @Test void sftOnTheTeachersGraphEpisodesSolvesHeldOutGraphTasks() throws Exception {
    Path dir = Files.createTempDirectory("k2-pipeline-kg");
    var o = new HashMap<String, Object>();
    o.put("k2.mcp.servers", List.of("mem=env MEMORY_FILE_PATH=" + dir.resolve("graph.jsonl") + " node "
        + root().resolve("node_modules/@modelcontextprotocol/server-memory/dist/index.js")));
    o.put("k2.mcp.one-at-a-time", List.of("mem"));
    o.put("k2.mcp.knowledge-graph", "mem");
    o.put("k2.policy.tasks", "kg");
    o.put("k2.open.eval-tasks", 0);
    o.put("k2.pipeline.eval-tasks", 12);
    o.put("k2.pipeline.init-eval-tasks", 6);
    o.put("k2.pipeline.eval-trials", 2);
    o.put("k2.pipeline.eval-temperature", 0.0);
    o.put("k2.pipeline.synth-agents", 40);
    o.put("k2.pipeline.synth-episodes", 10);
    o.put("k2.pipeline.sft-parts", 1);
    o.put("k2.pipeline.rl-rounds", 0);
    o.put("k2.learner.backend", "java");
    // a short SFT: full learning rate after a few steps (the default warm-up of 50 versions is longer than this SFT)
    o.put("k2.ps.warmup", 5);
    o.put("k2.ps.decay-steps", 200);
    o.put("k2.learner.batch-size", 2);
    var cfg = PipelineTest.config(dir, o);
    JournalSchema.ensure(cfg);
    ActorSystem<Void> system = K2Node.start("k2", cfg);
    try {
      var cluster = Cluster.get(system);
      cluster.manager().tell(Join.create(cluster.selfMember().address()));
      K2Node.awaitMembersUp(system, 1, Duration.ofSeconds(20));
      var up = ToolDirectory.get(system).awaitMcpServers(system, Duration.ofSeconds(60));
      assertTrue(up.stream().allMatch(t -> t.error() == null), up.toString());
      var node = TrainerNode.start(system, "kgtest");
      var r = new Pipeline(system, node, Pipeline.Spec.fromConfig("kgtest", 5, cfg), p -> {}).run();
      System.out.printf("kg: init %.3f, sft %.3f (v%d) by difficulty %s, %d synthesized%n", r.init().success(), r.sft().success(), r.sft().version(),
          r.sft().byDifficulty().entrySet().stream().map(e -> e.getKey() + ":" + (int) e.getValue()[1] + "/" + (int) e.getValue()[0]).toList(), r.synthesized());
      assertEquals(0.0, r.init().success(), "an untrained policy solves held-out graph tasks");
      assertTrue(r.synthesized() > 200, "synthesis persisted " + r.synthesized());
      assertEquals(12, r.sft().tasks());
      assertTrue(r.sft().success() > r.init().success(), "held-out success after SFT " + r.sft().success() + " against " + r.init().success() + " at init");
      // what SFT trained on: the teacher's graph episodes of the training split, nested arguments as the server took them
      var trained = new ArrayList<dev.k2pekko.protocol.Trajectory>();
      new TrajectoryReplay(system).forEach(TrajectoryReplay.Filter.ALL, Duration.ofSeconds(60), (tag, t) -> {
        if (t.trajectoryId().startsWith("kgtest-synth/")) trained.add(t);
      });
      assertEquals(r.synthesized(), trained.size());
      for (var t : trained) {
        assertEquals("kg", t.category());
        assertTrue(!dev.k2pekko.agents.tasks.TaskGenerator.heldOut(new dev.k2pekko.agents.tasks.Task(t.taskId(), t.category(), t.difficulty(), t.seed(),
            t.prompt(), List.of(), null, t.tools())), "a held-out prompt was trained on: " + t.prompt());
        String call = dev.k2pekko.agents.policy.NestedArgs.renderArguments(t.steps().getFirst().arguments());
        assertTrue(call.startsWith("entities=[{name="), call);
      }
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }
}
