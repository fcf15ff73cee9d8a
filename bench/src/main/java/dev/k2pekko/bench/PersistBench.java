package dev.k2pekko.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import dev.k2pekko.agents.NodeServices;
import dev.k2pekko.agents.OfflinePlay;
import dev.k2pekko.agents.TrajectoryCollector;
import dev.k2pekko.agents.TrajectoryReplay;
import dev.k2pekko.protocol.TrajectoriesRecorded;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.TrajectoryRecorded;
import dev.k2pekko.tools.ToolDirectory;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.pattern.StatusReply;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializers;

/**
 * {@code k2 bench persist}: trajectories persisted/s through the collectors into the journal, next to a plain JDBC batch
 * insert of the same rows (same serialized events, same batch size) into the same database in the same run; then replay/s.
 */
public final class PersistBench {
  private static final ObjectMapper JSON = new ObjectMapper();

  private PersistBench() {}

  /** Runs on a started single node whose journal is {@code config}'s; returns the figures. */
  public static ObjectNode run(ActorSystem<?> system, Config config, int count) throws Exception {
    var services = NodeServices.get(system);
    var universe = ToolDirectory.get(system).universe();
    var runId = "bench-" + Long.toString(System.currentTimeMillis(), 36);
    var trajectories = new ArrayList<Trajectory>(count);
    for (int i = 0; i < count; i++) {
      var task = services.generator().task(42, "bench-agent-" + (i % 1000), i / 1000);
      trajectories.add(OfflinePlay.play(universe, services.policy(), services.rubric(), task, runId + "/a" + i));
    }
    int batch = services.settings().batchSize();
    int tags = services.settings().tags();
    // as the judges send them: per tag, batches of up to `batch`, tag t to collector t mod collectors
    var batches = batchesByTag(trajectories, tags, batch);
    var warmup = batchesByTag(trajectories.subList(0, Math.min(count, 4 * batch)), tags, batch);
    var warmIds = new java.util.HashSet<String>();
    for (var w : warmup) for (var t : w) warmIds.add(t.trajectoryId());
    journal(system, warmup, tags, services.settings().collectors());
    plainBatches(system, config, warmup, tags, "warmup");
    plainRows(system, config, warmup, tags, "warmup");
    var measured = batchesByTag(trajectories.stream().filter(t -> !warmIds.contains(t.trajectoryId())).toList(), tags, batch);
    int n = 0;
    for (var m : measured) n += m.size();
    long t0 = System.nanoTime();
    journal(system, measured, tags, services.settings().collectors());
    double journalSecs = (System.nanoTime() - t0) / 1e9;
    long t1 = System.nanoTime();
    plainBatches(system, config, measured, tags, runId);
    double plainSecs = (System.nanoTime() - t1) / 1e9;
    long t2 = System.nanoTime();
    plainRows(system, config, measured, tags, runId);
    double rowsSecs = (System.nanoTime() - t2) / 1e9;
    long r0 = System.nanoTime();
    long replayed = new TrajectoryReplay(system).count(TrajectoryReplay.Filter.ALL, Duration.ofMinutes(10));
    double replaySecs = (System.nanoTime() - r0) / 1e9;
    var o = JSON.createObjectNode().put("bench", "persist")
        .put("journal", config.getString("pekko-persistence-jdbc.shared-databases.slick.db.url"))
        .put("trajectories", n).put("batch", batch).put("events", measured.size())
        .put("journal_per_s", Math.round(n / journalSecs)).put("plain_jdbc_per_s", Math.round(n / plainSecs))
        .put("ratio", Math.round(100.0 * plainSecs / journalSecs) / 100.0)
        .put("plain_jdbc_row_per_trajectory_per_s", Math.round(n / rowsSecs))
        .put("ratio_to_row_per_trajectory", Math.round(100.0 * rowsSecs / journalSecs) / 100.0)
        .put("replayed", replayed).put("replay_per_s", Math.round(replayed / replaySecs));
    return o;
  }

  /** Groups trajectories by journal tag, in batches of at most {@code batch}: what a judge sends. */
  private static List<List<Trajectory>> batchesByTag(List<Trajectory> ts, int tags, int batch) {
    var byTag = new ArrayList<List<Trajectory>>();
    for (int t = 0; t < tags; t++) byTag.add(new ArrayList<>());
    for (var t : ts) byTag.get(TrajectoryCollector.tagIndex(t.trajectoryId(), tags)).add(t);
    var out = new ArrayList<List<Trajectory>>();
    for (var group : byTag) for (int i = 0; i < group.size(); i += batch) out.add(group.subList(i, Math.min(group.size(), i + batch)));
    return out;
  }

  /**
   * Through the collectors, as a judge sends them: one batch in flight per tag, tag t's batches to collector
   * t mod collectors, so a collector with two tags has two batches waiting at times (the second one in its stash).
   */
  private static void journal(ActorSystem<?> system, List<List<Trajectory>> batches, int tags, int collectors) throws Exception {
    var sharding = ClusterSharding.get(system);
    var perTag = new ArrayList<List<List<Trajectory>>>();
    for (int t = 0; t < tags; t++) perTag.add(new ArrayList<>());
    for (var b : batches) perTag.get(TrajectoryCollector.tagIndex(b.getFirst().trajectoryId(), tags)).add(b);
    var lanes = new ArrayList<CompletableFuture<Void>>();
    for (int t = 0; t < tags; t++) {
      var ref = sharding.entityRefFor(TrajectoryCollector.KEY, Integer.toString(t % collectors));
      var mine = perTag.get(t);
      long firstId = (long) t << 32; // batch ids unique per collector, as a judge's are
      lanes.add(CompletableFuture.runAsync(() -> {
        long id = firstId;
        for (var b : mine) {
          final long batchId = id++;
          var reply = AskPattern.<TrajectoryCollector.Command, StatusReply<TrajectoryCollector.BatchRecorded>>ask(ref,
              r -> new TrajectoryCollector.RecordBatch(batchId, new ArrayList<>(b), r), Duration.ofSeconds(60), system.scheduler());
          try {
            var v = reply.toCompletableFuture().get(60, TimeUnit.SECONDS);
            if (!v.isSuccess()) throw new IllegalStateException(v.getError());
          } catch (Exception e) {
            throw new IllegalStateException(e);
          }
        }
      }, LANES));
    }
    CompletableFuture.allOf(lanes.toArray(CompletableFuture[]::new)).get(10, TimeUnit.MINUTES);
  }

  /** One thread per lane: the lanes block on their replies, and the common pool has one thread on 2 cores. */
  private static final java.util.concurrent.ExecutorService LANES = java.util.concurrent.Executors.newCachedThreadPool(r -> {
    var t = new Thread(r, "persist-bench-lane");
    t.setDaemon(true);
    return t;
  });

  /** The same rows the journal gets, with plain JDBC: one serialized batch event and one tag row per batch. */
  private static void plainBatches(ActorSystem<?> system, Config config, List<List<Trajectory>> batches, int tagCount, String runId) throws Exception {
    var events = new ArrayList<Object>();
    var tags = new ArrayList<String>();
    for (var b : batches) {
      events.add(new TrajectoriesRecorded(b, "plain", System.currentTimeMillis()));
      tags.add(TrajectoryCollector.tagFor(b.getFirst().trajectoryId(), tagCount));
    }
    insert(system, config, events, tags, 1, runId);
  }

  /** For reference: one row per trajectory (the pre-batch event layout), committed per batch. */
  private static void plainRows(ActorSystem<?> system, Config config, List<List<Trajectory>> batches, int tagCount, String runId) throws Exception {
    var events = new ArrayList<Object>();
    var tags = new ArrayList<String>();
    int batch = 0;
    for (var b : batches) {
      batch = Math.max(batch, b.size());
      for (var t : b) {
        events.add(new TrajectoryRecorded(t, "plain", System.currentTimeMillis()));
        tags.add(TrajectoryCollector.tagFor(t.trajectoryId(), tagCount));
      }
    }
    insert(system, config, events, tags, batch, runId);
  }

  /** Serializes each event as the journal does and batch-inserts it into a copy of the journal tables. */
  private static void insert(ActorSystem<?> system, Config config, List<Object> events, List<String> tags, int perCommit,
                             String runId) throws Exception {
    var db = config.getConfig("pekko-persistence-jdbc.shared-databases.slick.db");
    var url = db.getString("url");
    var serialization = SerializationExtension.get(Adapter.toClassic(system));
    try (var c = DriverManager.getConnection(url, db.getString("user"), db.getString("password"));
         var st = c.createStatement()) {
      st.execute("CREATE TABLE IF NOT EXISTS bench_plain_journal (ordering BIGINT PRIMARY KEY, persistence_id VARCHAR(255) NOT NULL,"
          + " sequence_number BIGINT NOT NULL, writer VARCHAR(255) NOT NULL, write_timestamp BIGINT, event_ser_id INTEGER NOT NULL,"
          + " event_ser_manifest VARCHAR(255) NOT NULL, event_payload " + (url.startsWith("jdbc:postgresql") ? "BYTEA" : "BLOB") + " NOT NULL)");
      st.execute("CREATE TABLE IF NOT EXISTS bench_plain_tag (event_id BIGINT, tag VARCHAR(256), PRIMARY KEY(event_id, tag))");
      long base;
      try (var rs = st.executeQuery("SELECT COALESCE(MAX(ordering), 0) FROM bench_plain_journal")) {
        rs.next();
        base = rs.getLong(1);
      }
      c.setAutoCommit(false);
      try (var ins = c.prepareStatement("INSERT INTO bench_plain_journal VALUES (?,?,?,?,?,?,?,?)");
           var tag = c.prepareStatement("INSERT INTO bench_plain_tag VALUES (?,?)")) {
        for (int i = 0; i < events.size(); i++) {
          var e = events.get(i);
          var ser = serialization.findSerializerFor(e);
          long ord = base + i + 1;
          ins.setLong(1, ord);
          ins.setString(2, runId);
          ins.setLong(3, i + 1);
          ins.setString(4, "bench");
          ins.setLong(5, System.currentTimeMillis());
          ins.setInt(6, ser.identifier());
          ins.setString(7, Serializers.manifestFor(ser, e));
          ins.setBytes(8, ser.toBinary(e));
          ins.addBatch();
          tag.setLong(1, ord);
          tag.setString(2, tags.get(i));
          tag.addBatch();
          if ((i + 1) % perCommit == 0 || i == events.size() - 1) {
            ins.executeBatch();
            tag.executeBatch();
            c.commit();
          }
        }
      }
    }
  }
}
