package dev.k2pekko.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import dev.k2pekko.protocol.OpenEpisode;
import dev.k2pekko.protocol.ToolCall;
import dev.k2pekko.protocol.ToolCommand;
import dev.k2pekko.protocol.ToolResult;
import dev.k2pekko.tools.Firewall;
import dev.k2pekko.tools.ToolDirectory;
import dev.k2pekko.tools.ToolWorker;
import dev.k2pekko.tools.mcp.McpServer;
import dev.k2pekko.tools.mcp.McpTools;
import io.modelcontextprotocol.client.McpAsyncClient;
import io.modelcontextprotocol.client.McpClient;
import io.modelcontextprotocol.client.transport.ServerParameters;
import io.modelcontextprotocol.client.transport.StdioClientTransport;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.spec.McpSchema;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * {@code k2 bench mcp}: tools/call through the bridge (a tool worker with the firewall, then the server's actor,
 * then the server process) against the MCP SDK's async client called directly, each on its own process of the same
 * server, alternating in one JVM: calls/s and p50/p99 latency per server process, and the bridge's overhead; and the
 * server's actor asked straight (no tool worker, no firewall), to see which part of the bridge costs.
 */
public final class McpBench {
  /**
   * @param server NAME=COMMAND of the server; @param tool the server's tool to call; @param calls calls per measured
   * round; @param concurrency calls in flight at once; @param rounds measured rounds of each (bridge, the server's actor
   * and the SDK take turns at going first); @param warmupRounds unmeasured rounds of each before
   */
  public record Settings(String server, String tool, int calls, int concurrency, int rounds, int warmupRounds) {}

  private final int concurrency;

  private McpBench(int concurrency) {
    this.concurrency = concurrency;
  }

  /** The figures of one run on {@code system} (whose config is {@code config}); the caller stops the system. */
  public static ObjectNode run(Config config, ActorSystem<?> system, Settings s) throws Exception {
    return new McpBench(s.concurrency()).measureAll(config, system, s.server(), s.tool(), s.calls(), s.rounds(), s.warmupRounds());
  }

  private ObjectNode measureAll(Config config, ActorSystem<?> system, String server, String tool, int calls, int rounds,
                                int warmupRounds) throws Exception {
    var spec = McpServer.Spec.parse(server);
    Map<String, Object> args = tool.equals("echo") ? Map.of("message", "hello from k2") : Map.of();
    McpAsyncClient direct = null;
    try {
      var registry = new McpTools();
      var c = config.getConfig("k2.mcp");
      var settings = new McpServer.Settings(c.getDuration("start-timeout"), c.getDuration("call-timeout"), c.getDuration("min-backoff"),
          c.getDuration("max-backoff"), (int) c.getBytes("max-result").longValue(), (int) c.getBytes("max-message").longValue());
      ActorRef<McpServer.Command> serverRef = system.systemActorOf(McpServer.create(spec, settings, registry), "mcp-" + spec.name(), Props.empty());
      var up = AskPattern.<McpServer.Command, McpServer.Tools>ask(serverRef, McpServer.GetTools::new, settings.startTimeout().plusSeconds(5),
          system.scheduler()).toCompletableFuture().get();
      if (up.error() != null) throw new IllegalStateException(up.error());
      // the firewall on, without rate limits: one bench agent makes every call
      var fs = Firewall.Settings.from(config.getConfig("k2.tools"));
      var fw = new Firewall(new Firewall.Settings(true, Firewall.Limit.NONE, Firewall.Limit.NONE, fs.maxPayloadBytes(), fs.sandbox(), fs.pathArguments()));
      ActorRef<ToolCommand> worker = system.systemActorOf(ToolWorker.create(ToolDirectory.get(system).universe(),
          new ToolWorker.Settings(7, 4096, Duration.ofMinutes(10)), fw, r -> {}, registry), "bench-worker", Props.empty());
      String k2Name = spec.name() + "." + tool;
      worker.tell(new OpenEpisode("bench", "bench-agent", List.of(k2Name)));

      var params = ServerParameters.builder(spec.command()).args(spec.args()).env(spec.env()).build();
      direct = McpClient.async(new StdioClientTransport(params, McpJsonDefaults.getMapper(), settings.maxMessageBytes()))
          .requestTimeout(settings.callTimeout()).clientInfo(new McpSchema.Implementation("k2-bench", "0")).build();
      direct.initialize().block(settings.startTimeout());
      var d = direct;
      var callNo = new long[1];
      Supplier<CompletableFuture<?>> viaBridge = () -> AskPattern.<ToolCommand, ToolResult>ask(worker,
          replyTo -> new ToolCall("bench", "c" + callNo[0]++, k2Name, args, replyTo), settings.callTimeout(), system.scheduler())
          .toCompletableFuture().thenApply(r -> {
            if (!r.ok()) throw new IllegalStateException("bridge call failed: " + r);
            return r;
          });
      Supplier<CompletableFuture<?>> viaSdk = () -> d.callTool(new McpSchema.CallToolRequest(tool, args)).toFuture();
      // the server's actor asked directly, without the tool worker (and its firewall): where the bridge's time goes
      Supplier<CompletableFuture<?>> viaActor = () -> AskPattern.<McpServer.Command, ToolResult>ask(serverRef,
          replyTo -> new McpServer.Call(new ToolCall("bench", "a" + callNo[0]++, k2Name, args, replyTo), tool, args),
          settings.callTimeout(), system.scheduler()).toCompletableFuture();

      // warm-up rounds of full size, in the same rotation: with 400 calls each the rates still rose through the measured
      // rounds (round 1 about 2,500-3,500 calls/s, round 3 7,000-9,000 on 2026-12-02), so what ran first was slower
      for (int w = 0; w < warmupRounds; w++) {
        for (int k = 0; k < 3; k++) measure(switch ((w + k) % 3) { case 0 -> viaBridge; case 1 -> viaActor; default -> viaSdk; }, calls);
      }
      double[] bridge = new double[2], sdk = new double[2], actor = new double[2];
      var bridgeLat = new long[rounds * calls];
      var sdkLat = new long[rounds * calls];
      var perRound = new ObjectMapper().createArrayNode();
      for (int r = 0; r < rounds; r++) {
        // the three take turns at going first (bridge, actor, SDK; then actor, SDK, bridge; ...): what runs right after
        // another process's round, or first after a pause, does not always fall to the same side
        var row = perRound.addObject();
        for (int k = 0; k < 3; k++) {
          switch ((r + k) % 3) {
            case 0 -> {
              var b = measure(viaBridge, calls);
              System.arraycopy(b.latencies, 0, bridgeLat, r * calls, calls);
              bridge[0] += calls;
              bridge[1] += b.seconds;
              row.put("bridge", Math.round(calls / b.seconds));
            }
            case 1 -> {
              var a = measure(viaActor, calls);
              actor[0] += calls;
              actor[1] += a.seconds;
              row.put("actor", Math.round(calls / a.seconds));
            }
            default -> {
              var sd = measure(viaSdk, calls);
              System.arraycopy(sd.latencies, 0, sdkLat, r * calls, calls);
              sdk[0] += calls;
              sdk[1] += sd.seconds;
              row.put("sdk", Math.round(calls / sd.seconds));
            }
          }
        }
      }
      Arrays.sort(bridgeLat);
      Arrays.sort(sdkLat);
      double bridgeRate = bridge[0] / bridge[1], sdkRate = sdk[0] / sdk[1];
      var o = new ObjectMapper().createObjectNode().put("bench", "mcp").put("server", spec.name()).put("tool", tool)
          .put("calls_per_round", calls).put("rounds", rounds).put("warmup_rounds", warmupRounds).put("concurrency", concurrency)
          .put("bridge_calls_per_s", Math.round(bridgeRate)).put("bridge_p50_ms", ms(bridgeLat, 0.50)).put("bridge_p99_ms", ms(bridgeLat, 0.99))
          .put("sdk_calls_per_s", Math.round(sdkRate)).put("sdk_p50_ms", ms(sdkLat, 0.50)).put("sdk_p99_ms", ms(sdkLat, 0.99))
          .put("server_actor_only_calls_per_s", Math.round(actor[0] / actor[1]))
          .put("bridge_over_sdk_time", Math.round(1000 * sdkRate / bridgeRate) / 1000.0)
          .put("cores", Runtime.getRuntime().availableProcessors());
      o.set("calls_per_s_by_round", perRound);
      return o;
    } finally {
      if (direct != null) direct.close();
    }
  }

  private record Round(long[] latencies, double seconds) {}

  /** {@code n} calls, at most {@code concurrency} in flight; each call's latency in nanoseconds. */
  private Round measure(Supplier<CompletableFuture<?>> call, int n) throws Exception {
    var lat = new long[n];
    var permits = new Semaphore(concurrency);
    var all = new CompletableFuture<?>[n];
    long t0 = System.nanoTime();
    for (int i = 0; i < n; i++) {
      if (!permits.tryAcquire(30, TimeUnit.SECONDS)) throw new IllegalStateException("no call finished within 30 s");
      int k = i;
      long start = System.nanoTime();
      all[i] = call.get().whenComplete((r, e) -> {
        lat[k] = System.nanoTime() - start;
        permits.release();
      });
    }
    CompletableFuture.allOf(all).get(60, TimeUnit.SECONDS);
    return new Round(lat, (System.nanoTime() - t0) / 1e9);
  }

  private static double ms(long[] sorted, double q) {
    return Math.round(sorted[Math.min(sorted.length - 1, (int) (q * sorted.length))] / 1e4) / 100.0;
  }
}
