package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.agents.tasks.FileTasks;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.tools.ToolDirectory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * File tasks on the real {@code @modelcontextprotocol/server-filesystem} (npm, package-lock.json), given a sandbox
 * directory: many agents at once with file names from small pools; each episode works in its own directory inside the
 * sandbox; the teacher solves them, the judge verifies the files the server left on disk, the trajectories are
 * persisted and replayed, and the sandbox is empty afterwards. With half the teacher's steps skipped, an episode is
 * accepted exactly when it skipped none.
 */
class FileTasksRunTest {
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

  private static ActorSystem<Void> start(Path dir, Path sandbox, Map<String, Object> extra) throws Exception {
    Files.createDirectories(sandbox);
    var o = new HashMap<String, Object>(extra);
    o.put("k2.mcp.servers", List.of("fs=node " + root().resolve("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js") + " " + sandbox));
    o.put("k2.mcp.files", "fs");
    o.put("k2.tools.firewall.sandbox", sandbox.toString());
    var config = TestNodes.h2(dir, o);
    JournalSchema.ensure(config);
    var system = K2Node.start("k2", config);
    var cluster = Cluster.get(system);
    cluster.manager().tell(Join.create(cluster.selfMember().address()));
    var up = ToolDirectory.get(system).awaitMcpServers(system, Duration.ofSeconds(60));
    assertTrue(up.stream().allMatch(t -> t.error() == null), up.toString());
    return system;
  }

  private static long filesLeft(Path sandbox) throws Exception {
    try (var walk = Files.walk(sandbox)) {
      return walk.filter(p -> !p.equals(sandbox)).count();
    }
  }

  @Test void theTeacherSolvesThemAndTheJudgeReadsTheFiles(@TempDir Path dir) throws Exception {
    var sandbox = dir.resolve("sandbox");
    var system = start(dir, sandbox, Map.of("k2.teacher.wrong-argument", 0.0, "k2.teacher.skip-step", 0.0, "k2.teacher.wrong-tool", 0.0,
        "k2.teacher.premature-answer", 0.0));
    try {
      var kit = ActorTestKit.create(system);
      var judged = kit.<Trajectory>createTestProbe();
      NodeServices.get(system).onJudged(judged.getRef());
      int agents = 12, episodes = 3;
      String runId = "fs-" + System.nanoTime();
      var summary = RunDriver.start(system, new RunDriver.RunSpec(runId, agents, episodes, 5, Agent.PersistMode.ALL, Duration.ofMinutes(3),
          new Agent.EpisodeSpec(Agent.Tasks.FS, "teacher", 0, 1)), s -> {}).get(4, TimeUnit.MINUTES);
      assertTrue(summary.complete(), summary.toString());
      assertEquals(agents * episodes, summary.get("episodes"));
      assertEquals(agents * episodes, summary.get("accepted"), "every episode's files as the task asked, as the server left them: " + summary.counters());
      var seen = judged.receiveSeveralMessages(agents * episodes, Duration.ofSeconds(60));
      var people = new HashMap<String, Integer>();
      var difficulties = new java.util.TreeSet<Integer>();
      for (var t : seen) {
        assertEquals(FileTasks.CATEGORY, t.category());
        assertTrue(t.tools().contains("fs.write_file") && !t.tools().contains("fs.list_directory"), t.tools().toString());
        assertEquals("done", t.finalAnswer());
        for (var s : t.steps()) {
          assertTrue(s.error() == null && !s.result().contains(sandbox.toString()), "the agent sees its own relative paths: " + s);
        }
        var file = t.prompt().replaceAll(".* into the file (\\S+?\\.txt).*", "$1");
        people.merge(file, 1, Integer::sum);
        difficulties.add(t.difficulty());
      }
      assertEquals(java.util.Set.of(1, 2, 3), difficulties);
      assertTrue(people.values().stream().anyMatch(n -> n > 1), "concurrent episodes used the same file names: " + people);
      // persisted and replayed like the synthetic ones
      var replayed = new ArrayList<Trajectory>();
      new TrajectoryReplay(system).forEach(TrajectoryReplay.Filter.ALL, Duration.ofSeconds(60), (tag, t) -> {
        if (t.trajectoryId().startsWith(runId + "/")) replayed.add(t);
      });
      assertEquals(agents * episodes, replayed.size());
      // every episode's directory was read and removed when it ended
      judged.awaitAssert(Duration.ofSeconds(30), () -> {
        try {
          assertEquals(0, filesLeft(sandbox));
        } catch (Exception e) {
          throw new AssertionError(e);
        }
        return null;
      });
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  @Test void filesMissingAStepAreRejectedOnWhatTheServerLeft(@TempDir Path dir) throws Exception {
    var sandbox = dir.resolve("sandbox");
    // the teacher skips half its steps: an episode is right exactly when it skipped none
    var system = start(dir, sandbox, Map.of("k2.teacher.wrong-argument", 0.0, "k2.teacher.skip-step", 0.5, "k2.teacher.wrong-tool", 0.0,
        "k2.teacher.premature-answer", 0.0));
    try {
      var kit = ActorTestKit.create(system);
      var judged = kit.<Trajectory>createTestProbe();
      NodeServices.get(system).onJudged(judged.getRef());
      int n = 8 * 3;
      var summary = RunDriver.start(system, new RunDriver.RunSpec("fs-skip-" + System.nanoTime(), 8, 3, 6, Agent.PersistMode.NONE,
          Duration.ofMinutes(2), new Agent.EpisodeSpec(Agent.Tasks.FS, "teacher", 0, 1)), s -> {}).get(3, TimeUnit.MINUTES);
      assertTrue(summary.complete(), summary.toString());
      int skipped = 0;
      for (var t : judged.receiveSeveralMessages(n, Duration.ofSeconds(60))) {
        boolean complete = t.steps().size() == t.difficulty() && t.steps().stream().allMatch(s -> s.error() == null);
        assertEquals(complete, t.verdict().accepted(), t.verdict() + " " + t.steps());
        if (!complete) {
          skipped++;
          assertTrue(t.verdict().reasons().stream().anyMatch(r -> r.startsWith("end-state: fs:")), t.verdict().reasons().toString());
        }
      }
      assertTrue(skipped > 0 && skipped < n, "some episodes skipped a step, some none: " + skipped);
      assertEquals(n - skipped, summary.get("accepted"));
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }
}
