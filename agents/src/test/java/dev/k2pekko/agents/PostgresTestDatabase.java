package dev.k2pekko.agents;

import java.sql.DriverManager;
import org.junit.jupiter.api.Assumptions;

/**
 * A PostgreSQL database of a test's own, created on the server at {@code K2_TEST_PG_SERVER} (default 127.0.0.1:5432,
 * user postgres) and dropped by {@link #close}: the shared "test" database holds whatever benchmarks and earlier runs
 * wrote, and replays would read all of it. Without a server the test is skipped, unless {@code K2_REQUIRE_POSTGRES=1}
 * (CI) makes that a failure. Shared by the tests of every module (agents' test jar).
 */
public final class PostgresTestDatabase implements AutoCloseable {
  public static final String SERVER = System.getenv().getOrDefault("K2_TEST_PG_SERVER", "jdbc:postgresql://127.0.0.1:5432/");
  static final String ADMIN_URL = SERVER + "test";

  private final String name;

  private PostgresTestDatabase(String name) {
    this.name = name;
  }

  /** A new database named {@code prefix_<nanotime>}; skips (or, in CI, fails) the test when the server is not there. */
  public static PostgresTestDatabase create(String prefix) throws Exception {
    require();
    var name = prefix + "_" + Long.toString(System.nanoTime(), 36);
    try (var c = DriverManager.getConnection(ADMIN_URL, "postgres", ""); var st = c.createStatement()) {
      st.execute("CREATE DATABASE " + name);
    }
    return new PostgresTestDatabase(name);
  }

  /** Skips the test when PostgreSQL is not there, unless CI says it must be (K2_REQUIRE_POSTGRES=1). */
  public static void require() {
    try (var c = DriverManager.getConnection(ADMIN_URL, "postgres", "")) {
      c.isValid(2);
    } catch (Exception e) {
      if ("1".equals(System.getenv("K2_REQUIRE_POSTGRES"))) throw new AssertionError("PostgreSQL is required but unreachable at " + ADMIN_URL, e);
      Assumptions.abort("PostgreSQL not reachable at " + ADMIN_URL + ": " + e.getMessage());
    }
  }

  public String url() {
    return SERVER + name;
  }

  /** Drops the database, closing whatever connections a test left open. */
  @Override public void close() {
    try (var c = DriverManager.getConnection(ADMIN_URL, "postgres", ""); var st = c.createStatement()) {
      st.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    } catch (Exception e) {
      System.err.println("could not drop test database " + name + ": " + e);
    }
  }
}
