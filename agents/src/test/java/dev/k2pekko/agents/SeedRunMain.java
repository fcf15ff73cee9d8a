package dev.k2pekko.agents;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;

/**
 * One synthesis run on one node in a JVM of its own, for {@link DeterminismTest}: args are the H2 journal's directory,
 * the run id, the seed and the node's judge count ({@code k2.judge.count}). Prints {@code result <episodes> <accepted> <fingerprint>} and exits.
 */
public final class SeedRunMain {
  private SeedRunMain() {}

  public static void main(String[] args) throws Exception {
    var config = TestNodes.h2(Path.of(args[0]), Map.of("k2.judge.count", Integer.parseInt(args[3])));
    JournalSchema.ensure(config);
    var system = K2Node.start("k2", config);
    int code = 1;
    try {
      var cluster = Cluster.get(system);
      cluster.manager().tell(Join.create(cluster.selfMember().address()));
      var spec = new RunDriver.RunSpec(args[1], DeterminismTest.AGENTS, DeterminismTest.EPISODES, Long.parseLong(args[2]),
          Agent.PersistMode.ALL, Duration.ofSeconds(120));
      var s = RunDriver.start(system, spec, x -> {}).get(150, TimeUnit.SECONDS);
      System.out.println("result " + s.get("episodes") + " " + s.get("accepted") + " " + s.get("fingerprint") + " " + s.complete());
      code = s.complete() ? 0 : 1;
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
    System.exit(code);
  }
}
