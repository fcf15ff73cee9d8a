package dev.k2pekko.launcher;

import dev.k2pekko.launcher.ops.OpsServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorSystem;
import picocli.CommandLine.Option;

/** The operations endpoint's flags ({@code k2 run}, {@code k2 node}): off unless {@code --http-port} is given. */
final class OpsOptions {
  /** How often the dashboard's event stream sends a snapshot. */
  static final Duration INTERVAL = Duration.ofSeconds(1);

  @Option(names = "--http-port", paramLabel = "PORT", description = "serve the live dashboard (/), /metrics (Prometheus), /ready, /alive and "
      + "/cluster/members on this port (0: any free port; default: off)")
  Integer httpPort;

  @Option(names = "--http-host", paramLabel = "HOST", description = "the address --http-port binds (default 127.0.0.1; any other than a "
      + "loopback address needs a bearer token: --http-token-file or K2_HTTP_TOKEN)")
  String httpHost;

  @Option(names = "--http-token-file", paramLabel = "FILE", description = "a file whose first line is the bearer token every request to "
      + "--http-port must carry (or K2_HTTP_TOKEN); required when --http-host is not a loopback address")
  String tokenFile;

  /** The token requests need, or null; read by {@link #check}. */
  private String token;

  String host() {
    return httpHost == null ? "127.0.0.1" : httpHost;
  }

  /** Bad values, a port in use, or a k2 without the endpoint's libraries: one line, before anything boots. */
  void check() {
    if (httpPort == null) {
      if (httpHost != null) throw new NodeConfig.UsageError("--http-host needs --http-port");
      if (tokenFile != null) throw new NodeConfig.UsageError("--http-token-file needs --http-port");
      return;
    }
    if (httpPort < 0 || httpPort > 65535) throw new NodeConfig.UsageError("--http-port must be 0..65535 (0: any free port), got " + httpPort);
    try {
      Class.forName("io.micrometer.prometheusmetrics.PrometheusMeterRegistry", false, OpsOptions.class.getClassLoader());
      Class.forName("org.apache.pekko.management.javadsl.PekkoManagement", false, OpsOptions.class.getClassLoader());
      Class.forName("org.apache.pekko.http.javadsl.Http", false, OpsOptions.class.getClassLoader());
    } catch (ClassNotFoundException e) {
      throw new NodeConfig.UsageError("this k2 (a bundle) leaves out the operations endpoint (Micrometer, Pekko Management, Pekko HTTP): "
          + "run learner hosts without --http-port");
    }
    InetAddress address;
    try {
      address = InetAddress.getByName(host());
    } catch (UnknownHostException e) {
      throw new NodeConfig.UsageError("--http-host " + host() + ": unknown host");
    }
    token = BearerToken.read("--http-token-file", tokenFile, "K2_HTTP_TOKEN", "--http-host", host());
    if (httpPort == 0) return;
    try (var probe = new ServerSocket()) {
      probe.bind(new InetSocketAddress(address, httpPort));
    } catch (IOException e) {
      throw new NodeConfig.UsageError("--http-port " + httpPort + ": cannot listen on " + host() + ":" + httpPort + " (" + e.getMessage() + ")");
    }
  }

  /** Pekko Management's own idea of where it is served (the address its routes report). */
  Map<String, Object> config() {
    if (httpPort == null || httpPort == 0) return Map.of();
    return Map.of("pekko.management.http.hostname", host(), "pekko.management.http.port", httpPort);
  }

  /** Binds the endpoint (null when off) and says where on stderr; a port taken meanwhile is bad input too. */
  OpsServer.Running start(ActorSystem<?> system) {
    if (httpPort == null) return null;
    try {
      var running = OpsServer.start(system, host(), httpPort, INTERVAL, token);
      System.err.println("k2: operations on " + running.url() + " (dashboard; /metrics, /ready, /alive, /cluster/members)"
          + (token != null ? "; every request needs the bearer token" : ""));
      return running;
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof java.net.BindException b) {
        throw new NodeConfig.UsageError("--http-port " + httpPort + ": cannot listen on " + host() + ":" + httpPort + " (" + b.getMessage() + ")");
      }
      throw new IllegalStateException("the operations endpoint did not start: " + e.getCause(), e.getCause());
    } catch (Exception e) {
      throw new IllegalStateException("the operations endpoint did not start: " + e, e);
    }
  }
}
