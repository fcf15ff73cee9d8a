package dev.k2pekko.agents;

import com.typesafe.config.Config;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;

/**
 * Opens the journal's database the way a command needs it. {@link #ensure} (run, node) creates the tables when they
 * are missing, with the DDL that pekko-persistence-jdbc ships ({@code schema/<db>/<db>-create-schema.sql} in its
 * jar), after checking that an existing H2 file is whole: H2 opens a truncated file at an older version and rewrites
 * it, so a damaged file must be refused before anything opens it for writing. {@link #readOnly} (replay, export,
 * journal check) never creates or changes anything: H2 in {@code ACCESS_MODE_DATA=r} with {@code IFEXISTS=TRUE},
 * PostgreSQL with {@code default_transaction_read_only}.
 */
public final class JournalSchema {
  private JournalSchema() {}

  /** The database could not be reached or prepared; the message names the URL. */
  public static final class Unreachable extends RuntimeException {
    public Unreachable(String message, Throwable cause) { super(message, cause); }
  }

  /** There is no journal where the command was pointed; the message names the place. */
  public static final class Missing extends RuntimeException {
    public Missing(String message) { super(message); }
  }

  /** The journal is there but damaged; the message names the file and what is wrong. Nothing was changed. */
  public static final class Damaged extends RuntimeException {
    public Damaged(String message) { super(message); }
  }

  private static final String URL_KEY = "pekko-persistence-jdbc.shared-databases.slick.db.url";

  /** The H2 database file of a {@code jdbc:h2:file:} URL ({@code <path>.mv.db}), or null for any other URL. */
  public static Path h2File(String url) {
    if (!url.startsWith("jdbc:h2:file:")) return null;
    return Path.of(url.substring("jdbc:h2:file:".length()).split(";")[0] + ".mv.db");
  }

  /**
   * The config with the journal opened read-only, after checking that the journal exists (an H2 file whose structure
   * is whole, or a database with the journal's tables). Throws {@link Missing}, {@link Damaged} or {@link Unreachable}.
   */
  public static Config readOnly(Config config) {
    var db = config.getConfig("pekko-persistence-jdbc.shared-databases.slick.db");
    var url = db.getString("url");
    String roUrl;
    if (url.startsWith("jdbc:h2:")) {
      var file = h2File(url);
      if (file != null) {
        if (!Files.isRegularFile(file)) throw new Missing("no journal at " + file.toAbsolutePath() + " (nothing was created)");
        H2File.verify(file);
      }
      // TRACE_LEVEL_FILE=0: H2 would otherwise write a .trace.db next to the journal on the first error
      roUrl = url + ";ACCESS_MODE_DATA=r;IFEXISTS=TRUE;TRACE_LEVEL_FILE=0";
    } else if (url.startsWith("jdbc:postgresql:")) {
      roUrl = url + (url.contains("?") ? "&" : "?") + "options=-c%20default_transaction_read_only=on";
    } else {
      throw new Unreachable("unsupported journal URL " + url + " (use jdbc:h2:... or jdbc:postgresql:...)", null);
    }
    try (Connection c = connect(db.getString("driver"), roUrl, db.getString("user"), db.getString("password"))) {
      try (var tables = c.getMetaData().getTables(null, null, "event_journal", null)) {
        if (!tables.next()) {
          var file = h2File(url);
          if (file != null) throw new Damaged(file.toAbsolutePath() + " holds no journal tables: damaged, or not a k2 journal (nothing was changed)");
          throw new Missing("no journal tables at " + url + " (nothing was created)");
        }
      }
    } catch (SQLException e) {
      throw new Unreachable("cannot open the journal at " + url + " read-only: " + firstLine(e.getMessage()), e);
    }
    return config.withValue(URL_KEY, com.typesafe.config.ConfigValueFactory.fromAnyRef(roUrl));
  }

  /** A read-only JDBC connection to the journal of a config made by {@link #readOnly}. */
  public static Connection connectReadOnly(Config readOnlyConfig) throws SQLException {
    var db = readOnlyConfig.getConfig("pekko-persistence-jdbc.shared-databases.slick.db");
    var c = connect(db.getString("driver"), db.getString("url"), db.getString("user"), db.getString("password"));
    c.setReadOnly(true);
    return c;
  }

  static String firstLine(String s) {
    return s == null ? "" : s.lines().findFirst().orElse("");
  }

  /** The advisory lock that serializes creating the journal's schema on PostgreSQL (any constant of k2's own). */
  static final long SCHEMA_LOCK = 0x6b32_6a6f_7572_6eL; // "k2journ"

  /** Returns what was done, for the user: "created ..." or "present ...". */
  public static String ensure(Config config) {
    var db = config.getConfig("pekko-persistence-jdbc.shared-databases.slick.db");
    var url = db.getString("url");
    var kind = url.startsWith("jdbc:postgresql:") ? "postgres" : url.startsWith("jdbc:h2:") ? "h2" : null;
    if (kind == null) throw new Unreachable("unsupported journal URL " + url + " (use jdbc:h2:... or jdbc:postgresql:...)", null);
    var h2 = h2File(url);
    if (h2 != null && Files.exists(h2)) H2File.verify(h2); // before H2 opens it for writing and "repairs" it
    if (kind.equals("h2") && url.startsWith("jdbc:h2:file:")) {
      var file = Path.of(url.substring("jdbc:h2:file:".length()).split(";")[0]);
      try {
        if (file.getParent() != null) Files.createDirectories(file.getParent());
      } catch (IOException e) {
        throw new Unreachable("cannot create the journal directory for " + url + ": " + e.getMessage(), e);
      }
    }
    try (Connection c = connect(db.getString("driver"), url, db.getString("user"), db.getString("password"))) {
      // Nodes started at once on a fresh database would each find no tables and create them, and all but one fail
      // (`relation ... already exists`): on PostgreSQL the check and the creation hold an advisory lock, so one node
      // creates the schema and the others then find it. A lock of the session, released when the connection closes
      // (the script's CREATE INDEX CONCURRENTLY cannot run in a transaction), and tried, not waited for: CREATE INDEX
      // CONCURRENTLY waits for every open transaction, a blocked lock request among them, which would be a deadlock.
      c.setAutoCommit(true);
      if (kind.equals("postgres")) lockSchema(c, url);
      try (var tables = c.getMetaData().getTables(null, null, "event_journal", null)) {
        if (tables.next()) return "journal schema present at " + url;
      }
      var script = "schema/" + kind + "/" + kind + "-create-schema.sql";
      String sql;
      try (var in = JournalSchema.class.getClassLoader().getResourceAsStream(script)) {
        if (in == null) throw new Unreachable("pekko-persistence-jdbc's " + script + " is not on the classpath", null);
        sql = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
      try (var st = c.createStatement()) {
        for (var statement : sql.split(";")) {
          if (!statement.isBlank()) st.execute(statement);
        }
      }
      return "journal schema created at " + url + " (pekko-persistence-jdbc's " + script + ")";
    } catch (SQLException | IOException e) {
      throw new Unreachable("cannot reach the journal database at " + url + ": " + e.getMessage(), e);
    }
  }

  /** Takes {@link #SCHEMA_LOCK} for this session, trying every 100 ms for at most a minute. */
  private static void lockSchema(Connection c, String url) throws SQLException {
    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.MINUTES.toNanos(1);
    try (var st = c.createStatement()) {
      while (true) {
        try (var rs = st.executeQuery("SELECT pg_try_advisory_lock(" + SCHEMA_LOCK + ")")) {
          rs.next();
          if (rs.getBoolean(1)) return;
        }
        if (System.nanoTime() > deadline) throw new Unreachable("another k2 has held the journal's schema lock at " + url + " for a minute", null);
        try {
          Thread.sleep(100);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new Unreachable("interrupted while waiting for the journal's schema lock at " + url, e);
        }
      }
    }
  }

  private static Connection connect(String driver, String url, String user, String password) throws SQLException {
    try {
      Class.forName(driver);
    } catch (ClassNotFoundException e) {
      throw new SQLException("JDBC driver " + driver + " is not on the classpath", e);
    }
    DriverManager.setLoginTimeout(10);
    return DriverManager.getConnection(url, user, password);
  }
}
