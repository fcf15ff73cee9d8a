package dev.k2pekko.launcher.ops;

import dev.k2pekko.metrics.Metrics;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.Map;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.marshalling.sse.EventStreamMarshalling;
import org.apache.pekko.http.javadsl.model.ContentType;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpCharsets;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.model.headers.CacheDirectives;
import org.apache.pekko.http.javadsl.model.headers.CacheControl;
import org.apache.pekko.http.javadsl.model.sse.ServerSentEvent;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.management.javadsl.PekkoManagement;
import org.apache.pekko.stream.javadsl.Source;

/**
 * A node's operations endpoint, one port: {@code /metrics} (Prometheus text format), Pekko Management's {@code /ready},
 * {@code /alive} and {@code /cluster/members}, and the live dashboard ({@code /}, its assets from the jar, and
 * {@code /events}, a server-sent event with {@link Snapshot} every {@code interval}; {@code /snapshot} gives one).
 * Anything else is 404, a wrong method 405 (Pekko HTTP's rejections: a one-line body, never a trace).
 *
 * <p>With a token, every request must carry it: {@code Authorization: Bearer TOKEN} (Prometheus, curl), or
 * {@code ?access_token=TOKEN} once, for a browser: that answer sets an HttpOnly, same-site cookie that the dashboard's
 * own requests (its script, stylesheet and event stream) then carry. Without it: 401, one line.
 */
public final class OpsServer extends AllDirectives {
  /** The bound server; {@link #close()} unbinds it. */
  public record Running(ServerBinding binding, String url, AutoCloseable export) implements AutoCloseable {
    @Override public void close() throws Exception {
      binding.unbind().toCompletableFuture().get(10, TimeUnit.SECONDS);
      export.close();
    }
  }

  static final ContentType PROMETHEUS = ContentTypes.parse("text/plain; version=0.0.4; charset=utf-8");
  private static final Map<String, ContentType> ASSETS = Map.of(
      "index.html", ContentTypes.TEXT_HTML_UTF8,
      "dashboard.js", MediaTypes.APPLICATION_JAVASCRIPT.toContentType(HttpCharsets.UTF_8),
      "dashboard.css", MediaTypes.TEXT_CSS.toContentType(HttpCharsets.UTF_8));

  private final ActorSystem<?> system;
  private final Metrics metrics;
  private final PrometheusExport export;
  private final Duration interval;
  /** Reads the meters for /metrics, /snapshot and /events; one daemon thread, so readers never queue behind actors. */
  private final ExecutorService reader = Executors.newSingleThreadExecutor(Thread.ofPlatform().name("k2-ops-reader").daemon().factory());

  /** The bearer token every request needs, or null (loopback without a token). */
  private final byte[] token;
  static final String COOKIE = "k2_ops_token";

  private OpsServer(ActorSystem<?> system, Duration interval, String token) {
    this.token = token == null ? null : token.getBytes(StandardCharsets.UTF_8);
    this.system = system;
    this.metrics = Metrics.get(system);
    this.export = new PrometheusExport(metrics);
    this.interval = interval;
  }

  /**
   * Binds host:port (0: any free port) and starts the dispatcher probe; fails when the port cannot be bound.
   * {@code token}: required of every request, or null for none.
   */
  public static Running start(ActorSystem<?> system, String host, int port, Duration interval, String token) throws Exception {
    var server = new OpsServer(system, interval, token);
    system.systemActorOf(DispatcherProbe.create(Duration.ofSeconds(1)), "k2-dispatcher-probe", Props.empty());
    var binding = Http.get(system).newServerAt(host, port).bind(server.authorized(server.route())).toCompletableFuture().get(30, TimeUnit.SECONDS);
    var address = binding.localAddress();
    String shown = address.getAddress().getHostAddress().contains(":") ? "[" + address.getAddress().getHostAddress() + "]" : address.getAddress().getHostAddress();
    return new Running(binding, "http://" + shown + ":" + address.getPort() + "/", () -> {
      server.reader.shutdownNow();
      server.export.close();
    });
  }

  Route route() {
    return concat(
        pathEndOrSingleSlash(() -> get(() -> asset("index.html"))),
        path("dashboard.js", () -> get(() -> asset("dashboard.js"))),
        path("dashboard.css", () -> get(() -> asset("dashboard.css"))),
        // a future per request: the figures are read when asked, on a thread of their own, not on the busy dispatcher
        path("metrics", () -> get(() -> completeWithFuture(CompletableFuture.supplyAsync(() ->
            HttpResponse.create().withEntity(HttpEntities.create(PROMETHEUS, export.scrape().getBytes(StandardCharsets.UTF_8))), reader)))),
        path("snapshot", () -> get(() -> completeWithFuture(CompletableFuture.supplyAsync(() ->
            HttpResponse.create().withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, Snapshot.of(system, metrics))), reader)))),
        path("events", () -> get(() -> respondWithHeader(CacheControl.create(CacheDirectives.NO_CACHE), () -> completeOK(
            Source.tick(Duration.ZERO, interval, "tick")
                .mapAsync(1, t -> CompletableFuture.supplyAsync(() -> ServerSentEvent.create(Snapshot.of(system, metrics)), reader))
                .mapMaterializedValue(c -> org.apache.pekko.NotUsed.getInstance()),
            EventStreamMarshalling.toEventStream())))),
        PekkoManagement.get(system).getRoutes());
  }

  /** {@code inner} for requests with the token (when there is one); 401 for the rest. */
  Route authorized(Route inner) {
    if (token == null) return inner;
    return extractRequest(request -> {
      String bearer = request.getHeader("Authorization").map(h -> h.value()).filter(v -> v.startsWith("Bearer ")).map(v -> v.substring(7).strip()).orElse(null);
      String cookie = null;
      var cookies = request.getHeader(org.apache.pekko.http.javadsl.model.headers.Cookie.class);
      if (cookies.isPresent()) for (var pair : cookies.get().getCookies()) if (pair.name().equals(COOKIE)) cookie = pair.value();
      String query = request.getUri().query().get("access_token").orElse(null);
      if (matches(bearer) || matches(cookie)) return inner;
      if (matches(query)) {
        // a browser's first visit: the cookie carries the token to the page's own requests, which cannot set headers
        return respondWithHeader(org.apache.pekko.http.javadsl.model.headers.RawHeader.create("Set-Cookie",
            COOKIE + "=" + query + "; Path=/; HttpOnly; SameSite=Strict"), () -> inner);
      }
      return complete(HttpResponse.create().withStatus(org.apache.pekko.http.javadsl.model.StatusCodes.UNAUTHORIZED)
          .addHeader(org.apache.pekko.http.javadsl.model.headers.RawHeader.create("WWW-Authenticate", "Bearer realm=\"k2\""))
          .withEntity("this endpoint needs its token: Authorization: Bearer TOKEN (or ?access_token=TOKEN in a browser)\n"));
    });
  }

  /** Constant-time comparison with the token. */
  private boolean matches(String given) {
    return given != null && java.security.MessageDigest.isEqual(token, given.getBytes(StandardCharsets.UTF_8));
  }

  private Route asset(String name) {
    try (InputStream in = OpsServer.class.getResourceAsStream("/ops/" + name)) {
      if (in == null) throw new IllegalStateException("the jar lacks /ops/" + name);
      return complete(HttpResponse.create().withEntity(HttpEntities.create(ASSETS.get(name), in.readAllBytes())));
    } catch (IOException e) {
      throw new IllegalStateException("cannot read /ops/" + name + " from the jar", e);
    }
  }
}
