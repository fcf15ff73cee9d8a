package dev.k2pekko.bench;

import com.typesafe.config.Config;
import dev.k2pekko.agents.ClusterTls;
import dev.k2pekko.agents.K2Node;
import dev.k2pekko.protocol.OpenEpisode;
import dev.k2pekko.protocol.ToolCall;
import dev.k2pekko.protocol.ToolCommand;
import dev.k2pekko.protocol.ToolResult;
import dev.k2pekko.tools.ParamType;
import dev.k2pekko.tools.ToolDirectory;
import dev.k2pekko.tools.ToolSpec;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * Tool calls between two cluster nodes, ActorSystems on loopback in this JVM: a caller node without the tool role
 * sends {@link ToolCall}s to the tool workers of the other node (Kryo over Artery) and waits for each
 * {@link ToolResult}, {@code concurrency} calls in flight, over plain TCP or TLS (k2.cluster.tls); {@code k2 bench tls}
 * alternates the two, each round on a fresh pair of nodes.
 */
public final class TlsBench {
  private TlsBench() {}

  public record Round(boolean tls, long calls, double seconds, double p50Ms, double p99Ms, long errors) {
    public double perSecond() { return calls / seconds; }
  }

  /** The median calls/s of the rounds over {@code tls} (or plain TCP). */
  public static double median(List<Round> rounds, boolean tls) {
    double[] v = rounds.stream().filter(r -> r.tls() == tls).mapToDouble(Round::perSecond).sorted().toArray();
    return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  }

  /**
   * One round on a fresh pair of nodes: {@code tls}, the certificates (as {@code k2 certs} makes them), or null for
   * plain TCP; {@code config} makes a node's configuration from its overrides.
   */
  public static Round round(Path tls, int concurrency, int warmup, int calls, Function<Map<String, Object>, Config> config) throws Exception {
    int toolPort = freePort();
    var tools = start(List.of("tool"), toolPort, toolPort, tls, config);
    ActorSystem<Void> caller = null;
    try {
      caller = start(List.of("monitor"), 0, toolPort, tls, config);
      K2Node.awaitMembersUp(caller, 2, Duration.ofSeconds(60));
      if (ClusterTls.on(caller.settings().config()) != (tls != null)) throw new IllegalStateException("the transport is not the one asked for");
      var directory = ToolDirectory.get(caller);
      var spec = numericTool(directory);
      var args = new LinkedHashMap<String, Object>();
      for (var p : spec.params()) args.put(p.name(), p.type() == ParamType.INTEGER ? (Object) 7L : (Object) 3.5);
      // one episode per slot, opened on the worker that owns it (on the tool node)
      var workers = new ArrayList<ActorRef<ToolCommand>>();
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      for (int i = 0; i < concurrency; i++) {
        ActorRef<ToolCommand> w;
        while ((w = directory.workerFor("bench-" + i)) == null) {
          if (System.nanoTime() > deadline) throw new IllegalStateException("the tool node's workers did not show within 60 s");
          Thread.sleep(20);
        }
        w.tell(new OpenEpisode("bench-" + i, "bench-agent-" + i, List.of(spec.name())));
        workers.add(w);
      }
      run(caller, workers, spec.name(), args, warmup);
      return run(caller, workers, spec.name(), args, calls).withTls(tls != null);
    } finally {
      if (caller != null) caller.terminate();
      tools.terminate();
      if (caller != null) caller.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
      tools.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  /** A tool whose parameters are all numbers, so that every call is valid and does the tool's work. */
  private static ToolSpec numericTool(ToolDirectory directory) {
    for (var t : directory.universe().all()) {
      if (!t.params().isEmpty() && t.params().stream().allMatch(p -> p.type() == ParamType.INTEGER || p.type() == ParamType.NUMBER)) return t;
    }
    throw new IllegalStateException("no tool with numeric parameters in the universe");
  }

  private record Measured(long calls, double seconds, double p50Ms, double p99Ms, long errors) {
    Round withTls(boolean tls) { return new Round(tls, calls, seconds, p50Ms, p99Ms, errors); }
  }

  /** {@code n} calls, {@code workers.size()} in flight (each slot its own episode), closed loop. */
  private static Measured run(ActorSystem<?> caller, List<ActorRef<ToolCommand>> workers, String tool, Map<String, Object> args, int n) throws Exception {
    var latencies = new long[n];
    var next = new AtomicLong();
    var errors = new AtomicLong();
    var slots = new ArrayList<CompletableFuture<Void>>();
    long start = System.nanoTime();
    for (int s = 0; s < workers.size(); s++) {
      var done = new CompletableFuture<Void>();
      slots.add(done);
      callNext(caller, workers.get(s), "bench-" + s, tool, args, n, next, latencies, errors, done);
    }
    CompletableFuture.allOf(slots.toArray(CompletableFuture[]::new)).get(10, TimeUnit.MINUTES);
    double seconds = (System.nanoTime() - start) / 1e9;
    Arrays.sort(latencies);
    return new Measured(n, seconds, latencies[n / 2] / 1e6, latencies[(int) Math.min(n - 1, Math.ceil(n * 0.99) - 1)] / 1e6, errors.get());
  }

  private static void callNext(ActorSystem<?> caller, ActorRef<ToolCommand> worker, String episode, String tool, Map<String, Object> args,
                               int n, AtomicLong next, long[] latencies, AtomicLong errors, CompletableFuture<Void> done) {
    long i = next.getAndIncrement();
    if (i >= n) {
      done.complete(null);
      return;
    }
    long t0 = System.nanoTime();
    AskPattern.<ToolCommand, ToolResult>ask(worker, replyTo -> new ToolCall(episode, "c" + i, tool, args, replyTo), Duration.ofSeconds(30), caller.scheduler())
        .whenComplete((r, failure) -> {
          latencies[(int) i] = System.nanoTime() - t0;
          if (failure != null) errors.incrementAndGet();
          callNext(caller, worker, episode, tool, args, n, next, latencies, errors, done);
        });
  }

  private static ActorSystem<Void> start(List<String> roles, int port, int seedPort, Path tls, Function<Map<String, Object>, Config> config) {
    var o = new HashMap<String, Object>();
    o.put("pekko.cluster.roles", roles);
    o.put("pekko.remote.artery.canonical.port", port);
    o.put("pekko.cluster.seed-nodes", List.of("pekko://k2@127.0.0.1:" + seedPort));
    o.put("pekko.loglevel", "WARNING");
    o.put("k2.tools.firewall.enabled", false); // the transport is measured, not the firewall's buckets
    o.put("k2.cluster.tls", tls == null ? "" : tls.toString());
    return K2Node.start("k2", config.apply(o));
  }

  private static int freePort() throws Exception {
    try (var s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }
}
