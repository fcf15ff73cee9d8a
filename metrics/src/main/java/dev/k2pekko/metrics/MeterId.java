package dev.k2pekko.metrics;

import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * What names a meter: a Prometheus-style base name ({@code k2_tool_calls}; counters get {@code _total} and timers
 * {@code _seconds_*} when exported), a one-line help text, and labels (sorted, so the same labels in any order name
 * the same meter).
 */
public record MeterId(String name, String help, Map<String, String> labels) {
  private static final Pattern NAME = Pattern.compile("[a-zA-Z_][a-zA-Z0-9_]*");

  public MeterId {
    if (!NAME.matcher(name).matches()) throw new IllegalArgumentException("meter name must match " + NAME + ", got '" + name + "'");
    for (var k : labels.keySet()) {
      if (!NAME.matcher(k).matches()) throw new IllegalArgumentException("label name must match " + NAME + ", got '" + k + "'");
    }
    labels = java.util.Collections.unmodifiableSortedMap(new TreeMap<>(labels));
  }

  /** {@code labels} as key, value, key, value, ... */
  public static MeterId of(String name, String help, String... labels) {
    if (labels.length % 2 != 0) throw new IllegalArgumentException("labels come in key, value pairs: " + String.join(",", labels));
    var m = new TreeMap<String, String>();
    for (int i = 0; i < labels.length; i += 2) m.put(labels[i], labels[i + 1]);
    return new MeterId(name, help, m);
  }

  /** Help text is documentation, not identity. */
  @Override public boolean equals(Object o) {
    return o instanceof MeterId m && m.name.equals(name) && m.labels.equals(labels);
  }

  @Override public int hashCode() {
    return name.hashCode() * 31 + labels.hashCode();
  }

  /** {@code name{k="v",...}} as Prometheus writes it. */
  @Override public String toString() {
    if (labels.isEmpty()) return name;
    var b = new StringBuilder(name).append('{');
    labels.forEach((k, v) -> b.append(k).append("=\"").append(v).append("\","));
    b.setCharAt(b.length() - 1, '}');
    return b.toString();
  }
}
