package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The same seed twice gives the same synthesis trajectories: two runs, each in a JVM of its own (a JVM salts the
 * iteration order of {@code Map.of}, and run ids hold the start time), on one H2 journal; every trajectory of one
 * (its id after the run id, every call with its arguments in order and its result, the answer, the verdict) equals
 * the other's, and so do the summaries' accepted counts and fingerprints. The first run has one judge, the second
 * three: how many judges share the agents changes what is judged when, not what is judged.
 */
class DeterminismTest {
  static final int AGENTS = 200, EPISODES = 5;

  @Test void theSameSeedTwiceGivesTheSameTrajectories(@TempDir Path dir) throws Exception {
    var journal = dir.resolve("journal");
    var first = run(journal, "seed-a", 42, 1, dir.resolve("a.log"));
    var second = run(journal, "seed-b", 42, 3, dir.resolve("b.log"));
    assertEquals(List.of(Long.valueOf(AGENTS * EPISODES)), List.of(first[0]), "episodes of the first run");
    assertEquals(first[1], second[1], "accepted");
    assertEquals(first[2], second[2], "fingerprint of the runs' trajectories");

    var system = K2Node.start("k2", TestNodes.h2(journal, Map.of()));
    try {
      var a = trajectories(system, "seed-a");
      var b = trajectories(system, "seed-b");
      assertEquals(AGENTS * EPISODES, a.size());
      assertEquals(a.keySet(), b.keySet(), "trajectory ids after the run id");
      int differing = 0;
      String example = null;
      for (var e : a.entrySet()) {
        if (!e.getValue().equals(b.get(e.getKey()))) {
          differing++;
          if (example == null) example = e.getKey() + "\n  " + e.getValue() + "\n  " + b.get(e.getKey());
        }
      }
      assertEquals(0, differing, "trajectories that differ between two runs of one seed, e.g. " + example);
      long accepted = a.values().stream().filter(t -> t.contains("accepted=true")).count();
      assertEquals(first[1], accepted, "accepted in the journal vs the summary");
      assertTrue(accepted > 0 && accepted < AGENTS * EPISODES, "the teacher's mistakes should give the judge something to reject");
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
    assertNotEquals(0L, first[2]);
  }

  /** A run in a JVM of its own: episodes, accepted and fingerprint from its summary. */
  private static long[] run(Path journal, String runId, long seed, int judges, Path log) throws Exception {
    var java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    var cmd = new ArrayList<>(List.of(java, "-Xmx768m", "-Xss2m", "-XX:+UseParallelGC", "--enable-native-access=ALL-UNNAMED",
        "--add-opens", "java.base/java.lang=ALL-UNNAMED", "--add-opens", "java.base/java.util=ALL-UNNAMED",
        "--add-opens", "java.base/java.nio=ALL-UNNAMED", "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
        "-cp", System.getProperty("java.class.path"), SeedRunMain.class.getName(), journal.toString(), runId, Long.toString(seed),
        Integer.toString(judges)));
    var p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    if (!p.waitFor(240, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("run " + runId + " did not end within 240 s:\n" + Files.readString(log));
    }
    var out = Files.readString(log);
    assertEquals(0, p.exitValue(), "run " + runId + " failed:\n" + out);
    var line = out.lines().filter(l -> l.startsWith("result ")).findFirst().orElseThrow(() -> new AssertionError("no result line:\n" + out));
    var f = line.split(" ");
    return new long[] {Long.parseLong(f[1]), Long.parseLong(f[2]), Long.parseLong(f[3])};
  }

  /** A run's trajectories by id after the run id, as text: every call with its arguments in order, the answer, the verdict. */
  private static Map<String, String> trajectories(org.apache.pekko.actor.typed.ActorSystem<?> system, String runId) throws Exception {
    var out = new HashMap<String, String>();
    new TrajectoryReplay(system).forEach(TrajectoryReplay.Filter.ALL, Duration.ofSeconds(60), (tag, t) -> {
      if (t.trajectoryId().startsWith(runId + "/")) out.put(t.trajectoryId().substring(runId.length() + 1),
          t.taskId() + " " + t.steps() + " " + t.finalAnswer() + " " + t.verdict());
    });
    return out;
  }
}
