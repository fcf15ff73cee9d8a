package dev.k2pekko.agents.policy;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The compact text of nested JSON arguments in the learned policy's actions (and of JSON results in its view), for
 * tools whose arguments are arrays of objects, such as the MCP memory server's
 * {@code create_entities {entities: [{name, entityType, observations: [...]}]}}:
 * <pre>
 *   entities=[{name=Ada|entityType=person|observations=[likes tea]}]
 * </pre>
 * An object is {@code {key=value|key=value}}, an array {@code [value|value]}, a scalar its text with {@code \ [ ] { } |}
 * escaped by a backslash; a call's arguments are an object's body without its braces. Keys are written in a fixed
 * order ({@link #KEY_ORDER}, then the others sorted), so a call has one text and one token sequence whatever map
 * it came from (a task's {@code Map.of} iterates in a different order in every JVM). Scalars read back as strings: the
 * tools whose calls are written this way (the MCP task tools) take strings only.
 */
public final class NestedArgs {
  private NestedArgs() {}

  /** Keys in the order they are written: the memory server's own order of them. */
  static final List<String> KEY_ORDER = List.of("name", "entityType", "observations", "from", "to", "relationType", "entityName",
      "contents", "addedObservations", "entityNames", "path", "content", "source", "destination");

  /** A malformed nested text: says what was expected where. */
  public static final class Malformed extends IllegalArgumentException {
    Malformed(String text, int at, String what) {
      super("malformed arguments at character " + at + " of '" + text + "': " + what);
    }
  }

  /** The text of a call's arguments: {@code key=value|key=value}, keys in the fixed order. */
  public static String renderArguments(Map<String, ?> args) {
    var sb = new StringBuilder();
    body(args, sb);
    return sb.toString();
  }

  /** The text of one value (an object, an array or a scalar). */
  public static String render(Object value) {
    var sb = new StringBuilder();
    value(value, sb);
    return sb.toString();
  }

  private static void value(Object v, StringBuilder sb) {
    // a trajectory read back from the journal holds its nested arguments as Scala collections (the journal's
    // serializer): the same value, the same text
    if (v instanceof scala.collection.Map<?, ?> m) v = scala.jdk.javaapi.CollectionConverters.asJava(m);
    else if (v instanceof scala.collection.Iterable<?> l) v = new ArrayList<>(scala.jdk.javaapi.CollectionConverters.asJavaCollection(l));
    if (v instanceof Map<?, ?> m) {
      sb.append('{');
      body(m, sb);
      sb.append('}');
    } else if (v instanceof List<?> l) {
      sb.append('[');
      for (int i = 0; i < l.size(); i++) {
        if (i > 0) sb.append('|');
        value(l.get(i), sb);
      }
      sb.append(']');
    } else {
      String s = v == null ? "" : v instanceof Double d ? dev.k2pekko.tools.Simulator.format(d) : String.valueOf(v);
      for (int i = 0; i < s.length(); i++) {
        char c = s.charAt(i);
        if (c == '\\' || c == '[' || c == ']' || c == '{' || c == '}' || c == '|') sb.append('\\');
        sb.append(c);
      }
    }
  }

  private static void body(Map<?, ?> m, StringBuilder sb) {
    boolean first = true;
    for (String k : keyOrder(m)) {
      if (!first) sb.append('|');
      first = false;
      sb.append(k).append('=');
      value(m.get(k), sb);
    }
  }

  static List<String> keyOrder(Map<?, ?> m) {
    var out = new ArrayList<String>(m.size());
    for (String k : KEY_ORDER) if (m.containsKey(k)) out.add(k);
    m.keySet().stream().map(String::valueOf).filter(k -> !out.contains(k)).sorted().forEach(out::add);
    return out;
  }

  /**
   * A call's arguments read back from {@code key=value|key=value}: objects as maps (in written order), arrays as
   * lists, scalars as strings. Empty text: no arguments.
   *
   * @throws Malformed where the text is not of this form (an unclosed bracket, a missing {@code =}, a stray closing
   *     bracket, a trailing backslash), naming the character and what was expected there
   */
  public static Map<String, Object> parseArguments(String text) {
    var p = new Parser(text);
    if (text.isEmpty()) return new LinkedHashMap<>();
    var out = p.body('\0');
    if (p.i < text.length()) throw new Malformed(text, p.i, "unexpected '" + text.charAt(p.i) + "' (a closing bracket without its opening one?)");
    return out;
  }

  /** One value read back ({@link #parseArguments} for the rules). */
  public static Object parse(String text) {
    var p = new Parser(text);
    var v = p.value();
    if (p.i < text.length()) throw new Malformed(text, p.i, "unexpected '" + text.charAt(p.i) + "' after the value");
    return v;
  }

  private static final class Parser {
    final String s;
    int i;

    Parser(String s) { this.s = s; }

    /** key=value pairs up to {@code close} (or the end when close is 0). */
    Map<String, Object> body(char close) {
      var out = new LinkedHashMap<String, Object>();
      if (close != '\0' && i < s.length() && s.charAt(i) == close) return out;
      while (true) {
        int start = i;
        while (i < s.length() && s.charAt(i) != '=') {
          char c = s.charAt(i);
          if (c == '|' || c == '[' || c == ']' || c == '{' || c == '}' || c == '\\') {
            throw new Malformed(s, i, "expected key=value, found '" + c + "' in a key");
          }
          i++;
        }
        if (i >= s.length()) throw new Malformed(s, start, "expected key=value, found no '=' after '" + s.substring(start) + "'");
        String key = s.substring(start, i);
        if (key.isEmpty()) throw new Malformed(s, i, "expected a key before '='");
        if (out.containsKey(key)) throw new Malformed(s, start, "key '" + key + "' given twice");
        i++;
        out.put(key, value());
        if (i >= s.length()) {
          if (close != '\0') throw new Malformed(s, i, "expected '" + close + "' to close the object, found the end");
          return out;
        }
        char c = s.charAt(i);
        if (c == '|') {
          i++;
          continue;
        }
        if (c == close) return out;
        throw new Malformed(s, i, "expected '|' or " + (close == '\0' ? "the end" : "'" + close + "'") + ", found '" + c + "'");
      }
    }

    Object value() {
      if (i < s.length() && s.charAt(i) == '{') {
        int open = i++;
        var m = body('}');
        if (i >= s.length()) throw new Malformed(s, open, "'{' is never closed");
        i++;
        return m;
      }
      if (i < s.length() && s.charAt(i) == '[') {
        int open = i++;
        var l = new ArrayList<Object>();
        if (i < s.length() && s.charAt(i) == ']') {
          i++;
          return l;
        }
        while (true) {
          l.add(value());
          if (i >= s.length()) throw new Malformed(s, open, "'[' is never closed");
          char c = s.charAt(i++);
          if (c == ']') return l;
          if (c != '|') throw new Malformed(s, i - 1, "expected '|' or ']' in an array, found '" + c + "'");
        }
      }
      var sb = new StringBuilder();
      while (i < s.length()) {
        char c = s.charAt(i);
        if (c == '\\') {
          if (i + 1 >= s.length()) throw new Malformed(s, i, "a backslash at the end escapes nothing");
          sb.append(s.charAt(i + 1));
          i += 2;
          continue;
        }
        if (c == '|' || c == ']' || c == '}') break;
        if (c == '[' || c == '{') throw new Malformed(s, i, "'" + c + "' inside a value (escape it as \\" + c + ")");
        sb.append(c);
        i++;
      }
      return sb.toString();
    }
  }
}
