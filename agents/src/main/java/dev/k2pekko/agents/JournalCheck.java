package dev.k2pekko.agents;

import com.typesafe.config.Config;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.serialization.SerializationExtension;

/**
 * {@code k2 journal check}: reads every event of a journal opened read-only and reports what it found. Every event
 * must decode with its serializer; each persistence id's sequence numbers must run 1, 2, 3, ... without gaps (a gap
 * makes pekko-persistence-jdbc 1.1.x skip what follows it, upstream #516); a trajectory event must carry exactly the
 * tag its trajectories hash to, and all of them the same one; a part's seal every trajectory tag; no trajectory id
 * may be stored twice.
 */
public final class JournalCheck {
  /** What the check found. {@code problems} holds the first {@link #MAX_LISTED} of {@code problemCount}. */
  public record Report(long events, long persistenceIds, long trajectories, long tagRows, Map<String, Long> eventsByTag,
                       long duplicateTrajectories, long problemCount, List<String> problems) {
    public boolean clean() { return problemCount == 0; }
  }

  public static final int MAX_LISTED = 20;

  private JournalCheck() {}

  /**
   * @param readOnlyConfig a config from {@link JournalSchema#readOnly}
   * @param system a local actor system of that config, for the serializers
   */
  public static Report run(Config readOnlyConfig, ActorSystem<?> system) throws SQLException {
    var serialization = SerializationExtension.get(org.apache.pekko.actor.typed.javadsl.Adapter.toClassic(system));
    int tags = readOnlyConfig.getInt("k2.collector.tags");
    var problems = new ArrayList<String>();
    long[] problemCount = {0};
    java.util.function.Consumer<String> problem = p -> {
      if (problems.size() < MAX_LISTED) problems.add(p);
      problemCount[0]++;
    };
    long events = 0, pids = 0, trajectories = 0, tagRows = 0, duplicates = 0;
    var byTag = new TreeMap<String, Long>();
    try (var c = JournalSchema.connectReadOnly(readOnlyConfig)) {
      c.setAutoCommit(false); // PostgreSQL streams a result set with a fetch size only inside a transaction
      var tagsOf = new HashMap<Long, List<String>>();
      try (var st = c.createStatement()) {
        st.setFetchSize(1000);
        try (var rs = st.executeQuery("SELECT \"event_id\", \"tag\" FROM \"event_tag\"")) {
          while (rs.next()) {
            tagsOf.computeIfAbsent(rs.getLong(1), k -> new ArrayList<>(1)).add(rs.getString(2));
            byTag.merge(rs.getString(2), 1L, Long::sum);
            tagRows++;
          }
        }
      }
      var seenIds = new HashSet<String>();
      var tagged = new HashSet<Long>();
      try (var st = c.createStatement()) {
        st.setFetchSize(100);
        try (var rs = st.executeQuery("SELECT \"ordering\", \"persistence_id\", \"sequence_number\", \"event_ser_id\", \"event_ser_manifest\", "
            + "\"event_payload\" FROM \"event_journal\" ORDER BY \"persistence_id\", \"sequence_number\"")) {
          String pid = null;
          long expected = 1;
          while (rs.next()) {
            events++;
            long ordering = rs.getLong(1);
            String p = rs.getString(2);
            long seq = rs.getLong(3);
            if (!p.equals(pid)) {
              pid = p;
              pids++;
              expected = 1;
            }
            if (seq != expected) problem.accept(p + ": sequence number " + seq + " where " + expected + " was expected (a gap hides what follows it)");
            expected = seq + 1;
            var eventTags = tagsOf.getOrDefault(ordering, List.of());
            if (!eventTags.isEmpty()) tagged.add(ordering);
            Object event;
            try {
              event = serialization.deserialize(rs.getBytes(6), rs.getInt(4), rs.getString(5)).get();
            } catch (Throwable e) {
              problem.accept(p + " #" + seq + " (ordering " + ordering + "): cannot decode (serializer " + rs.getInt(4) + ", manifest '"
                  + rs.getString(5) + "'): " + JournalSchema.firstLine(e.getMessage()));
              continue;
            }
            if (event instanceof dev.k2pekko.protocol.PartSealed) {
              // a part's seal is tagged with every trajectory tag (PartSeal)
              var want = new java.util.TreeSet<String>();
              for (int i = 0; i < tags; i++) want.add(TrajectoryCollector.TAG_PREFIX + i);
              if (!new java.util.TreeSet<>(eventTags).equals(want)) problem.accept(p + " #" + seq + ": a part's seal tagged " + eventTags + ", not every trajectory tag");
              continue;
            }
            var ts = TrajectoryReplay.trajectories(event);
            if (ts.isEmpty()) {
              for (var t : eventTags) {
                if (t.startsWith(TrajectoryCollector.TAG_PREFIX)) problem.accept(p + " #" + seq + ": tagged " + t + " but holds no trajectories");
              }
              continue;
            }
            String want = TrajectoryCollector.tagFor(ts.getFirst().trajectoryId(), tags);
            for (var t : ts) {
              trajectories++;
              if (!seenIds.add(t.trajectoryId())) {
                duplicates++;
                problem.accept("trajectory " + t.trajectoryId() + " is stored twice (again in " + p + " #" + seq + ")");
              }
              if (!TrajectoryCollector.tagFor(t.trajectoryId(), tags).equals(want)) {
                problem.accept(p + " #" + seq + ": trajectory " + t.trajectoryId() + " belongs to " + TrajectoryCollector.tagFor(t.trajectoryId(), tags)
                    + ", its event to " + want);
              }
            }
            if (!eventTags.equals(List.of(want))) problem.accept(p + " #" + seq + ": tagged " + eventTags + ", its trajectories hash to [" + want + "]");
          }
        }
      }
      for (var id : tagsOf.keySet()) {
        if (!tagged.contains(id)) problem.accept("tag rows for event " + id + ", which the journal does not hold");
      }
      c.rollback();
    }
    return new Report(events, pids, trajectories, tagRows, byTag, duplicates, problemCount[0], List.copyOf(problems));
  }
}
