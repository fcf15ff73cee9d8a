package dev.k2pekko.agents;

import com.typesafe.config.Config;
import dev.k2pekko.tools.ToolDirectory;
import java.util.HashSet;
import java.util.Set;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Starts a k2 node: what its roles ({@code pekko.cluster.roles}) ask for. {@code tool}: the tool workers;
 * {@code agent}: the judge, and the agent-cohort and collector shards. Every node can reach agent cohorts and collectors
 * (through a shard-region proxy where it does not host them). All of it is started before this returns, so a
 * caller can send to agents at once.
 */
public final class K2Node {
  private K2Node() {}

  /** Starts the node; with {@code k2.cluster.tls} set, its cluster traffic goes over TLS ({@link ClusterTls}). */
  public static ActorSystem<Void> start(String name, Config config) {
    config = ClusterTls.apply(config);
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), name, config);
    try {
      Set<String> roles = new HashSet<>(config.getStringList("pekko.cluster.roles"));
      var tools = ToolDirectory.get(system);
      if (roles.contains("tool")) tools.startWorkers(system, FirewallAudit.start(system));
      else tools.followRemoteWorkers(system);
      if (roles.contains("agent")) {
        var services = NodeServices.get(system);
        services.startJudges(system);
        services.setInference(system.systemActorOf(
            dev.k2pekko.agents.inference.InferenceServer.create(services.format(), services.inferenceSettings()), "inference", Props.empty()));
        // the HTTP client of java.net.http is touched only here, where a served LLM is configured
        if (services.openAiSettings() != null) {
          services.setOpenAi(system.systemActorOf(dev.k2pekko.agents.inference.OpenAiPolicy.create(services.openAiSettings(), tools.universe(), tools.mcpTools()),
              "openai-policy", Props.empty()));
        }
      }
      AgentCohort.init(system);
      TrajectoryCollector.init(system);
      return system;
    } catch (RuntimeException e) {
      system.terminate();
      throw e;
    }
  }

  /** Waits until at least {@code n} members are up, as this node sees the cluster. */
  public static void awaitMembersUp(ActorSystem<?> system, int n, java.time.Duration timeout) throws InterruptedException {
    var cluster = org.apache.pekko.cluster.typed.Cluster.get(system);
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      long up = 0;
      for (var m : cluster.state().getMembers()) if (m.status() == org.apache.pekko.cluster.MemberStatus.up()) up++;
      if (up >= n) return;
      if (System.nanoTime() > deadline) throw new IllegalStateException("only " + up + " of " + n + " members up after " + timeout);
      Thread.sleep(20);
    }
  }
}
