package dev.k2pekko.agents.tasks;

import dev.k2pekko.tools.SimKind;
import dev.k2pekko.tools.Simulator;
import dev.k2pekko.tools.ToolSpec;
import dev.k2pekko.tools.ToolUniverse;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * Composes a task step by step within one application domain (or the core tools): each step is run on a scratch
 * world with the same simulator the tool workers use, so the expected values and end state are exact. A value
 * flows from each value-yielding step into the next step that says {@code $previous}.
 */
public final class TaskBuilder {
  private static final Map<SimKind, String> CORE_DOMAINS = Map.of(SimKind.CALC, "calc", SimKind.NOTES, "notes",
      SimKind.FILES, "files", SimKind.KV, "kv", SimKind.CART, "cart", SimKind.CALENDAR, "calendar", SimKind.LOOKUP, "web");

  private final ToolUniverse universe;
  private final String domain;
  private final long seed;
  private final Map<String, String> world = new HashMap<>();
  private final List<PlanStep> plan = new ArrayList<>();
  private final List<String> clauses = new ArrayList<>();
  private final LinkedHashSet<String> forbidden = new LinkedHashSet<>();
  private String value;

  /** {@code domain} is a generated domain ("finance.kalo") or "core" for calc.add, notes.write, ... */
  public TaskBuilder(ToolUniverse universe, String domain, long seed) {
    this.universe = universe;
    this.domain = domain;
    this.seed = seed;
  }

  public String category() {
    if (open) return OPEN;
    return domain.equals("core") ? "core" : domain.substring(0, domain.indexOf('.'));
  }

  /** The category of the open tasks (docs/LOOP.md, "Open tasks"): their checker is withheld from the reward. */
  public static final String OPEN = "open";

  private boolean open;

  /** Makes the task an open one: same tools and rubric, category {@link #OPEN}, whose rubric only evaluation reads. */
  public TaskBuilder asOpen() {
    this.open = true;
    return this;
  }

  public String domainLabel() {
    return domain.equals("core") ? "" : " of " + domain.substring(domain.indexOf('.') + 1);
  }

  public ToolSpec tool(SimKind kind, String op, String noun) {
    var candidates = domain.equals("core") ? universe.domain(CORE_DOMAINS.get(kind)) : universe.domain(domain);
    for (var t : candidates) {
      if (t.kind() == kind && t.op().equals(op) && (noun == null || t.noun().equals(noun))) return t;
    }
    throw new IllegalArgumentException("domain " + domain + " has no " + kind + "." + op + (noun == null ? "" : " on " + noun));
  }

  private void step(ToolSpec spec, Map<String, Object> args, boolean yields, String clause) {
    var resolved = new LinkedHashMap<String, Object>();
    args.forEach((k, v) -> resolved.put(k, PlanStep.PREVIOUS.equals(v) ? resolve(spec, k) : v));
    var result = Simulator.apply(world, spec, resolved, universe.seed());
    plan.add(new PlanStep(spec.name(), args, yields));
    clauses.add(clause);
    if (yields) value = result;
  }

  private Object resolve(ToolSpec spec, String arg) {
    if (value == null) throw new IllegalStateException("step uses $previous before any value was produced");
    return switch (spec.param(arg).type()) {
      case INTEGER -> Long.parseLong(value);
      case NUMBER -> asNumber(value);
      default -> value;
    };
  }

  public static Object asNumber(String s) {
    double d = Double.parseDouble(s);
    return d == Math.rint(d) && Math.abs(d) < 1e15 ? (Object) (long) d : (Object) d;
  }

  /**
   * False when {@link Double#parseDouble} (and so {@link Long#parseLong}) must refuse {@code s}: its first character
   * (after a sign) and its last can begin and end no number. A cheap test before a parse that would throw: the
   * judge compares every answer as a number first, and each wrong answer that is no number ("12x", a tool's error
   * text) cost an exception thrown and caught, stack trace and all. True does not promise a number.
   */
  public static boolean mayBeNumber(String s) {
    int n = s.length();
    if (n == 0) return false;
    char first = s.charAt(0), last = s.charAt(n - 1);
    if ((first == '+' || first == '-') && n > 1) first = s.charAt(1);
    // whitespace: parseDouble trims it itself
    boolean firstOk = first <= ' ' || first >= '0' && first <= '9' || first == '.' || first == 'N' || first == 'I';
    boolean lastOk = last <= ' ' || last >= '0' && last <= '9' || last == '.' || last == 'N' || last == 'y'
        || last == 'd' || last == 'D' || last == 'f' || last == 'F';
    return firstOk && lastOk;
  }

  private static final Map<String, String> FIRST = Map.of("add", "calculate %s + %s", "sub", "calculate %s - %s",
      "mul", "calculate %s × %s", "max", "take the larger of %s and %s", "min", "take the smaller of %s and %s");
  private static final Map<String, String> NEXT = Map.of("add", "add %s to it", "sub", "subtract %s from it",
      "mul", "multiply it by %s", "max", "take the larger of it and %s", "min", "take the smaller of it and %s");

  /** A calculation on two numbers (the first step of a chain). */
  public TaskBuilder calc(String op, long a, long b) {
    step(tool(SimKind.CALC, op, null), args("a", a, "b", b), true, FIRST.get(op).formatted(a, b));
    return this;
  }

  /** A calculation on the previous value and a number. */
  public TaskBuilder calcNext(String op, long b) {
    step(tool(SimKind.CALC, op, null), args("a", PlanStep.PREVIOUS, "b", b), true, NEXT.get(op).formatted(b));
    return this;
  }

  public TaskBuilder lookup(String noun, String query) {
    var spec = tool(SimKind.LOOKUP, "search", domain.equals("core") ? null : noun);
    step(spec, args("query", query), true, "look up \"" + query + "\" in the " + spec.noun() + domainLabel());
    return this;
  }

  public TaskBuilder cartAdd(String item, long quantity, long price) {
    step(tool(SimKind.CART, "add", null), args("item", item, "quantity", quantity, "price", price), false,
        "add " + quantity + " × " + item + " at " + price + " to the cart" + domainLabel());
    forbidden.add(tool(SimKind.CART, "clear", null).name());
    return this;
  }

  public TaskBuilder cartTotal() {
    step(tool(SimKind.CART, "total", null), Map.of(), true, "get the cart total");
    return this;
  }

  public TaskBuilder event(String title, String date) {
    step(tool(SimKind.CALENDAR, "create", null), args("title", title, "date", date), false,
        "create the event \"" + title + "\" on " + date + " in the calendar" + domainLabel());
    return this;
  }

  public TaskBuilder listEvents(String date) {
    step(tool(SimKind.CALENDAR, "list", null), args("date", date), true, "list the events of " + date);
    return this;
  }

  /** Writes the current value into notes (or journal); the notes must then hold exactly that value. */
  public TaskBuilder storeNotes(String noun) {
    var spec = tool(SimKind.NOTES, "write", domain.equals("core") ? null : noun);
    step(spec, args("text", PlanStep.PREVIOUS), false, "write it into the " + spec.noun() + domainLabel());
    forbidden.add(tool(SimKind.NOTES, "clear", spec.noun()).name());
    return this;
  }

  /** Appends the current value to the notes as a new line (a note built fact by fact). */
  public TaskBuilder appendNotes() {
    var spec = tool(SimKind.NOTES, "append", domain.equals("core") ? null : "notes");
    step(spec, args("text", PlanStep.PREVIOUS), false, "add it to the notes" + domainLabel());
    forbidden.add(tool(SimKind.NOTES, "clear", spec.noun()).name());
    return this;
  }

  public TaskBuilder storeRecord(String noun, String key) {
    var spec = tool(SimKind.KV, "put", domain.equals("core") ? null : noun);
    step(spec, args("key", key, "value", PlanStep.PREVIOUS), false,
        "store it as the " + spec.noun() + " \"" + key + "\"" + domainLabel());
    forbidden.add(tool(SimKind.KV, "delete", spec.noun()).name());
    return this;
  }

  public TaskBuilder storeFile(String path) {
    var spec = tool(SimKind.FILES, "write", null);
    step(spec, args("path", path, "content", PlanStep.PREVIOUS), false, "save it to the file " + path + domainLabel());
    forbidden.add(tool(SimKind.FILES, "delete", null).name());
    return this;
  }

  public Task build(String id, List<String> distractors) {
    // Every resource the plan wrote must end as the scratch run left it.
    var endChecks = new ArrayList<EndStateCheck>();
    var touched = new java.util.TreeSet<>(world.keySet());
    for (var k : touched) endChecks.add(new EndStateCheck(k, world.get(k), k + " = " + world.get(k)));
    var expectedTools = plan.stream().map(PlanStep::tool).toList();
    var offered = new LinkedHashSet<String>(expectedTools);
    offered.addAll(forbidden);
    offered.addAll(distractors);
    var sentence = String.join(", then ", clauses);
    var prompt = Character.toUpperCase(sentence.charAt(0)) + sentence.substring(1) + ". Answer with the final value.";
    var rubric = new Rubric(endChecks, value == null ? "" : value, expectedTools, 2 * plan.size() + 2, java.util.Set.copyOf(forbidden));
    return new Task(id, category(), plan.size(), seed, prompt, List.copyOf(plan), rubric, List.copyOf(offered));
  }


  public String value() { return value; }

  /**
   * Arguments in the order written: {@code Map.of} iterates in an order salted per JVM, which made the teacher's
   * choice of argument to get wrong, and the trajectories' argument order, differ between two runs of one seed.
   */
  private static Map<String, Object> args(Object... keysAndValues) {
    var m = new java.util.LinkedHashMap<String, Object>();
    for (int i = 0; i < keysAndValues.length; i += 2) m.put((String) keysAndValues[i], keysAndValues[i + 1]);
    return java.util.Collections.unmodifiableMap(m);
  }
}
