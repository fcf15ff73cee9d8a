package dev.k2pekko.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The stages a pipeline run has finished, durably: table {@code k2_pipeline_stages} in the journal's database, one
 * row per (run, stage) with what the stage produced (an evaluation, a synthesis count, a round's rollouts, success
 * and task mix), written only once the stage is done. {@code --resume} takes a recorded stage as it is and runs any
 * other one again; the journal and the checkpoint say what of an unrecorded stage already happened. In the journal's
 * database rather than a file, so that every node of a cluster sees the same record.
 */
final class PipelineRecord implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final String url, user, password;
  private Connection conn;

  PipelineRecord(String url, String user, String password) {
    this.url = url;
    this.user = user;
    this.password = password;
  }

  static PipelineRecord of(com.typesafe.config.Config c) {
    var db = c.getConfig("pekko-persistence-jdbc.shared-databases.slick.db");
    return new PipelineRecord(db.getString("url"), db.getString("user"), db.getString("password"));
  }

  private Connection conn() throws SQLException {
    if (conn == null || conn.isClosed()) {
      conn = DriverManager.getConnection(url, user, password);
      try (var st = conn.createStatement()) {
        st.execute("CREATE TABLE IF NOT EXISTS k2_pipeline_stages (run_id VARCHAR(128) NOT NULL, stage VARCHAR(64) NOT NULL, "
            + "record VARCHAR(100000) NOT NULL, PRIMARY KEY (run_id, stage))");
      }
    }
    return conn;
  }

  static ObjectNode object() {
    return JSON.createObjectNode();
  }

  /** {@code xs} as a JSON array; null (a uniform task mix, say) as JSON null. */
  static JsonNode array(double[] xs) {
    if (xs == null) return com.fasterxml.jackson.databind.node.NullNode.getInstance();
    var a = JSON.createArrayNode();
    for (double x : xs) a.add(x);
    return a;
  }

  /** The reverse of {@link #array}. */
  static double[] doubles(JsonNode a) {
    if (a == null || a.isNull()) return null;
    double[] out = new double[a.size()];
    for (int i = 0; i < out.length; i++) out[i] = a.get(i).asDouble();
    return out;
  }

  /** The finished stages of {@code runId}, by stage name. */
  Map<String, JsonNode> load(String runId) throws SQLException {
    var out = new LinkedHashMap<String, JsonNode>();
    try (var ps = conn().prepareStatement("SELECT stage, record FROM k2_pipeline_stages WHERE run_id = ?")) {
      ps.setString(1, runId);
      try (var rs = ps.executeQuery()) {
        while (rs.next()) out.put(rs.getString(1), JSON.readTree(rs.getString(2)));
      }
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new SQLException("k2_pipeline_stages of run " + runId + " holds a record that is not JSON: " + e.getMessage(), e);
    }
    return out;
  }

  /** Records a finished stage (replacing an earlier record of it), committed before it returns. */
  void save(String runId, String stage, JsonNode record) throws SQLException {
    var c = conn();
    boolean auto = c.getAutoCommit();
    c.setAutoCommit(false);
    try {
      try (var del = c.prepareStatement("DELETE FROM k2_pipeline_stages WHERE run_id = ? AND stage = ?")) {
        del.setString(1, runId);
        del.setString(2, stage);
        del.executeUpdate();
      }
      try (var ins = c.prepareStatement("INSERT INTO k2_pipeline_stages (run_id, stage, record) VALUES (?, ?, ?)")) {
        ins.setString(1, runId);
        ins.setString(2, stage);
        ins.setString(3, record.toString());
        ins.executeUpdate();
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
