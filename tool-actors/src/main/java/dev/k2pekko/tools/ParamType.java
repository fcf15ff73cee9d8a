package dev.k2pekko.tools;

/** JSON Schema types a tool parameter can take. */
public enum ParamType {
  STRING("string"), INTEGER("integer"), NUMBER("number"), BOOLEAN("boolean");

  public final String json;

  ParamType(String json) { this.json = json; }

  public static ParamType fromJson(String s) {
    for (var t : values()) if (t.json.equals(s)) return t;
    throw new IllegalArgumentException("unsupported parameter type '" + s + "' (use string, integer, number or boolean)");
  }
}
