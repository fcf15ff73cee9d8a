package dev.k2pekko.ps.server;

import dev.k2pekko.protocol.PsProtocol.TagOffset;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.Map;

/**
 * Where the learners' journal streams stand, durably: table {@code k2_learner_offsets} in the journal's database,
 * one row per (pipeline run, tag), written by the parameter-server coordinator in the same step that applies the
 * gradients those trajectories produced. A learner that restarts anywhere resumes from here, so a trajectory is
 * neither skipped nor trained on twice. (Pekko Projections is not served for this Pekko version here, hence a table
 * of our own.)
 */
public final class OffsetStore implements AutoCloseable {
  private final String url, user, password;
  private Connection conn;

  public OffsetStore(String url, String user, String password) {
    this.url = url;
    this.user = user;
    this.password = password;
  }

  private Connection conn() throws SQLException {
    if (conn == null || conn.isClosed()) {
      conn = DriverManager.getConnection(url, user, password);
      try (var st = conn.createStatement()) {
        st.execute("CREATE TABLE IF NOT EXISTS k2_learner_offsets (run_id VARCHAR(128) NOT NULL, tag VARCHAR(128) NOT NULL, "
            + "event_offset BIGINT NOT NULL, consumed_in_event INT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (run_id, tag))");
      }
    }
    return conn;
  }

  public Map<String, TagOffset> load(String runId) throws SQLException {
    var out = new HashMap<String, TagOffset>();
    try (var ps = conn().prepareStatement("SELECT tag, event_offset, consumed_in_event FROM k2_learner_offsets WHERE run_id = ?")) {
      ps.setString(1, runId);
      try (var rs = ps.executeQuery()) {
        while (rs.next()) out.put(rs.getString(1), new TagOffset(rs.getLong(2), rs.getInt(3)));
      }
    }
    return out;
  }

  /** Replaces the run's offsets by {@code offsets} (all tags), in one transaction. */
  public void save(String runId, Map<String, TagOffset> offsets, long version) throws SQLException {
    var c = conn();
    boolean auto = c.getAutoCommit();
    c.setAutoCommit(false);
    try {
      try (var del = c.prepareStatement("DELETE FROM k2_learner_offsets WHERE run_id = ?")) {
        del.setString(1, runId);
        del.executeUpdate();
      }
      try (var ins = c.prepareStatement("INSERT INTO k2_learner_offsets (run_id, tag, event_offset, consumed_in_event, version) VALUES (?, ?, ?, ?, ?)")) {
        for (var e : offsets.entrySet()) {
          ins.setString(1, runId);
          ins.setString(2, e.getKey());
          ins.setLong(3, e.getValue().eventOffset());
          ins.setInt(4, e.getValue().consumedInEvent());
          ins.setLong(5, version);
          ins.addBatch();
        }
        ins.executeBatch();
      }
      c.commit();
    } catch (SQLException e) {
      c.rollback();
      throw e;
    } finally {
      c.setAutoCommit(auto);
    }
  }

  @Override public void close() {
    try {
      if (conn != null) conn.close();
    } catch (SQLException ignored) {
      // closing
    }
  }
}
