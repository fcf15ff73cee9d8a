package dev.k2pekko.launcher;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.k2pekko.bench.TlsBench;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code k2 bench tls}: the command of {@link TlsBench} (module bench): rounds alternate plain TCP and TLS
 * (k2.cluster.tls, certificates of {@code k2 certs} made for the run), each on a fresh pair of nodes; calls/s and
 * latency per round.
 */
@Command(name = "tls", mixinStandardHelpOptions = true,
    description = "Tool calls/s between two nodes (loopback, this JVM) with Artery over plain TCP and over TLS with mutual authentication, "
        + "alternating in one run.")
final class BenchTls implements Callable<Integer> {
  @Mixin NodeConfig node;
  @Option(names = "--calls", defaultValue = "40000", description = "calls measured per round (default ${DEFAULT-VALUE})") int calls;
  @Option(names = "--warmup", defaultValue = "10000", description = "calls before measuring, per round (default ${DEFAULT-VALUE})") int warmup;
  @Option(names = "--concurrency", defaultValue = "64", description = "calls in flight at once (default ${DEFAULT-VALUE})") int concurrency;
  @Option(names = "--pairs", defaultValue = "2", description = "plain/TLS pairs of rounds (default ${DEFAULT-VALUE})") int pairs;
  @Option(names = "--json") boolean json;

  @Override public Integer call() throws Exception {
    if (calls < 1 || warmup < 0 || concurrency < 1 || pairs < 1) throw new NodeConfig.UsageError("--calls, --concurrency and --pairs must be at least 1, --warmup not negative");
    var certs = Files.createTempDirectory("k2-bench-tls");
    try {
      CertsCommand.make(certs.resolve("tls"), null, "bench");
      var rounds = new ArrayList<TlsBench.Round>();
      for (int p = 0; p < pairs; p++) {
        for (boolean tls : new boolean[] {false, true}) {
          var r = TlsBench.round(tls ? certs.resolve("tls") : null, concurrency, warmup, calls, o -> node.build("h2", o));
          System.err.printf("k2: %s: %,.0f calls/s, p50 %.2f ms, p99 %.2f ms%n", tls ? "TLS  " : "plain", r.perSecond(), r.p50Ms(), r.p99Ms());
          rounds.add(r);
        }
      }
      var out = new ObjectMapper().createObjectNode();
      double plain = TlsBench.median(rounds, false), tls = TlsBench.median(rounds, true);
      out.put("calls_per_round", calls).put("concurrency", concurrency).put("pairs", pairs);
      out.put("plain_calls_per_s", Math.round(plain)).put("tls_calls_per_s", Math.round(tls)).put("tls_over_plain", Math.round(tls / plain * 1000) / 1000.0);
      var list = out.putArray("rounds");
      long errors = 0;
      for (var r : rounds) {
        list.addObject().put("transport", r.tls() ? "tls" : "plain").put("calls_per_s", Math.round(r.perSecond()))
            .put("p50_ms", Math.round(r.p50Ms() * 100) / 100.0).put("p99_ms", Math.round(r.p99Ms() * 100) / 100.0).put("errors", r.errors());
        errors += r.errors();
      }
      BenchCommand.print(out, json);
      return errors == 0 ? 0 : 1;
    } finally {
      try (var files = Files.walk(certs)) {
        for (var f : files.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
      }
    }
  }
}
