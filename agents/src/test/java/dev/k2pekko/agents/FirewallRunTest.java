package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.CallsRefused;
import dev.k2pekko.protocol.ToolError;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
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
 * The firewall in a whole run: the teacher under the default limits is never refused; a learned policy's calls to
 * tools it was not offered are refused (the untrained policy writes arbitrary tool names) and every refused step
 * names a tool outside the offered set; with a tight per-agent limit, the run summary's refusal counters and the
 * audit trail in the journal agree call for call.
 */
class FirewallRunTest {
  private static ActorSystem<Void> start(Path dir, Map<String, Object> extra) {
    var config = TestNodes.h2(dir, extra);
    JournalSchema.ensure(config);
    var system = K2Node.start("k2", config);
    var cluster = Cluster.get(system);
    cluster.manager().tell(Join.create(cluster.selfMember().address()));
    return system;
  }

  private static long refusedIn(RunTracker.Summary s) {
    return s.counters().entrySet().stream().filter(e -> e.getKey().startsWith("refused/")).mapToLong(Map.Entry::getValue).sum();
  }

  private static List<CallsRefused.Refusal> audit(ActorSystem<?> system, String runId) throws Exception {
    return FirewallAudit.replay(system).filter(r -> r.episodeId().startsWith(runId + "/"))
        .runWith(org.apache.pekko.stream.javadsl.Sink.seq(), system).toCompletableFuture().get(30, TimeUnit.SECONDS);
  }

  /** Every step to a tool outside the offered set was refused NOT_OFFERED, and no other step was; returns how many. */
  private static long checkOnlyUnofferedRefused(ActorSystem<?> system, String runId) throws Exception {
    var steps = new long[3];
    new TrajectoryReplay(system).forEach(TrajectoryReplay.Filter.ALL, Duration.ofSeconds(60), (tag, t) -> {
      if (!t.trajectoryId().startsWith(runId + "/")) return;
      for (var s : t.steps()) {
        steps[0]++;
        if (!t.tools().contains(s.tool())) {
          steps[1]++;
          assertEquals(ToolError.NOT_OFFERED.name(), s.error(), "an unoffered tool reached its worker: " + s);
        }
        if (ToolError.NOT_OFFERED.name().equals(s.error())) steps[2]++;
      }
    });
    assertEquals(steps[1], steps[2], "refused exactly the unoffered calls");
    return steps[2];
  }

  private static void awaitAudit(ActorSystem<?> system, String runId, long expected) {
    ActorTestKit.create(system).createTestProbe().awaitAssert(Duration.ofSeconds(20), () -> {
      try {
        assertEquals(expected, audit(system, runId).size(), "audit trail in the journal");
      } catch (Exception e) {
        throw new AssertionError(e);
      }
      return null;
    });
  }

  @Test void defaultsRefuseExactlyTheUnofferedCalls(@TempDir Path dir) throws Exception {
    var system = start(dir, Map.of());
    try {
      // the teacher's wrong-tool mistakes pick a sibling tool of the domain, often one it was not offered
      String teacherRun = "teacher-" + System.nanoTime();
      var teacher = RunDriver.start(system, new RunDriver.RunSpec(teacherRun, 30, 4, 7,
          Agent.PersistMode.ALL, Duration.ofSeconds(60)), s -> {}).get(90, TimeUnit.SECONDS);
      assertTrue(teacher.complete());
      assertEquals(0, teacher.get("refused/RATE_LIMITED"), "the default limits never bind on the teacher: " + teacher.counters());
      assertEquals(refusedIn(teacher), teacher.get("refused/NOT_OFFERED"));
      assertEquals(teacher.get("refused/NOT_OFFERED"), checkOnlyUnofferedRefused(system, teacherRun));
      awaitAudit(system, teacherRun, refusedIn(teacher));

      // as in the issue: an (here untrained) learned policy calls tools it was never offered
      var services = NodeServices.get(system);
      var cfg = new dev.k2pekko.model.ModelConfig(services.format().tokenizer().vocabSize(), 16, 1, 2, 192, 2, 1e-5);
      services.inference().tell(new dev.k2pekko.agents.inference.InferenceServer.NewWeights(
          dev.k2pekko.model.WeightsSnapshot.of(1, new dev.k2pekko.model.PolicyModel(cfg, new dev.k2pekko.ops.ReferenceOps(), 1))));
      String runId = "learned-" + System.nanoTime();
      var learned = RunDriver.start(system, new RunDriver.RunSpec(runId, 4, 2, 7, Agent.PersistMode.ALL, Duration.ofSeconds(60),
          new Agent.EpisodeSpec(Agent.Tasks.TRAIN, "learned", 1.0, 1)), s -> {}).get(120, TimeUnit.SECONDS);
      assertTrue(learned.complete(), "learned run incomplete: " + learned.counters());
      long refused = checkOnlyUnofferedRefused(system, runId);
      assertTrue(refused > 0, "the untrained policy should call some tool it was not offered: " + learned.counters());
      assertEquals(refused, learned.get("refused/NOT_OFFERED"));
      awaitAudit(system, runId, refusedIn(learned));
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  @Test void summaryCountersMatchTheAuditTrail(@TempDir Path dir) throws Exception {
    // one token per 1000 s after a burst of 2: an agent's third call on is refused
    var system = start(dir, Map.of("k2.tools.firewall.per-agent.rate", 0.001, "k2.tools.firewall.per-agent.burst", 2));
    try {
      String runId = "limited-" + System.nanoTime();
      var s = RunDriver.start(system, new RunDriver.RunSpec(runId, 10, 2, 7, Agent.PersistMode.NONE, Duration.ofSeconds(60)),
          x -> {}).get(90, TimeUnit.SECONDS);
      assertTrue(s.complete());
      long refused = refusedIn(s);
      assertTrue(s.get("refused/RATE_LIMITED") > 0, "expected rate-limited calls: " + s.counters());
      // the rest are the teacher's wrong-tool mistakes, refused before they take a token
      assertEquals(refused, s.get("refused/RATE_LIMITED") + s.get("refused/NOT_OFFERED"));
      // 10 agents, 2 calls each got through
      assertEquals(20, s.get("tool_calls") - refused);
      var probe = ActorTestKit.create(system).createTestProbe();
      var trail = new ArrayList<CallsRefused.Refusal>();
      probe.awaitAssert(Duration.ofSeconds(20), () -> {
        try {
          trail.clear();
          trail.addAll(audit(system, runId));
        } catch (Exception e) {
          throw new AssertionError(e);
        }
        assertEquals(refused, trail.size(), () -> trail.stream().map(r -> r.episodeId() + " " + r.callId() + " " + r.tool()).sorted().toList().toString());
        return null;
      });
      assertEquals(s.get("refused/RATE_LIMITED"), trail.stream().filter(r -> r.reason().equals("RATE_LIMITED")
          && r.agentId() != null && r.detail().contains("calls/s")).count());
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }
}
