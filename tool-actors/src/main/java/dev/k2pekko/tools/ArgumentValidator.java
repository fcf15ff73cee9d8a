package dev.k2pekko.tools;

import java.util.Map;

/** Checks a call's arguments against its tool's JSON Schema. Returns null when they fit, else what is wrong. */
public final class ArgumentValidator {
  private ArgumentValidator() {}

  /** Rough wire size of the arguments: what the payload limit is measured in. */
  public static int payloadBytes(Map<String, Object> args) {
    if (args == null) return 0;
    int n = 2;
    for (var e : args.entrySet()) {
      n += e.getKey().length() + 4;
      n += e.getValue() instanceof String s ? s.length() + 2 : 12;
    }
    return n;
  }

  public static String validate(ToolSpec spec, Map<String, Object> args) {
    if (args == null) return "arguments must be a JSON object";
    for (var e : args.entrySet()) {
      var p = spec.param(e.getKey());
      if (p == null) return "unknown argument '" + e.getKey() + "' for " + spec.name();
      var v = e.getValue();
      if (v == null) return "argument '" + p.name() + "' is null";
      String problem = switch (p.type()) {
        case STRING -> v instanceof String s
            ? (p.maxLength() > 0 && s.length() > p.maxLength() ? "is longer than " + p.maxLength() + " characters"
                : !p.enumValues().isEmpty() && !p.enumValues().contains(s) ? "must be one of " + p.enumValues() : null)
            : "must be a string";
        case INTEGER -> v instanceof Long || v instanceof Integer ? null : "must be an integer";
        case NUMBER -> v instanceof Number n && Double.isFinite(n.doubleValue()) ? null : "must be a finite number";
        case BOOLEAN -> v instanceof Boolean ? null : "must be a boolean";
      };
      if (problem != null) return "argument '" + p.name() + "' " + problem + " (got " + describe(v) + ")";
    }
    for (var p : spec.params()) {
      if (p.required() && !args.containsKey(p.name())) return "missing required argument '" + p.name() + "' for " + spec.name();
    }
    return null;
  }

  private static String describe(Object v) {
    var s = String.valueOf(v);
    return (v instanceof String ? "string \"" : v.getClass().getSimpleName().toLowerCase() + " ")
        + (s.length() > 40 ? s.substring(0, 40) + "…" : s) + (v instanceof String ? "\"" : "");
  }
}
