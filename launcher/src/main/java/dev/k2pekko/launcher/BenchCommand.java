package dev.k2pekko.launcher;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.JournalSchema;
import dev.k2pekko.agents.NodeServices;
import dev.k2pekko.agents.OfflinePlay;
import dev.k2pekko.agents.RunDriver;
import dev.k2pekko.agents.TrajectoryCollector;
import dev.k2pekko.agents.TrajectoryReplay;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.TrajectoriesRecorded;
import dev.k2pekko.protocol.TrajectoryRecorded;
import dev.k2pekko.tools.ToolDirectory;
import java.lang.management.ManagementFactory;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.pattern.StatusReply;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code k2 bench}: the measurements recorded in BENCHMARKS.md; each prints a table or, with --json, one JSON line. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks (see BENCHMARKS.md).",
    subcommands = {BenchCommand.Sim.class, McpBench.class, BenchCommand.Persist.class, BenchCommand.Memory.class, BenchCommand.Clip.class,
        BenchCommand.Model.class, BenchLoop.Learner.class, BenchLoop.Ps.class, BenchLoop.Optimizers.class})
final class BenchCommand implements Runnable {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Override public void run() {
    picocli.CommandLine.usage(this, System.err);
  }

  static void print(ObjectNode result, boolean json) {
    if (json) {
      System.out.println(result);
      return;
    }
    result.fields().forEachRemaining(e -> System.out.printf("  %-34s %s%n", e.getKey(), e.getValue()));
  }

  @Command(name = "sim", mixinStandardHelpOptions = true,
      description = "Simulation throughput with the teacher policy and persistence off: a warm-up run, then the measured run.")
  static final class Sim implements java.util.concurrent.Callable<Integer> {
    @Mixin NodeConfig node;
    @Option(names = "--agents", defaultValue = "10000") int agents;
    @Option(names = "--episodes", defaultValue = "30", description = "episodes per agent in the measured run") int episodes;
    @Option(names = "--json") boolean json;
    @Option(names = "--firewall", defaultValue = "on",
        description = "on, off, or both: measured runs alternate off/on (--pairs times) in one JVM and the ratio is printed")
    String firewall;
    @Option(names = "--pairs", defaultValue = "2", description = "with --firewall both: off/on pairs of measured runs") int pairs;

    @Override public Integer call() throws Exception {
      if (!java.util.Set.of("on", "off", "both").contains(firewall)) {
        throw new picocli.CommandLine.ParameterException(new picocli.CommandLine(this), "--firewall must be on, off or both, got " + firewall);
      }
      var config = node.build("h2", new HashMap<>());
      JournalSchema.ensure(config); // the firewall's audit trail is written even with persistence off
      var system = Nodes.single(config, Duration.ofSeconds(30));
      try {
        var fw = ToolDirectory.get(system).firewall();
        fw.setEnabled(!firewall.equals("off"));
        run(system, "warmup", Math.max(1, episodes / 3));
        if (firewall.equals("both")) return both(system, fw);
        var s = run(system, "measured", episodes);
        double secs = s.elapsed().toNanos() / 1e9;
        var o = JSON.createObjectNode().put("bench", "sim").put("agents", agents).put("episodes", s.get("episodes"))
            .put("tool_calls", s.get("tool_calls")).put("seconds", secs)
            .put("tool_calls_per_s", Math.round(s.get("tool_calls") / secs)).put("episodes_per_s", Math.round(s.get("episodes") / secs))
            .put("firewall", firewall).put("cores", Runtime.getRuntime().availableProcessors());
        print(o, json);
        return s.complete() ? 0 : 1;
      } finally {
        Nodes.stop(system);
      }
    }

    /** Off and on alternately, so drift of the machine hits both alike; tool calls/s summed over each side's runs. */
    private int both(ActorSystem<?> system, dev.k2pekko.tools.Firewall fw) throws Exception {
      long[] calls = new long[2];
      double[] secs = new double[2];
      boolean complete = true;
      var perRun = JSON.createArrayNode();
      for (int i = 0; i < 2 * pairs; i++) {
        boolean on = i % 2 == 1;
        fw.setEnabled(on);
        var s = run(system, on ? "firewall-on" : "firewall-off", episodes);
        complete &= s.complete();
        int k = on ? 1 : 0;
        calls[k] += s.get("tool_calls");
        secs[k] += s.elapsed().toNanos() / 1e9;
        perRun.add(JSON.createObjectNode().put("firewall", on ? "on" : "off")
            .put("tool_calls_per_s", Math.round(s.get("tool_calls") / (s.elapsed().toNanos() / 1e9))));
      }
      double off = calls[0] / secs[0], on = calls[1] / secs[1];
      var o = JSON.createObjectNode().put("bench", "sim").put("agents", agents).put("episodes_per_agent", episodes)
          .put("pairs", pairs).put("tool_calls_per_s_off", Math.round(off)).put("tool_calls_per_s_on", Math.round(on))
          .put("on_over_off", Math.round(1000 * on / off) / 1000.0).put("overhead_pct", Math.round(1000 * (off / on - 1)) / 10.0)
          .put("cores", Runtime.getRuntime().availableProcessors());
      o.set("runs", perRun);
      print(o, json);
      return complete ? 0 : 1;
    }

    private dev.k2pekko.agents.RunTracker.Summary run(ActorSystem<?> system, String name, int n) throws Exception {
      var spec = new RunDriver.RunSpec(name + "-" + System.nanoTime(), agents, n, 42, Agent.PersistMode.NONE, Duration.ofMinutes(10));
      return Nodes.await(RunDriver.start(system, spec, s -> {}), Duration.ofMinutes(11));
    }
  }

  @Command(name = "persist", mixinStandardHelpOptions = true,
      description = "Trajectories persisted/s through the collectors into the journal, next to a plain JDBC batch insert of "
          + "the same rows (same serialized events, same batch size) into the same database in the same run; then replay/s.")
  static final class Persist implements java.util.concurrent.Callable<Integer> {
    @Mixin NodeConfig node;
    @Option(names = "--trajectories", defaultValue = "20000") int count;
    @Option(names = "--json") boolean json;

    @Override public Integer call() throws Exception {
      Config config = node.build("h2", new HashMap<>());
      JournalSchema.ensure(config);
      var system = Nodes.single(config, Duration.ofSeconds(30));
      try {
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
        print(o, json);
        return 0;
      } finally {
        Nodes.stop(system);
      }
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

    /** Through the collectors: each collector gets its tags' batches one after another (one in flight). */
    private static void journal(ActorSystem<?> system, List<List<Trajectory>> batches, int tags, int collectors) throws Exception {
      var sharding = ClusterSharding.get(system);
      var perCollector = new ArrayList<List<List<Trajectory>>>();
      for (int c = 0; c < collectors; c++) perCollector.add(new ArrayList<>());
      for (var b : batches) perCollector.get(TrajectoryCollector.tagIndex(b.getFirst().trajectoryId(), tags) % collectors).add(b);
      var lanes = new ArrayList<CompletableFuture<Void>>();
      for (int c = 0; c < collectors; c++) {
        var ref = sharding.entityRefFor(TrajectoryCollector.KEY, Integer.toString(c));
        var mine = perCollector.get(c);
        lanes.add(CompletableFuture.runAsync(() -> {
          long id = 0;
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
        }));
      }
      CompletableFuture.allOf(lanes.toArray(CompletableFuture[]::new)).get(10, TimeUnit.MINUTES);
    }

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

  @Command(name = "memory", mixinStandardHelpOptions = true, description = "Heap per idle agent actor (sharded entity) on one node.")
  static final class Memory implements java.util.concurrent.Callable<Integer> {
    @Mixin NodeConfig node;
    @Option(names = "--agents", defaultValue = "100000") int agents;
    @Option(names = "--json") boolean json;
    @Option(names = "--baseline", description = "measure entities that do nothing (Behaviors.ignore) instead of agents: "
        + "what Pekko and Cluster Sharding cost per entity")
    boolean baseline;

    @Override public Integer call() throws Exception {
      var system = Nodes.single(node.build("h2", new HashMap<>()), Duration.ofSeconds(30));
      try {
        var sharding = ClusterSharding.get(system);
        if (baseline) {
          sharding.init(org.apache.pekko.cluster.sharding.typed.javadsl.Entity.of(IDLE, ctx -> Behaviors.ignore()));
        }
        var key = baseline ? IDLE : Agent.KEY;
        // start the shard regions' shards with one agent each, so that the measured delta is the agents
        var idle = new Agent.RunEpisodes("idle", 0, 0, Agent.PersistMode.NONE, null);
        for (int i = 0; i < 200; i++) sharding.entityRefFor(key, "warm-" + i).tell(idle);
        Thread.sleep(2000);
        long before = usedAfterGc();
        for (int i = 0; i < agents; i++) sharding.entityRefFor(key, "agent-" + i).tell(idle);
        long started = waitForEntities(system, key, agents + 200);
        long after = usedAfterGc();
        var o = JSON.createObjectNode().put("bench", baseline ? "memory-baseline" : "memory").put("agents", agents).put("entities_started", started)
            .put("heap_before_mb", before >> 20).put("heap_after_mb", after >> 20)
            .put("bytes_per_idle_agent", Math.round((double) (after - before) / agents));
        print(o, json);
        return 0;
      } finally {
        Nodes.stop(system);
      }
    }

    /** An entity that does nothing: the floor of what any sharded entity costs. */
    static final org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey<Agent.Command> IDLE =
        org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey.create(Agent.Command.class, "idle-baseline");

    private static long waitForEntities(ActorSystem<?> system, org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey<?> key, long n)
        throws Exception {
      var sharding = ClusterSharding.get(system);
      long count = 0;
      for (int i = 0; i < 120; i++) {
        var stats = AskPattern.<org.apache.pekko.cluster.sharding.typed.ClusterShardingQuery, org.apache.pekko.cluster.sharding.ShardRegion.CurrentShardRegionState>ask(
            sharding.shardState(), r -> new org.apache.pekko.cluster.sharding.typed.GetShardRegionState(key, r),
            Duration.ofSeconds(10), system.scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS);
        count = stats.getShards().stream().mapToLong(s -> s.getEntityIds().size()).sum();
        if (count >= n) return count;
        Thread.sleep(500);
      }
      return count;
    }

    private static long usedAfterGc() throws InterruptedException {
      var mem = ManagementFactory.getMemoryMXBean();
      for (int i = 0; i < 4; i++) {
        System.gc();
        Thread.sleep(200);
      }
      return mem.getHeapMemoryUsage().getUsed();
    }
  }

  @Command(name = "clip", mixinStandardHelpOptions = true,
      description = "The K2 report's figure in miniature: vanilla Muon and MuonClip from the same seed; writes a CSV and a PNG "
          + "of each head's max logit and the loss per step (docs/clip.csv, docs/clip.png); see docs/MODEL.md.")
  static final class Clip implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--out", defaultValue = "docs", description = "directory for clip.csv and clip.png (default ${DEFAULT-VALUE})")
    java.nio.file.Path out;
    @Option(names = "--steps", description = "training steps (default 150)") Integer steps;
    @Option(names = "--lr", description = "learning rate (default 0.08)") Double lr;
    @Option(names = "--tau", description = "QK-Clip threshold (default 30)") Double tau;
    @Option(names = "--seed", description = "seed (default 7)") Long seed;
    @Option(names = "--json") boolean json;

    @Override public Integer call() throws Exception {
      var d = dev.k2pekko.ps.optim.ClipExperiment.Config.defaults();
      var cfg = new dev.k2pekko.ps.optim.ClipExperiment.Config(seed != null ? seed : d.seed(), steps != null ? steps : d.steps(),
          lr != null ? lr : d.lr(), tau != null ? tau : d.tau(), d.batch(), d.copyLength(), d.weightDecay());
      if (cfg.steps() < 1 || !(cfg.lr() > 0) || !(cfg.tau() > 0)) throw new NodeConfig.UsageError("--steps, --lr and --tau must be positive");
      java.nio.file.Files.createDirectories(out);
      var r = dev.k2pekko.ps.optim.ClipExperiment.run(cfg, out);
      if (!json) {
        System.out.printf("tau %.2f%n  vanilla Muon: max logit %.2f, final loss %.4f%n  MuonClip:     max logit %.2f, final loss %.4f%n"
            + "  wrote %s and %s in %.1f s%n", r.tau(), r.vanilla().maxLogit(), r.vanilla().loss(), r.clip().maxLogit(), r.clip().loss(),
            r.csv(), r.png(), r.seconds());
      }
      if (json) System.out.println(r.toJson());
      return 0;
    }
  }

  @Command(name = "model", mixinStandardHelpOptions = true,
      description = "Forward+backward tokens/s of the default policy, Muon step time against size, ND4J matmul GFLOP/s next to "
          + "the plain-Java reference (about 2 minutes; prints Markdown tables).")
  static final class Model implements java.util.concurrent.Callable<Integer> {
    @Override public Integer call() {
      System.out.println(dev.k2pekko.ps.optim.bench.ModelBench.report());
      return 0;
    }
  }
}
