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
   * and the SDK take turns at going first); @param warmupRounds unmeasured rounds of each before; @param sliceCalls
   * within a measured round the three alternate every this many calls (0: each its whole round at once)
   */
  public record Settings(String server, String tool, int calls, int concurrency, int rounds, int warmupRounds, int sliceCalls) {}

  private final int concurrency;

  private McpBench(int concurrency) {
    this.concurrency = concurrency;
  }

  /** The figures of one run on {@code system} (whose config is {@code config}); the caller stops the system. */
  public static ObjectNode run(Config config, ActorSystem<?> system, Settings s) throws Exception {
    return new McpBench(s.concurrency()).measureAll(config, system, s.server(), s.tool(), s.calls(), s.rounds(), s.warmupRounds(), s.sliceCalls());
  }

  private ObjectNode measureAll(Config config, ActorSystem<?> system, String server, String tool, int calls, int rounds,
                                int warmupRounds, int sliceCalls) throws Exception {
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
          .toCompletableFuture().thenApplyAsync(r -> {
            if (!r.ok()) throw new IllegalStateException("bridge call failed: " + r);
            return r;
          }, Runnable::run);
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
      // per path: calls, seconds, CPU seconds (this JVM and the server processes)
      double[] bridge = new double[3], sdk = new double[3], actor = new double[3];
      var bridgeLat = new long[rounds * calls];
      var sdkLat = new long[rounds * calls];
      var perRound = new ObjectMapper().createArrayNode();
      int slice = sliceSize(calls, sliceCalls);
      for (int r = 0; r < rounds; r++) {
        // the three take turns at going first (bridge, actor, SDK; then actor, SDK, bridge; ...): what runs right after
        // another process's round, or first after a pause, does not always fall to the same side. Within a round they
        // alternate in slices, so that a slow spell of the machine (another process's work, the JVM growing its heap and
        // touching the new pages) falls on all three rather than on whichever ran its whole round then.
        double[] bridgeRound = new double[3], actorRound = new double[3], sdkRound = new double[3];
        for (int done = 0; done < calls; done += slice) {
          int n = Math.min(slice, calls - done);
          for (int k = 0; k < 3; k++) {
            switch ((r + k) % 3) {
              case 0 -> add(bridgeRound, measure(viaBridge, n, bridgeLat, r * calls + done));
              case 1 -> add(actorRound, measure(viaActor, n, null, 0));
              default -> add(sdkRound, measure(viaSdk, n, sdkLat, r * calls + done));
            }
          }
        }
        var row = perRound.addObject();
        row.put("bridge", Math.round(bridgeRound[0] / bridgeRound[1])).put("actor", Math.round(actorRound[0] / actorRound[1]))
            .put("sdk", Math.round(sdkRound[0] / sdkRound[1]));
        for (int i = 0; i < 3; i++) {
          bridge[i] += bridgeRound[i];
          actor[i] += actorRound[i];
          sdk[i] += sdkRound[i];
        }
      }
      Arrays.sort(bridgeLat);
      Arrays.sort(sdkLat);
      double bridgeRate = bridge[0] / bridge[1], sdkRate = sdk[0] / sdk[1];
      var o = new ObjectMapper().createObjectNode().put("bench", "mcp").put("server", spec.name()).put("tool", tool)
          .put("calls_per_round", calls).put("calls_per_slice", slice).put("rounds", rounds).put("warmup_rounds", warmupRounds).put("concurrency", concurrency)
          .put("bridge_calls_per_s", Math.round(bridgeRate)).put("bridge_p50_ms", ms(bridgeLat, 0.50)).put("bridge_p99_ms", ms(bridgeLat, 0.99))
          .put("sdk_calls_per_s", Math.round(sdkRate)).put("sdk_p50_ms", ms(sdkLat, 0.50)).put("sdk_p99_ms", ms(sdkLat, 0.99))
          .put("server_actor_only_calls_per_s", Math.round(actor[0] / actor[1]))
          .put("bridge_over_sdk_time", Math.round(1000 * sdkRate / bridgeRate) / 1000.0)
          .put("bridge_cpu_us_per_call", Math.round(10 * 1e6 * bridge[2] / bridge[0]) / 10.0)
          .put("server_actor_only_cpu_us_per_call", Math.round(10 * 1e6 * actor[2] / actor[0]) / 10.0)
          .put("sdk_cpu_us_per_call", Math.round(10 * 1e6 * sdk[2] / sdk[0]) / 10.0)
          .put("cores", Runtime.getRuntime().availableProcessors());
      o.set("calls_per_s_by_round", perRound);
      return o;
    } finally {
      if (direct != null) direct.close();
    }
  }

  /** Calls per slice: {@code sliceCalls}, or the whole round when that is 0 or more than the round. */
  static int sliceSize(int calls, int sliceCalls) {
    return sliceCalls <= 0 ? calls : Math.min(sliceCalls, calls);
  }

  private record Slice(int calls, double seconds, double cpuSeconds) {}

  private static void add(double[] sums, Slice s) {
    sums[0] += s.calls;
    sums[1] += s.seconds;
    sums[2] += s.cpuSeconds;
  }

  private Slice measure(Supplier<CompletableFuture<?>> call, int n) throws Exception {
    return measure(call, n, null, 0);
  }

  /**
   * {@code n} calls, at most {@code concurrency} in flight; each call's latency in nanoseconds goes to {@code lat} from
   * {@code at} (when not null). Each answer is taken on the thread that completes the call's future, for every path:
   * the futures of Pekko's ask (Scala's, converted) run {@code whenComplete} and {@code thenApply} callbacks on
   * {@code ForkJoinPool.commonPool()}, a thread hop per call that the SDK's futures do not make, hence the
   * {@code ...Async(..., Runnable::run)} forms here and in the bridge's check.
   */
  private Slice measure(Supplier<CompletableFuture<?>> call, int n, long[] lat, int at) throws Exception {
    double cpu0 = ProcessCpu.seconds();
    var permits = new Semaphore(concurrency);
    var all = new CompletableFuture<?>[n];
    long t0 = System.nanoTime();
    for (int i = 0; i < n; i++) {
      if (!permits.tryAcquire(30, TimeUnit.SECONDS)) throw new IllegalStateException("no call finished within 30 s");
      int k = at + i;
      long start = System.nanoTime();
      all[i] = call.get().whenCompleteAsync((r, e) -> {
        if (lat != null) lat[k] = System.nanoTime() - start;
        permits.release();
      }, Runnable::run);
    }
    CompletableFuture.allOf(all).get(60, TimeUnit.SECONDS);
    double secs = (System.nanoTime() - t0) / 1e9;
    return new Slice(n, secs, ProcessCpu.seconds() - cpu0);
  }

  private static double ms(long[] sorted, double q) {
    return Math.round(sorted[Math.min(sorted.length - 1, (int) (q * sorted.length))] / 1e4) / 100.0;
  }
}
