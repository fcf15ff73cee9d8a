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
 * Creates the journal's tables when they are missing, with the DDL that pekko-persistence-jdbc ships
 * ({@code schema/<db>/<db>-create-schema.sql} in its jar), and checks that the database answers at all.
 */
public final class JournalSchema {
  private JournalSchema() {}

  /** The database could not be reached or prepared; the message names the URL. */
  public static final class Unreachable extends RuntimeException {
    public Unreachable(String message, Throwable cause) { super(message, cause); }
  }

  /** Returns what was done, for the user: "created ..." or "present ...". */
  public static String ensure(Config config) {
    var db = config.getConfig("pekko-persistence-jdbc.shared-databases.slick.db");
    var url = db.getString("url");
    var kind = url.startsWith("jdbc:postgresql:") ? "postgres" : url.startsWith("jdbc:h2:") ? "h2" : null;
    if (kind == null) throw new Unreachable("unsupported journal URL " + url + " (use jdbc:h2:... or jdbc:postgresql:...)", null);
    if (kind.equals("h2") && url.startsWith("jdbc:h2:file:")) {
      var file = Path.of(url.substring("jdbc:h2:file:".length()).split(";")[0]);
      try {
        if (file.getParent() != null) Files.createDirectories(file.getParent());
      } catch (IOException e) {
        throw new Unreachable("cannot create the journal directory for " + url + ": " + e.getMessage(), e);
      }
    }
    try (Connection c = connect(db.getString("driver"), url, db.getString("user"), db.getString("password"))) {
      try (var tables = c.getMetaData().getTables(null, null, "event_journal", null)) {
        if (tables.next()) return "journal schema present at " + url;
      }
      var script = "schema/" + kind + "/" + kind + "-create-schema.sql";
      String sql;
      try (var in = JournalSchema.class.getClassLoader().getResourceAsStream(script)) {
        if (in == null) throw new Unreachable("pekko-persistence-jdbc's " + script + " is not on the classpath", null);
        sql = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
      c.setAutoCommit(true);
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
