package dev.k2pekko.launcher.ops;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.metrics.Meter;
import dev.k2pekko.metrics.MeterId;
import dev.k2pekko.metrics.Metrics;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * What the dashboard draws, as one JSON object: this node, the cluster's members with their roles, and every meter
 * of the node ({@code counters}, {@code gauges}, {@code timers} and {@code series} with their points). The page
 * derives stages, rates, curves and the max-logit heatmap from it.
 */
final class Snapshot {
  private static final ObjectMapper JSON = new ObjectMapper();

  private Snapshot() {}

  static String of(ActorSystem<?> system, Metrics metrics) {
    var root = JSON.createObjectNode();
    root.put("time", System.currentTimeMillis());
    var cluster = Cluster.get(system);
    root.put("node", cluster.selfMember().address().toString());
    var members = root.putArray("members");
    for (Member m : cluster.state().getMembers()) {
      var o = members.addObject();
      o.put("address", m.address().toString());
      o.put("status", m.status().toString());
      var roles = o.putArray("roles");
      for (var r : new java.util.TreeSet<>(m.getRoles())) if (!r.startsWith("dc-")) roles.add(r);
      o.put("reachable", !cluster.state().getUnreachable().contains(m));
    }
    var heap = java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
    root.putObject("jvm").put("heapUsed", heap.getUsed()).put("heapMax", heap.getMax());
    var counters = root.putArray("counters");
    var gauges = root.putArray("gauges");
    var timers = root.putArray("timers");
    var series = root.putArray("series");
    for (var m : metrics.meters()) {
      switch (m) {
        case Meter.Counter c -> meter(counters, c.id()).put("value", c.count());
        case Meter.Gauge g -> number(meter(gauges, g.id()), "value", g.value());
        case Meter.Timer t -> {
          var o = meter(timers, t.id());
          o.put("count", t.count());
          o.put("sum", t.totalSeconds());
          o.put("max", t.maxSeconds());
          o.put("last", t.lastSeconds());
        }
        case Meter.Series s -> {
          var points = meter(series, s.id()).putArray("points");
          for (var p : s.points()) {
            if (Double.isFinite(p.y())) points.addArray().add(p.x()).add(p.y());
          }
        }
      }
    }
    return root.toString();
  }

  private static ObjectNode meter(ArrayNode into, MeterId id) {
    var o = into.addObject();
    o.put("name", id.name());
    var labels = o.putObject("labels");
    id.labels().forEach(labels::put);
    return o;
  }

  /** JSON has no NaN: a value not measured yet is null. */
  private static void number(ObjectNode o, String field, double v) {
    if (Double.isFinite(v)) o.put(field, v);
    else o.putNull(field);
  }
}
