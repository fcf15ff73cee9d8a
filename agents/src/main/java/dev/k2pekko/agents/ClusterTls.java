package dev.k2pekko.agents;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;

/**
 * Artery over TLS with mutual authentication, on by one setting: {@code k2.cluster.tls = DIR} (or {@code K2_TLS}), a
 * directory made by {@code k2 certs}. Every node presents the certificate in {@code DIR/node.p12} and accepts a peer
 * only if the peer's certificate was signed by the authority in {@code DIR/trust.p12}: a node with a certificate of
 * another authority, or without TLS, cannot connect, so it cannot join. Host names are not checked (nodes are named by
 * address, and a certificate of the cluster's own authority is what admits a node).
 */
public final class ClusterTls {
  private ClusterTls() {}

  public static final String KEY_STORE = "node.p12", TRUST_STORE = "trust.p12", PASSWORD = "password";
  /** TLS 1.3 only, with its AES-GCM suites (the JDK's own provider). */
  static final String PROTOCOL = "TLSv1.3";
  static final List<String> SUITES = List.of("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384");

  /** {@code config} with Artery's transport switched to tls-tcp when {@code k2.cluster.tls} names a directory. */
  public static Config apply(Config config) {
    String dir = config.hasPath("k2.cluster.tls") ? config.getString("k2.cluster.tls") : "";
    if (dir.isBlank()) return config;
    var d = Path.of(dir).toAbsolutePath();
    for (var f : List.of(KEY_STORE, TRUST_STORE, PASSWORD)) {
      if (!Files.isRegularFile(d.resolve(f))) {
        throw new IllegalArgumentException("k2.cluster.tls: " + d + " has no " + f + " (make the directory with `k2 certs --out " + dir + "`)");
      }
    }
    String password;
    try {
      password = Files.readString(d.resolve(PASSWORD)).strip();
    } catch (IOException e) {
      throw new IllegalArgumentException("k2.cluster.tls: cannot read " + d.resolve(PASSWORD) + ": " + e.getMessage(), e);
    }
    var engine = "pekko.remote.artery.ssl.config-ssl-engine.";
    var o = new HashMap<String, Object>();
    o.put("pekko.remote.artery.transport", "tls-tcp");
    o.put("pekko.remote.artery.ssl.ssl-engine-provider", "org.apache.pekko.remote.artery.tcp.ConfigSSLEngineProvider");
    o.put(engine + "key-store", d.resolve(KEY_STORE).toString());
    o.put(engine + "trust-store", d.resolve(TRUST_STORE).toString());
    o.put(engine + "key-store-password", password);
    o.put(engine + "key-password", password);
    o.put(engine + "trust-store-password", password);
    o.put(engine + "protocol", PROTOCOL);
    o.put(engine + "enabled-algorithms", SUITES);
    o.put(engine + "require-mutual-authentication", true);
    o.put(engine + "hostname-verification", false);
    return ConfigFactory.parseMap(o).withFallback(config);
  }

  /** Whether the config runs Artery over TLS. */
  public static boolean on(Config config) {
    return "tls-tcp".equals(config.getString("pekko.remote.artery.transport"));
  }
}
