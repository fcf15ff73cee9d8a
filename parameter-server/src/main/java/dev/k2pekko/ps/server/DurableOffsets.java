package dev.k2pekko.ps.server;

import dev.k2pekko.protocol.PsProtocol.Pushed;
import dev.k2pekko.protocol.PsProtocol.TagOffset;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * The coordinator's view of where every journal tag's stream stands: advanced by the pushes of applied (or rejected)
 * steps and written to the {@link OffsetStore} after each step, so a restarted learner reads on from there.
 */
final class DurableOffsets implements AutoCloseable {
  private final String runId;
  private final OffsetStore store;
  private final Map<String, TagOffset> offsets = new TreeMap<>();

  DurableOffsets(PsSettings s) {
    this.runId = s.runId();
    this.store = new OffsetStore(s.jdbcUrl(), s.jdbcUser(), s.jdbcPassword());
  }

  /** A checkpoint's offsets replace what is held, and are made durable at once. */
  void restore(Map<String, TagOffset> restored, long version) throws SQLException {
    offsets.putAll(restored);
    store.save(runId, offsets, version);
  }

  /** The push's data was read (applied or rejected): its tags move on. */
  void advance(Pushed p) {
    p.offsets().forEach((tag, o) -> offsets.merge(tag, o, TagOffset::later));
  }

  /** Makes the offsets durable as of {@code version}; a database that refuses is a failure of the coordinator. */
  void save(long version) {
    try {
      store.save(runId, offsets, version);
    } catch (SQLException e) {
      throw new IllegalStateException("cannot store learner offsets: " + e.getMessage(), e);
    }
  }

  /** The offsets now: a copy, as learners and checkpoints receive them. */
  HashMap<String, TagOffset> snapshot() {
    return new HashMap<>(offsets);
  }

  /** The live map, for a checkpoint writer that only reads it. */
  Map<String, TagOffset> view() {
    return offsets;
  }

  @Override public void close() {
    store.close();
  }
}
