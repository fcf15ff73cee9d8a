package dev.k2pekko.agents;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.nio.file.Path;
import java.sql.DriverManager;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;

/** Configs for test nodes: loopback, a random port, every message serialized, an H2 or PostgreSQL journal. */
final class TestNodes {
  static final String PG_SERVER = System.getenv().getOrDefault("K2_TEST_PG_SERVER", "jdbc:postgresql://127.0.0.1:5432/");
  static final String PG_URL = PG_SERVER + "test";

  private TestNodes() {}

  static Config h2(Path dir, Map<String, Object> extra) {
    var o = base(extra);
    o.put("pekko-persistence-jdbc.shared-databases.slick.db.url", "jdbc:h2:file:" + dir.resolve("journal").toAbsolutePath() + ";DB_CLOSE_ON_EXIT=FALSE");
    return ConfigFactory.load(ConfigFactory.parseMap(o).withFallback(ConfigFactory.parseResources("application.conf")));
  }

  /**
   * A database of its own for one test (created here, dropped by {@link #dropDatabase}): the shared "test"
   * database holds whatever benchmarks and earlier runs wrote, and replays would read all of it.
   */
  static String freshPostgresDatabase() throws Exception {
    var name = "k2test_" + Long.toString(System.nanoTime(), 36);
    try (var c = DriverManager.getConnection(PG_URL, "postgres", ""); var st = c.createStatement()) {
      st.execute("CREATE DATABASE " + name);
    }
    return PG_SERVER + name;
  }

  static void dropDatabase(String url) {
    var name = url.substring(url.lastIndexOf('/') + 1);
    try (var c = DriverManager.getConnection(PG_URL, "postgres", ""); var st = c.createStatement()) {
      st.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    } catch (Exception e) {
      System.err.println("could not drop test database " + name + ": " + e);
    }
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

  /** Skips the test when PostgreSQL is not there, unless CI says it must be (K2_REQUIRE_POSTGRES=1). */
  static void requirePostgres() {
    try (var c = DriverManager.getConnection(PG_URL, "postgres", "")) {
      c.isValid(2);
    } catch (Exception e) {
      if ("1".equals(System.getenv("K2_REQUIRE_POSTGRES"))) throw new AssertionError("PostgreSQL is required but unreachable at " + PG_URL, e);
      Assumptions.abort("PostgreSQL not reachable at " + PG_URL + ": " + e.getMessage());
    }
  }

  static List<String> allRoles() { return List.of("agent", "tool", "learner", "ps", "monitor"); }
}
