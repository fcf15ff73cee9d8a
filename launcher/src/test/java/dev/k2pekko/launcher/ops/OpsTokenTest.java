package dev.k2pekko.launcher.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.Test;

/**
 * The operations endpoint with a bearer token (what `--http-host` other than loopback requires): a request without
 * it, or with another, is 401 with one line; the header lets Prometheus and curl in; {@code ?access_token=} lets a
 * browser in and sets the cookie that the dashboard's own requests carry.
 */
class OpsTokenTest {
  static final String TOKEN = "k2-test-token-0123456789abcdef";

  @Test void everyRequestNeedsTheToken() throws Exception {
    var system = ActorSystem.create(Behaviors.empty(), "k2", ConfigFactory.parseMap(Map.of("pekko.cluster.roles", List.of("tool"),
        "pekko.loglevel", "WARNING")).withFallback(ConfigFactory.load()));
    try (var running = OpsServer.start(system, "127.0.0.1", 0, Duration.ofSeconds(1), TOKEN)) {
      var http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
      var base = URI.create(running.url());
      for (var path : List.of("", "metrics", "alive", "snapshot", "dashboard.js", "nowhere")) {
        var none = http.send(HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(401, none.statusCode(), "/" + path + " without the token");
        assertEquals(1, none.body().strip().lines().count(), none.body());
        assertEquals("Bearer realm=\"k2\"", none.headers().firstValue("WWW-Authenticate").orElse(""));
        var wrong = http.send(HttpRequest.newBuilder(base.resolve(path)).header("Authorization", "Bearer " + TOKEN + "x")
            .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(401, wrong.statusCode(), "/" + path + " with another token");
      }
      var metrics = http.send(HttpRequest.newBuilder(base.resolve("metrics")).header("Authorization", "Bearer " + TOKEN)
          .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
      assertEquals(200, metrics.statusCode());
      assertTrue(metrics.body().contains("jvm_memory_used_bytes"), "the Prometheus text");
      var nowhere = http.send(HttpRequest.newBuilder(base.resolve("nowhere")).header("Authorization", "Bearer " + TOKEN)
          .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
      assertEquals(404, nowhere.statusCode(), "with the token, the routes answer as without one");

      var page = http.send(HttpRequest.newBuilder(base.resolve("?access_token=" + TOKEN)).timeout(Duration.ofSeconds(30)).build(),
          HttpResponse.BodyHandlers.ofString());
      assertEquals(200, page.statusCode());
      var cookie = page.headers().firstValue("Set-Cookie").orElseThrow();
      assertTrue(cookie.startsWith(OpsServer.COOKIE + "=" + TOKEN + ";") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), cookie);
      var script = http.send(HttpRequest.newBuilder(base.resolve("dashboard.js")).header("Cookie", OpsServer.COOKIE + "=" + TOKEN)
          .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
      assertEquals(200, script.statusCode(), "the page's own requests carry the cookie");
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, java.util.concurrent.TimeUnit.SECONDS);
    }
  }
}
