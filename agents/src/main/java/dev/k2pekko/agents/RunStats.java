package dev.k2pekko.agents;

import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Counters of a run, keyed by name: {@code episodes}, {@code tool_calls}, {@code tool_errors}, {@code accepted},
 * {@code rejected}, {@code persisted}, {@code reason/<kind>}, {@code difficulty/<d>/episodes|accepted},
 * {@code category/<c>/episodes|accepted}, {@code refused/<ToolError>} (the firewall's refusals). Judges count, and send deltas to the run's tracker.
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
}
