package dev.k2pekko.agents.policy;

import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.model.Sequence;
import dev.k2pekko.model.Tokenizer;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.tools.ParamSpec;
import dev.k2pekko.tools.ToolSpec;
import dev.k2pekko.tools.ToolUniverse;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The text a learned policy reads and writes, and its tokens. Before each action the policy reads a view of the
 * episode ({@link #view}) and writes one action:
 * <pre>
 *   &lt;bos&gt;#1 Calculate 7 + 5, then #2 write it into the notes. Answer with the final value.&lt;sep&gt;
 *   &lt;result&gt;#1 12&lt;sep&gt;                       (the last success; failed attempts since follow it)
 *   &lt;call&gt;notes.write text=#1&lt;eos&gt;             (the action: #1 refers to the first successful result)
 * </pre>
 * The policy writes the actions ({@code <call>...<eos>}, {@code <answer>...<eos>}); everything else comes from the
 * environment and is context only. Arguments are {@code name=value} in the tool's parameter order, joined by
 * {@code |}; a value is parsed back by its parameter's JSON type. A failed call reads back as
 * {@code error TRANSIENT_FAILURE} and a partial result as {@code partial}, so the policy learns to retry both.
 *
 * <p>The vocabulary is the standard specials and ASCII characters plus one token per core tool, per argument name
 * per recurring phrase of the task language, and per whole number below 1000, so a five-step task fits in about
 * 100 tokens.
 *
 * <p>With a {@link TaskVocabulary} (k2.policy.tasks = kg) the policy also calls that family's MCP tools: their calls
 * carry nested JSON arguments written compactly ({@link NestedArgs}: {@code entities=[{name=Ada|entityType=person}]}),
 * their JSON results show in the view in the same form, and their tools and words are tokens after the core ones.
 */
public final class PolicyFormat {
  /** Phrases of the task language ({@link dev.k2pekko.agents.tasks.TaskBuilder}), one token each. */
  private static final List<String> PHRASES = List.of(
      "Calculate ", "calculate ", ", then ", "add ", " to it", "subtract ", " from it", "multiply it by ",
      "take the larger of ", "take the smaller of ", "it and ", " and ", " × ", " + ", " - ", "look up ", " in the ",
      "write it into the ", "store it as the ", "save it to the file ", "reports/r", ".txt", "create the event ",
      " on ", " in the calendar", "list the events of ", "Get the cart total", "get the cart total", "Add ",
      " to the cart", " at ", ". Answer with the final value.", "2026-", "Look up ", "Create the event ", "List the events of ",
      "Take the larger of ", "Take the smaller of ", "web", "notes", "journal", "record", "setting", "catalog", "faq",
      "price of gold", "orders today", "open tickets", "stock level", "rating", "distance to depot", "team size",
      "build number", "room count", "page views", "apples", "pens", "cables", "tickets", "books", "mugs", "batteries",
      "tea", "standup", "review", "dentist", "flight", "lecture", "match", "payday", "demo",
      "error ", "partial", "ok", "no events", "not found", "deleted", "UNKNOWN_TOOL", "INVALID_ARGUMENTS",
      "PAYLOAD_TOO_LARGE", "TRANSIENT_FAILURE", "TIMEOUT", "INTERNAL");

  /**
   * More tools for the policy to call, beyond the core ones: the MCP task tools (k2.policy.tasks), whose calls and
   * results are written in the nested form ({@link NestedArgs}), and the words of their tasks (tool names, argument
   * keys, the tasks' phrases and name pools), one token each.
   */
  public record TaskVocabulary(List<String> tools, List<String> words) {
    public TaskVocabulary {
      tools = List.copyOf(tools);
      words = List.copyOf(words);
    }
  }

  private final ToolUniverse universe;
  private final Tokenizer tokenizer;
  private final int call, result, answer, sep, eos, bos;
  /** The tools whose calls and results are written nested ({@link NestedArgs}); empty for the core tools alone. */
  private final java.util.Set<String> nested;

  /** The core tools' format: the default run's vocabulary. */
  public PolicyFormat(ToolUniverse universe) {
    this(universe, null);
  }

  /**
   * The core tools' format plus {@code extra} (null: none). The extra words come after every core word, so a core
   * token keeps its id; the default run ({@code k2.policy.tasks = core}) never builds one, so its vocabulary and
   * tokens are exactly the core format's.
   */
  public PolicyFormat(ToolUniverse universe, TaskVocabulary extra) {
    this.universe = universe;
    this.nested = extra == null ? java.util.Set.of() : java.util.Set.copyOf(extra.tools());
    var words = new ArrayList<String>();
    var argNames = new java.util.LinkedHashSet<String>();
    for (var t : universe.all()) {
      if (t.domain().indexOf('.') >= 0) continue; // generated domains: not in the policy's task family
      words.add(t.name() + " ");
      for (var p : t.params()) argNames.add(p.name() + "=");
    }
    words.addAll(argNames);
    words.addAll(PHRASES);
    for (int i = 1; i <= 12; i++) {
      words.add("#" + i + " ");
      words.add("#" + i);
    }
    // Whole numbers up to 999 are one token each (longer ones split greedily, "1234" = "123" "4"): the policy
    // copies a number from the prompt or a result as one token instead of digit by digit.
    for (int i = 10; i < 1000; i++) words.add(Integer.toString(i));
    if (extra != null) {
      for (String t : extra.tools()) words.add(t + " ");
      words.addAll(extra.words());
    }
    this.tokenizer = Tokenizer.withWords(words);
    call = tokenizer.id(Tokenizer.CALL);
    result = tokenizer.id(Tokenizer.RESULT);
    answer = tokenizer.id(Tokenizer.ANSWER);
    sep = tokenizer.id(Tokenizer.SEP);
    eos = tokenizer.id(Tokenizer.EOS);
    bos = tokenizer.id(Tokenizer.BOS);
  }

  public Tokenizer tokenizer() { return tokenizer; }

  public int eos() { return eos; }

  public int callToken() { return call; }

  /** The first tokens of an action: {@code <call>} and/or {@code <answer>}. */
  int[] actionStarts(boolean mayCall, boolean mayAnswer) {
    if (mayCall && mayAnswer) return new int[] {call, answer};
    return new int[] {mayCall ? call : answer};
  }

  /** The tokens that name {@code tools} after {@code <call>} (one token per core tool; other tools have none). */
  int[] toolTokens(java.util.Set<String> tools) {
    return tools.stream().filter(this::knows).mapToInt(t -> tokenizer.id(t + " ")).toArray();
  }

  /** Whether the policy can write a call of this tool: a core tool has one token in the vocabulary. */
  public boolean knows(String tool) {
    try {
      tokenizer.id(tool + " ");
      return true;
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  /**
   * {@code <bos> prompt <sep>}: the episode's first tokens. The prompt's clauses (joined by ", then ") are numbered
   * {@code #1}, {@code #2}, ... in the policy's view, and each successful result carries the count of successful
   * calls so far ({@code #k}): a representation of the same text that lets a small model keep its place in the
   * task. The harness adds no knowledge of the plan: it counts successful calls, it does not judge them.
   */
  public int[] prompt(String taskPrompt) {
    return concat(new int[] {bos}, tokenizer.encode(numbered(taskPrompt)), new int[] {sep});
  }

  static String numbered(String prompt) {
    var parts = prompt.split(", then ", -1);
    var sb = new StringBuilder();
    for (int i = 0; i < parts.length; i++) {
      if (i > 0) sb.append(", then ");
      sb.append('#').append(i + 1).append(' ').append(parts[i]);
    }
    return sb.toString();
  }

  /** The action tokens of a call, {@code <call>tool a=1|b=2<eos>}, with literal values. */
  public int[] call(String tool, Map<String, Object> args) {
    return call(tool, args, List.of());
  }

  /**
   * The action tokens of a call, where a value equal to the k-th successful result so far is written as the
   * reference {@code #k} (the latest such result): {@code <call>notes.write text=#2<eos>}. The harness resolves
   * references before the tool sees the call ({@link #parse(int[], List)}), so a value flows from one call into the
   * next as one short token instead of being copied digit group by digit group.
   */
  public int[] call(String tool, Map<String, Object> args, List<String> results) {
    if (nested.contains(tool)) {
      return concat(new int[] {call}, tokenizer.encode(tool + " " + NestedArgs.renderArguments(args)), new int[] {eos});
    }
    var sb = new StringBuilder(tool).append(' ');
    boolean first = true;
    for (String name : argOrder(tool, args)) {
      if (!first) sb.append('|');
      first = false;
      sb.append(name).append('=').append(reference(valueText(args.get(name)), results));
    }
    return concat(new int[] {call}, tokenizer.encode(sb.toString()), new int[] {eos});
  }

  /** The action tokens of an answer, {@code <answer>text<eos>}. */
  public int[] answer(String text) {
    return answer(text, List.of());
  }

  /** The action tokens of an answer; a text equal to a successful result is written as its reference {@code #k}. */
  public int[] answer(String text, List<String> results) {
    return concat(new int[] {answer}, tokenizer.encode(reference(text == null ? "" : text, results)), new int[] {eos});
  }

  private static String reference(String text, List<String> results) {
    for (int k = results.size(); k >= 1; k--) if (!text.isEmpty() && text.equals(results.get(k - 1))) return "#" + k;
    return text;
  }

  /** The results of the successful steps among {@code steps}, in order: what {@code #1, #2, ...} refer to. */
  public static List<String> results(List<Step> steps) {
    var out = new ArrayList<String>();
    for (var s : steps) if (succeeded(s)) out.add(s.result() == null ? "" : s.result());
    return out;
  }

  /** Whether a step counts as a successful call (numbered in the results). */
  public static boolean succeeded(Step step) {
    return step.error() == null && !step.partial();
  }

  /**
   * What the environment appends after a call: {@code <result>#k text<sep>} for the k-th successful call,
   * {@code <result>error KIND<sep>} or {@code <result>partial<sep>} otherwise.
   */
  public int[] result(Step step, int successes) {
    String text = step.error() != null ? "error " + step.error() : step.partial() ? "partial"
        : "#" + successes + " " + (nested.contains(step.tool()) ? compact(step.result()) : step.result());
    return concat(new int[] {result}, tokenizer.encode(text), new int[] {sep});
  }

  private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();

  /**
   * A JSON result in the nested form ({@code [{name=Ada|entityType=person|observations=[likes tea]}]}): the MCP
   * servers answer pretty-printed JSON, a hundred tokens and more spelled out, two of which would not fit the policy's
   * context with the task; the same content, compact. Text that is not a JSON object or array stays as it is.
   */
  static String compact(String text) {
    if (text == null) return "";
    String t = text.strip();
    if (t.isEmpty() || (t.charAt(0) != '[' && t.charAt(0) != '{')) return text;
    try {
      return NestedArgs.render(JSON.readValue(t, Object.class));
    } catch (java.io.IOException e) {
      return text;
    }
  }

  /** How many failed attempts since the last success a view shows (older ones are dropped). */
  public static final int FAILURES_SHOWN = 2;

  /** The closing instruction of every task prompt ({@link dev.k2pekko.agents.tasks.TaskBuilder}). */
  public static final String CLOSING = "Answer with the final value.";

  /**
   * The task's steps as the harness's checklist: the prompt split at ", then ", and the closing instruction as the
   * last item. A prompt without the closing instruction is one item per clause and nothing else.
   */
  public static List<String> checklist(String prompt) {
    var items = new ArrayList<String>(List.of(prompt.split(", then ", -1)));
    String last = items.getLast();
    if (last.endsWith(CLOSING)) {
      String head = last.substring(0, last.length() - CLOSING.length()).strip();
      if (head.endsWith(".")) head = head.substring(0, head.length() - 1);
      items.set(items.size() - 1, head);
      items.add(CLOSING);
    }
    return items;
  }

  /**
   * How many of the checklist's items (the closing instruction aside) {@code steps} leave undone, as the harness counts
   * its progress: the items less the successful calls (negative: more successful calls than items). Public: it reads
   * the prompt and whether each call succeeded, never a checker.
   */
  public static int itemsLeft(String prompt, List<Step> steps) {
    int left = checklist(prompt == null ? "" : prompt).size() - 1;
    if (steps != null) for (var s : steps) if (succeeded(s)) left--;
    return left;
  }

  /**
   * What the policy sees before its next action, as the agent harness keeps it: the checklist item it is on
   * (item k+1 after k successful calls; the closing instruction once every step is done), the last two successful
   * results with their counts (a store's "ok" follows the value it stored), and the failed attempts since (each
   * call with its error), at most {@link #FAILURES_SHOWN}:
   * <pre>
   *   &lt;bos&gt;#3 subtract 81 from it&lt;sep&gt;&lt;result&gt;#1 38&lt;sep&gt;&lt;result&gt;#2 -43&lt;sep&gt;
   * </pre>
   * The harness only counts successful calls; turning the item into a call (which tool, which arguments, where the
   * value flows), retrying what failed and knowing when to answer is the policy's job. A short view with a fixed
   * layout is what a small model learns quickly (docs/DESIGN.md, "The policy's view").
   */
  public int[] view(String taskPrompt, List<Step> stepsSoFar) {
    var parts = new ArrayList<int[]>();
    var items = checklist(taskPrompt);
    int lastOk = -1, previousOk = -1, successes = 0;
    for (int i = 0; i < stepsSoFar.size(); i++) {
      if (succeeded(stepsSoFar.get(i))) {
        previousOk = lastOk;
        lastOk = i;
        successes++;
      }
    }
    int item = Math.min(successes, items.size() - 1);
    parts.add(new int[] {bos});
    parts.add(tokenizer.encode("#" + (item + 1) + " " + items.get(item)));
    parts.add(new int[] {sep});
    if (previousOk >= 0) parts.add(result(stepsSoFar.get(previousOk), successes - 1));
    if (lastOk >= 0) parts.add(result(stepsSoFar.get(lastOk), successes));
    int firstFailure = Math.max(lastOk + 1, stepsSoFar.size() - FAILURES_SHOWN);
    for (int i = firstFailure; i < stepsSoFar.size(); i++) {
      var f = stepsSoFar.get(i);
      parts.add(call(f.tool(), f.arguments(), results(stepsSoFar.subList(0, i))));
      parts.add(result(f, successes));
    }
    return concat(parts.toArray(new int[0][]));
  }

  /**
   * The training examples of an episode: one sequence per action, its view followed by the action (marked). The
   * sum of log pi over an episode's examples is log pi of the episode. For a sampled episode the actions are the
   * tokens the policy wrote ({@code Sampling.actions}), so log pi here is of what was sampled; otherwise (the
   * teacher) the canonical rendering of each call.
   */
  public List<Sequence> examples(Trajectory t) {
    var out = new ArrayList<Sequence>();
    var steps = t.steps();
    int actions = steps.size() + (t.finalAnswer() != null ? 1 : 0);
    var sampled = t.sampling() != null && t.sampling().actions() != null && t.sampling().actions().size() == actions
        ? t.sampling().actions() : null;
    for (int i = 0; i < actions; i++) {
      int[] view = view(t.prompt(), steps.subList(0, Math.min(i, steps.size())));
      var before = results(steps.subList(0, Math.min(i, steps.size())));
      int[] action = sampled != null ? sampled.get(i)
          : i < steps.size() ? call(steps.get(i).tool(), steps.get(i).arguments(), before) : answer(t.finalAnswer(), before);
      if (action.length == 0) continue; // nothing written (the view no longer fit): no token, no log-probability
      out.add(Sequence.of(view, action));
    }
    return out;
  }

  /**
   * Reads the tokens a policy generated (from {@code <call>} or {@code <answer>} up to {@code <eos>}) back into an
   * action. Anything that does not parse is a call of the text as a tool with no arguments, which the tool worker
   * answers with UNKNOWN_TOOL or INVALID_ARGUMENTS: the episode continues and the judge sees the mistake.
   */
  public Action parse(int[] generated) {
    return parse(generated, List.of());
  }

  /**
   * As {@link #parse(int[])}, resolving references: a value (or an answer) written {@code #k} is the k-th successful
   * result of {@code results}; a reference to a result that does not exist stays as written, for the tool's schema
   * check or the judge to refuse.
   */
  public Action parse(int[] generated, List<String> results) {
    int end = generated.length;
    if (end > 0 && generated[end - 1] == eos) end--;
    if (end == 0) return new Action.Call("", Map.of());
    String body = tokenizer.decode(Arrays.copyOfRange(generated, 1, end));
    if (generated[0] == answer) return new Action.Answer(resolve(body, results));
    if (generated[0] != call) return new Action.Call(tokenizer.decode(Arrays.copyOf(generated, end)), Map.of());
    int space = body.indexOf(' ');
    String tool = space < 0 ? body : body.substring(0, space);
    if (nested.contains(tool)) {
      try {
        return new Action.Call(tool, space < 0 ? Map.of() : NestedArgs.parseArguments(body.substring(space + 1)));
      } catch (NestedArgs.Malformed e) {
        // written but not of the form: the call goes out without arguments and the server's refusal (its schema
        // names what is missing) is the step's error, which the policy sees and the judge counts
        return new Action.Call(tool, Map.of());
      }
    }
    var args = new LinkedHashMap<String, Object>();
    ToolSpec spec = universe.get(tool);
    if (space >= 0 && space + 1 < body.length()) {
      for (String part : body.substring(space + 1).split("\\|", -1)) {
        int eq = part.indexOf('=');
        if (eq <= 0) {
          args.put(part, "");
          continue;
        }
        String name = part.substring(0, eq), text = resolve(part.substring(eq + 1), results);
        ParamSpec p = spec == null ? null : spec.param(name);
        args.put(name, p == null ? text : typed(p, text));
      }
    }
    return new Action.Call(tool, args);
  }

  private static String resolve(String text, List<String> results) {
    if (text.length() >= 2 && text.charAt(0) == '#' && text.substring(1).chars().allMatch(Character::isDigit) && text.length() <= 4) {
      int k = Integer.parseInt(text.substring(1));
      if (k >= 1 && k <= results.size()) return results.get(k - 1);
    }
    return text;
  }

  /** The tool's parameter order, then any other names sorted: one canonical text per call. */
  private List<String> argOrder(String tool, Map<String, Object> args) {
    var out = new ArrayList<String>(args.size());
    var spec = universe.get(tool);
    if (spec != null) for (var p : spec.params()) if (args.containsKey(p.name())) out.add(p.name());
    args.keySet().stream().filter(k -> !out.contains(k)).sorted().forEach(out::add);
    return out;
  }

  private static Object typed(ParamSpec p, String text) {
    try {
      return switch (p.type()) {
        case INTEGER -> Long.parseLong(text);
        case NUMBER -> dev.k2pekko.agents.tasks.TaskBuilder.asNumber(text);
        default -> text;
      };
    } catch (NumberFormatException e) {
      return text; // the schema check names the mistake
    }
  }

  private static String valueText(Object v) {
    if (v instanceof Double d) return dev.k2pekko.tools.Simulator.format(d);
    return String.valueOf(v);
  }

  /** True when the task is in the learned policy's family: core tools only (the verifiable tasks and the open ones). */
  public static boolean inFamily(Task task) {
    return "core".equals(task.category()) || dev.k2pekko.agents.tasks.TaskBuilder.OPEN.equals(task.category());
  }

  static int[] concat(int[]... parts) {
    int n = 0;
    for (int[] p : parts) n += p.length;
    int[] out = new int[n];
    int o = 0;
    for (int[] p : parts) {
      System.arraycopy(p, 0, out, o, p.length);
      o += p.length;
    }
    return out;
  }
}
