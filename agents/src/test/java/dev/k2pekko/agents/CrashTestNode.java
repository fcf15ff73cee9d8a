package dev.k2pekko.agents;

import java.util.List;

/**
 * A k2 node in a JVM of its own, for {@link NodeCrashTest}: args are the journal's JDBC URL, this node's port and the
 * seed node's port (all on 127.0.0.1). It runs until its standard input closes (the test ended) or it is killed.
 */
public final class CrashTestNode {
  private CrashTestNode() {}

  public static void main(String[] args) throws Exception {
    var overrides = new java.util.HashMap<String, Object>(NodeCrashTest.NODE);
    overrides.put("pekko.remote.artery.canonical.port", Integer.parseInt(args[1]));
    overrides.put("pekko.cluster.seed-nodes", List.of("pekko://k2@127.0.0.1:" + args[2]));
    var config = TestNodes.postgres(args[0], overrides);
    var system = K2Node.start("k2", config);
    System.out.println("started " + system.address());
    System.out.flush();
    while (System.in.read() >= 0) {
      // the test holds our stdin open for as long as we are to live
    }
    system.terminate();
    system.getWhenTerminated().toCompletableFuture().get(30, java.util.concurrent.TimeUnit.SECONDS);
    System.exit(0);
  }
}
