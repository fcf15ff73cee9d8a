package dev.k2pekko.tools;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Every tool a node knows, generated deterministically from a seed as the K2 report builds its synthetic tools:
 * category → application domain → tool. The core tools of the seed's examples ({@code calc.add},
 * {@code notes.write}, {@code web.search}, ...) come first; generated ones are named
 * {@code <category>.<domain>.<op>_<noun>}. Users add more from JSON spec files ({@link ToolSpecFiles}).
 */
public final class ToolUniverse {
  public static final List<String> CATEGORIES = List.of("finance", "productivity", "travel", "health", "education",
      "ecommerce", "devops", "media", "legal", "science", "sports", "food", "realestate", "logistics", "social", "gaming");
  public static final int DOMAINS_PER_CATEGORY = 44;
  private static final String[] SYLLABLES = {"ka", "lo", "mi", "ra", "ten", "vo", "zu", "pe", "dex", "nor", "quil", "sa",
      "bri", "tor", "lyn", "gro", "fi", "wex", "mar", "po", "cu", "hal", "jin", "ux"};

  /** One operation a domain offers: simulator kind, op, noun (names the resource), description. */
  private record Template(SimKind kind, String op, String noun, String what) {}

  private static final List<Template> DOMAIN_TOOLS = List.of(
      new Template(SimKind.NOTES, "write", "notes", "Replace the text of the notes"),
      new Template(SimKind.NOTES, "append", "notes", "Append a line to the notes"),
      new Template(SimKind.NOTES, "read", "notes", "Read the notes"),
      new Template(SimKind.NOTES, "clear", "notes", "Erase the notes"),
      new Template(SimKind.NOTES, "write", "journal", "Replace the text of the journal"),
      new Template(SimKind.NOTES, "append", "journal", "Append a line to the journal"),
      new Template(SimKind.NOTES, "read", "journal", "Read the journal"),
      new Template(SimKind.NOTES, "clear", "journal", "Erase the journal"),
      new Template(SimKind.FILES, "write", "file", "Write a file"),
      new Template(SimKind.FILES, "read", "file", "Read a file"),
      new Template(SimKind.FILES, "delete", "file", "Delete a file"),
      new Template(SimKind.KV, "put", "record", "Store a record under a key"),
      new Template(SimKind.KV, "get", "record", "Fetch the record stored under a key"),
      new Template(SimKind.KV, "delete", "record", "Delete the record stored under a key"),
      new Template(SimKind.KV, "put", "setting", "Set a setting"),
      new Template(SimKind.KV, "get", "setting", "Read a setting"),
      new Template(SimKind.KV, "delete", "setting", "Reset a setting"),
      new Template(SimKind.CART, "add", "item", "Add items to the cart"),
      new Template(SimKind.CART, "total", "cart", "Total price of the cart"),
      new Template(SimKind.CART, "clear", "cart", "Empty the cart"),
      new Template(SimKind.CALENDAR, "create", "event", "Create a calendar event"),
      new Template(SimKind.CALENDAR, "list", "events", "List the events of a day"),
      new Template(SimKind.LOOKUP, "search", "catalog", "Search the catalog"),
      new Template(SimKind.LOOKUP, "search", "faq", "Search the FAQ"),
      new Template(SimKind.CALC, "add", "numbers", "Add two numbers"),
      new Template(SimKind.CALC, "sub", "numbers", "Subtract b from a"),
      new Template(SimKind.CALC, "mul", "numbers", "Multiply two numbers"),
      new Template(SimKind.CALC, "max", "numbers", "The larger of two numbers"),
      new Template(SimKind.CALC, "min", "numbers", "The smaller of two numbers"));

  private final long seed;
  private final Map<String, ToolSpec> byName;
  private final Map<String, List<ToolSpec>> byDomain;
  private final List<ToolSpec> all;

  private ToolUniverse(long seed, Map<String, ToolSpec> byName) {
    this.seed = seed;
    this.byName = Collections.unmodifiableMap(byName);
    var domains = new LinkedHashMap<String, List<ToolSpec>>();
    for (var t : byName.values()) domains.computeIfAbsent(t.domain(), d -> new ArrayList<>()).add(t);
    this.byDomain = Collections.unmodifiableMap(domains);
    this.all = List.copyOf(byName.values());
  }

  /** The generated universe; {@code noise} scales every tool's seeded failure and partial-result rates. */
  public static ToolUniverse generate(long seed, Stochasticity noise) {
    var tools = new LinkedHashMap<String, ToolSpec>();
    var rnd = new SplittableRandom(seed);
    for (var t : core()) tools.put(t.name(), t.withNoise(noise, rnd));
    for (String category : CATEGORIES) {
      var used = new java.util.HashSet<String>();
      for (int d = 0; d < DOMAINS_PER_CATEGORY; d++) {
        String domain;
        do domain = word(rnd); while (!used.add(domain));
        for (var tpl : DOMAIN_TOOLS) {
          var name = category + "." + domain + "." + tpl.op() + "_" + tpl.noun();
          var spec = spec(name, tpl.what() + " in " + domain + " (" + category + ")", category, category + "." + domain,
              tpl.kind(), tpl.op(), tpl.noun());
          tools.put(name, spec.withNoise(noise, rnd));
        }
      }
    }
    return new ToolUniverse(seed, tools);
  }

  /** A copy of this universe with user tools added; a user tool may not replace a generated one. */
  public ToolUniverse with(Collection<ToolSpec> extra) {
    var tools = new LinkedHashMap<>(byName);
    for (var t : extra) {
      if (tools.putIfAbsent(t.name(), t) != null) throw new IllegalArgumentException("tool '" + t.name() + "' is defined twice");
    }
    return new ToolUniverse(seed, tools);
  }

  private static List<ToolSpec> core() {
    var out = new ArrayList<ToolSpec>();
    for (var op : List.of("add", "sub", "mul", "max", "min")) out.add(spec("calc." + op, "Calculator: " + op + " of a and b", "calc", "calc", SimKind.CALC, op, "numbers"));
    for (var op : List.of("write", "append", "read", "clear")) out.add(spec("notes." + op, "Notes: " + op, "notes", "notes", SimKind.NOTES, op, "notes"));
    for (var op : List.of("write", "read", "delete")) out.add(spec("files." + op, "Files: " + op, "files", "files", SimKind.FILES, op, "file"));
    for (var op : List.of("put", "get", "delete")) out.add(spec("kv." + op, "Key-value store: " + op, "kv", "kv", SimKind.KV, op, "record"));
    for (var op : List.of("add", "total", "clear")) out.add(spec("cart." + op, "Shopping cart: " + op, "cart", "cart", SimKind.CART, op, op.equals("add") ? "item" : "cart"));
    for (var op : List.of("create", "list")) out.add(spec("calendar." + op, "Calendar: " + op, "calendar", "calendar", SimKind.CALENDAR, op, op.equals("create") ? "event" : "events"));
    out.add(spec("web.search", "Search the web (a seeded knowledge table)", "web", "web", SimKind.LOOKUP, "search", "web"));
    return out;
  }

  /** The parameters follow from kind and op, so that every tool of a kind is called the same way. */
  public static ToolSpec spec(String name, String description, String category, String domain, SimKind kind, String op, String noun) {
    var s = ParamType.STRING;
    List<ParamSpec> params = switch (kind) {
      case CALC -> List.of(ParamSpec.of("a", ParamType.NUMBER, "first operand"), ParamSpec.of("b", ParamType.NUMBER, "second operand"));
      case NOTES -> op.equals("write") || op.equals("append") ? List.of(ParamSpec.of("text", s, "the text")) : List.of();
      case FILES -> op.equals("write") ? List.of(ParamSpec.of("path", s, "file path"), ParamSpec.of("content", s, "file content"))
          : List.of(ParamSpec.of("path", s, "file path"));
      case KV -> op.equals("put") ? List.of(ParamSpec.of("key", s, "the key"), ParamSpec.of("value", s, "the value"))
          : List.of(ParamSpec.of("key", s, "the key"));
      case CART -> op.equals("add") ? List.of(ParamSpec.of("item", s, "item name"), ParamSpec.of("quantity", ParamType.INTEGER, "how many"),
          ParamSpec.of("price", ParamType.NUMBER, "unit price")) : List.of();
      case CALENDAR -> op.equals("create") ? List.of(ParamSpec.of("title", s, "event title"), ParamSpec.of("date", s, "day, YYYY-MM-DD"))
          : List.of(ParamSpec.of("date", s, "day, YYYY-MM-DD"));
      case LOOKUP -> List.of(ParamSpec.of("query", s, "what to look up"));
    };
    return new ToolSpec(name, description, category, domain, kind, op, noun, params, Stochasticity.NONE);
  }

  private static String word(SplittableRandom rnd) {
    int n = 2 + rnd.nextInt(2);
    var b = new StringBuilder();
    for (int i = 0; i < n; i++) b.append(SYLLABLES[rnd.nextInt(SYLLABLES.length)]);
    return b.toString();
  }

  public long seed() { return seed; }
  public int size() { return byName.size(); }
  public ToolSpec get(String name) { return byName.get(name); }
  public List<ToolSpec> all() { return all; }
  public Map<String, List<ToolSpec>> byDomain() { return byDomain; }
  public List<ToolSpec> domain(String domain) { return byDomain.getOrDefault(domain, List.of()); }
}
