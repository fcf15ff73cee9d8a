package dev.k2pekko.agents;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Configs for test nodes: loopback, a random port, every message serialized, an H2 or PostgreSQL journal ({@link PostgresTestDatabase}). */
final class TestNodes {
  private TestNodes() {}

  static Config h2(Path dir, Map<String, Object> extra) {
    var o = base(extra);
    o.put("pekko-persistence-jdbc.shared-databases.slick.db.url", "jdbc:h2:file:" + dir.resolve("journal").toAbsolutePath() + ";DB_CLOSE_ON_EXIT=FALSE");
    return ConfigFactory.load(ConfigFactory.parseMap(o).withFallback(ConfigFactory.parseResources("application.conf")));
  }

  static Config postgres(String url, Map<String, Object> extra) {
    var o = base(extra);
    o.put("pekko-persistence-jdbc.shared-databases.slick.db.url", url);
    return ConfigFactory.load(ConfigFactory.parseMap(o).withFallback(
        ConfigFactory.parseResources("persistence-postgres.conf").withFallback(ConfigFactory.parseResources("application.conf"))));
  }

  private static Map<String, Object> base(Map<String, Object> extra) {
    var o = new HashMap<String, Object>();
    o.put("pekko.actor.serialize-messages", "on");
    o.put("pekko.remote.artery.canonical.port", 0);
    o.put("pekko.loglevel", "WARNING");
    o.put("k2.judge.flush-interval", "20ms");
    o.putAll(extra);
    return o;
  }

  static List<String> allRoles() { return List.of("agent", "tool", "learner", "ps", "monitor"); }
}
