package dev.k2pekko.agents;

import dev.k2pekko.protocol.EpisodeOutcome;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Counters of a run, keyed by name: {@code episodes}, {@code tool_calls}, {@code tool_errors}, {@code accepted},
 * {@code rejected}, {@code persisted}, {@code reason/<kind>}, {@code difficulty/<d>/episodes|accepted} (verifiable tasks
 * only: an open task's acceptance is its hidden rubric, which must not steer prioritized sampling),
 * {@code category/<c>/episodes|accepted|persisted}, {@code node/<node>}, {@code task/<id>/n|ok}, {@code to_persist},
 * {@code refused/<ToolError>} (the firewall's refusals), {@code fingerprint} (the sum of the episodes' fingerprints,
 * mod 2^64). A run's tracker and its record count the same way, from the durable {@link EpisodeOutcome}s, so the
 * summary and the journal agree.
 */
public final class RunStats {
  private final HashMap<String, Long> counters = new HashMap<>();

  public void add(String key, long n) { counters.merge(key, n, Long::sum); }

  public void addAll(Map<String, Long> delta) { delta.forEach(this::add); }

  public long get(String key) { return counters.getOrDefault(key, 0L); }

  public boolean isEmpty() { return counters.isEmpty(); }

  /** The counters so far, and a fresh start. */
  public HashMap<String, Long> drain() {
    var out = new HashMap<>(counters);
    counters.clear();
    return out;
  }

  public Map<String, Long> view() { return new TreeMap<>(counters); }

  /** Counts one durable episode. */
  public void count(EpisodeOutcome o) {
    add("episodes", 1);
    add("tool_calls", o.toolCalls());
    if (o.toolErrors() > 0) add("tool_errors", o.toolErrors());
    for (var r : o.refusals()) add("refused/" + r.name(), 1);
    add(o.accepted() ? "accepted" : "rejected", 1);
    boolean open = dev.k2pekko.agents.tasks.TaskBuilder.OPEN.equals(o.category());
    if (!open) add("difficulty/" + o.difficulty() + "/episodes", 1);
    add("category/" + o.category() + "/episodes", 1);
    add("node/" + o.node(), 1);
    if (o.taskId() != null) {
      // evaluation: trials and successes per task instance, for success rate and pass^k
      add("task/" + o.taskId() + "/n", 1);
      if (o.accepted()) add("task/" + o.taskId() + "/ok", 1);
    }
    if (o.accepted()) {
      if (!open) add("difficulty/" + o.difficulty() + "/accepted", 1);
      add("category/" + o.category() + "/accepted", 1);
    } else {
      for (var k : o.reasonKinds()) add("reason/" + k, 1);
    }
    if (o.kept()) {
      add("to_persist", 1);
      add("persisted", 1);
      add("category/" + o.category() + "/persisted", 1);
    }
    add("fingerprint", o.fingerprint());
  }
}
