package dev.k2pekko.bench;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Load on an OpenAI-compatible chat-completions endpoint ({@code k2 bench serve}): {@code clients} clients, each
 * sending its next request when the last one is answered (closed loop), for a warm-up and then a measured period.
 * Every request asks for the next action of a core-tool task with its tools offered; the numbers vary by request.
 */
public final class ServeLoad {
  private ServeLoad() {}

  public record Result(int clients, long requests, long errors, long toolCalls, double seconds, double requestsPerSecond, double p50Ms,
                       double p99Ms, double maxMs, String firstError) {}

  public static Result run(URI chatCompletions, String model, int clients, Duration warmup, Duration measured) throws InterruptedException {
    var http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
    var latencies = new ConcurrentLinkedQueue<long[]>();
    var errors = new AtomicLong();
    var toolCalls = new AtomicLong();
    var firstError = new java.util.concurrent.atomic.AtomicReference<String>();
    long start = System.nanoTime(), measureFrom = start + warmup.toNanos(), end = measureFrom + measured.toNanos();
    try (var pool = Executors.newVirtualThreadPerTaskExecutor()) {
      for (int c = 0; c < clients; c++) {
        int client = c;
        pool.submit(() -> {
          var mine = new ArrayList<Long>();
          long i = 0;
          while (System.nanoTime() < end) {
            long a = 1 + (client * 7 + i) % 90, b = 2 + (client + i * 3) % 90;
            String body = "{\"model\": \"" + model + "\", \"messages\": [{\"role\": \"user\", \"content\": \"Calculate " + a + " + " + b
                + ", then write it into the notes. Answer with the final value.\"}], \"tools\": [{\"type\": \"function\", \"function\": "
                + "{\"name\": \"calc__add\"}}, {\"type\": \"function\", \"function\": {\"name\": \"notes__write\"}}], \"seed\": " + (i++) + "}";
            long t0 = System.nanoTime();
            try {
              var r = http.send(HttpRequest.newBuilder(chatCompletions).timeout(Duration.ofSeconds(30)).header("Content-Type", "application/json")
                  .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
              long t1 = System.nanoTime();
              if (t0 < measureFrom || t1 > end) continue;
              if (r.statusCode() != 200) {
                errors.incrementAndGet();
                firstError.compareAndSet(null, r.statusCode() + " " + r.body());
              } else {
                mine.add(t1 - t0);
                if (r.body().contains("\"tool_calls\"")) toolCalls.incrementAndGet();
              }
            } catch (Exception e) {
              if (System.nanoTime() >= measureFrom) {
                errors.incrementAndGet();
                firstError.compareAndSet(null, e.toString());
              }
            }
          }
          latencies.add(mine.stream().mapToLong(Long::longValue).toArray());
          return null;
        });
      }
      pool.shutdown();
      if (!pool.awaitTermination(measured.plus(warmup).plusSeconds(60).toSeconds(), TimeUnit.SECONDS)) throw new IllegalStateException("clients did not finish");
    }
    long[] all = latencies.stream().flatMapToLong(Arrays::stream).sorted().toArray();
    double seconds = measured.toNanos() / 1e9;
    return new Result(clients, all.length, errors.get(), toolCalls.get(), seconds, all.length / seconds, pct(all, 0.50), pct(all, 0.99),
        all.length == 0 ? 0 : all[all.length - 1] / 1e6, firstError.get());
  }

  private static double pct(long[] sorted, double q) {
    if (sorted.length == 0) return 0;
    return sorted[Math.min(sorted.length - 1, (int) Math.ceil(q * sorted.length) - 1)] / 1e6;
  }

}
