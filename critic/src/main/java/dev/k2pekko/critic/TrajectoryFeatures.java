package dev.k2pekko.critic;

import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.protocol.Trajectory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * What the critic reads of a (task, trajectory) pair: the trajectory rendered as a sequence of abstract tokens, then
 * hashed into feature ids (the tokens, their bigrams and trigrams, and a few pairings).
 *
 * <p>The rendering keeps what decides a verdict and drops what only names a particular instance. The task prompt is
 * split into the harness's checklist ({@link PolicyFormat#checklist}); each item becomes its <em>shape</em> (its
 * words with numbers, quoted names, dates and paths replaced by placeholders: {@code subtract <n> from it}). Each call
 * is rendered as its tool, the shape of the checklist item the agent was on (item k+1 after k successful calls, as the
 * harness shows it), and for each argument where its value came from: the current item's literals ({@code I}),
 * another item's ({@code O}), the last successful result ({@code R}), an older result ({@code P}), empty, or
 * nowhere ({@code NEW}: a value the agent made up or mis-copied). Then the call's outcome (ok, partial, error kind),
 * whether a failed call was retried, and the final answer's provenance and how many checklist items were left
 * when it came. Values themselves never become features, so what is learned on one task carries to another.
 *
 * <p>The model learns what these mean for the judge; nothing here scores anything.
 */
public final class TrajectoryFeatures {
  private TrajectoryFeatures() {}

  private static final Pattern QUOTED = Pattern.compile("\"([^\"]*)\"");
  private static final Pattern DATE = Pattern.compile("\\d{4}-\\d{2}-\\d{2}");
  private static final Pattern PATH = Pattern.compile("[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+");
  private static final Pattern NUMBER = Pattern.compile("-?\\d+(\\.\\d+)?");

  /** The abstract rendering of a trajectory, in order (what the n-grams are taken over). */
  public static List<String> tokens(Trajectory t) {
    return render(t).sequence();
  }

  /**
   * The feature ids of a trajectory in {@code [0, buckets)}: sorted, each once (a multi-hot vector). Ids are a
   * 64-bit FNV-1a hash of the feature's text modulo {@code buckets}, so they do not depend on the JVM.
   */
  public static int[] of(Trajectory t, int buckets) {
    if (buckets < 2) throw new IllegalArgumentException("buckets must be at least 2, got " + buckets);
    var r = render(t);
    var seq = r.sequence();
    var ids = new HashSet<Integer>();
    for (int i = 0; i < seq.size(); i++) {
      ids.add(bucket("1|" + seq.get(i), buckets));
      if (i + 1 < seq.size()) ids.add(bucket("2|" + seq.get(i) + "|" + seq.get(i + 1), buckets));
      if (i + 2 < seq.size()) ids.add(bucket("3|" + seq.get(i) + "|" + seq.get(i + 1) + "|" + seq.get(i + 2), buckets));
    }
    for (var p : r.pairings()) ids.add(bucket("x|" + p, buckets));
    int[] out = new int[ids.size()];
    int k = 0;
    for (int id : ids) out[k++] = id;
    Arrays.sort(out);
    return out;
  }

  private record Rendering(List<String> sequence, List<String> pairings) {}

  private static Rendering render(Trajectory t) {
    var items = PolicyFormat.checklist(t.prompt() == null ? "" : t.prompt());
    int todo = items.size() - 1; // the closing instruction is not a call
    var shapes = new ArrayList<String>(items.size());
    var literals = new ArrayList<Set<String>>(items.size());
    for (var item : items) {
      shapes.add(shape(item));
      literals.add(literals(item));
    }
    var seq = new ArrayList<String>();
    var pairs = new ArrayList<String>();
    seq.add("<bos>");
    seq.add("items:" + Math.min(todo, 8));
    pairs.add("difficulty:" + t.difficulty());
    var results = new ArrayList<String>();
    Step previous = null;
    int successes = 0;
    List<Step> steps = t.steps() == null ? List.of() : t.steps();
    for (var s : steps) {
      int at = Math.min(successes, items.size() - 1);
      String shape = shapes.get(at), tool = "tool:" + s.tool();
      if (previous != null && !PolicyFormat.succeeded(previous)) {
        seq.add(previous.tool().equals(s.tool()) ? "retry" : "abandon");
      }
      seq.add(tool);
      pairs.add(shape + "|" + tool);
      var args = new TreeMap<String, Object>(s.arguments() == null ? java.util.Map.of() : s.arguments());
      for (var a : args.entrySet()) {
        String prov = provenance(String.valueOf(a.getValue()), at, literals, results);
        seq.add(a.getKey() + "=" + prov);
        pairs.add(s.tool() + "." + a.getKey() + "=" + prov);
        pairs.add(shape + "|" + a.getKey() + "=" + prov);
      }
      if (previous != null && PolicyFormat.succeeded(previous) && previous.tool().equals(s.tool())
          && String.valueOf(previous.arguments()).equals(String.valueOf(s.arguments()))) {
        seq.add("repeat");
      }
      if (s.error() != null) seq.add("error:" + s.error());
      else if (s.partial()) seq.add("partial");
      else {
        seq.add("ok");
        results.add(s.result() == null ? "" : s.result());
        successes++;
      }
      previous = s;
    }
    if (previous != null && !PolicyFormat.succeeded(previous)) seq.add("ends-after-failure");
    int left = todo - successes;
    seq.add("left:" + Math.max(-3, Math.min(3, left)));
    pairs.add("calls:" + Math.min(steps.size(), 16) + "|items:" + todo);
    // whether every item was done, whatever the count: a task family with longer checklists than the data has shown
    // (three items left) reads as the two or one left that the teacher's skips and early answers taught
    String done = left == 0 ? "done:all" : left > 0 ? "done:unfinished" : "done:over";
    seq.add(done);
    if (t.finalAnswer() == null) {
      seq.add("answer:none");
    } else {
      seq.add("answer:" + answerProvenance(t.finalAnswer(), results));
      pairs.add("answer:" + answerProvenance(t.finalAnswer(), results) + "|left:" + Math.max(-3, Math.min(3, left)));
    }
    seq.add("<eos>");
    return new Rendering(seq, pairs);
  }

  /** An item's words with literal values replaced by what kind of value they are. */
  static String shape(String item) {
    String s = QUOTED.matcher(item).replaceAll("<q>");
    s = DATE.matcher(s).replaceAll("<date>");
    s = PATH.matcher(s).replaceAll("<path>");
    s = NUMBER.matcher(s).replaceAll("<n>");
    return s.toLowerCase(java.util.Locale.ROOT).strip();
  }

  /** The values an item names: quoted names, dates, paths, numbers, and each word (a cart item is a bare word). */
  static Set<String> literals(String item) {
    var out = new HashSet<String>();
    var q = QUOTED.matcher(item);
    while (q.find()) out.add(q.group(1));
    for (var p : new Pattern[] {DATE, PATH, NUMBER}) {
      var m = p.matcher(item);
      while (m.find()) out.add(m.group());
    }
    for (var w : item.split("[\\s,\"]+")) if (!w.isEmpty()) out.add(w);
    return out;
  }

  /** Where an argument's value came from, as the flags I, O, R, P (several when it matches several), or EMPTY/NEW. */
  static String provenance(String value, int item, List<Set<String>> literals, List<String> results) {
    if (value.isEmpty()) return "EMPTY";
    var b = new StringBuilder();
    if (contains(literals.get(item), value)) b.append('I');
    for (int i = 0; i < literals.size(); i++) {
      if (i != item && contains(literals.get(i), value)) {
        b.append('O');
        break;
      }
    }
    if (!results.isEmpty() && same(results.getLast(), value)) b.append('R');
    for (int i = 0; i + 1 < results.size(); i++) {
      if (same(results.get(i), value)) {
        b.append('P');
        break;
      }
    }
    return b.isEmpty() ? "NEW" : b.toString();
  }

  private static String answerProvenance(String answer, List<String> results) {
    if (answer.isBlank()) return "EMPTY";
    if (!results.isEmpty() && same(results.getLast(), answer)) return "R";
    for (int i = results.size() - 1; i >= 0; i--) if (same(results.get(i), answer)) return "P";
    return "NEW";
  }

  private static boolean contains(Set<String> set, String value) {
    if (set.contains(value)) return true;
    for (var x : set) if (same(x, value)) return true;
    return false;
  }

  /** Numbers compare by value ("12" equals "12.0"), anything else as trimmed text: as the judge compares answers. */
  static boolean same(String a, String b) {
    var x = a.trim();
    var y = b.trim();
    if (x.equals(y)) return true;
    // parsed only when both are plain decimals: a date or "standup 1" would throw, and exceptions cost microseconds
    return decimal(x) && decimal(y) && Double.parseDouble(x) == Double.parseDouble(y);
  }

  /** Whether {@code s} is an optional '-', digits, and optionally '.' and digits. */
  static boolean decimal(String s) {
    int i = s.startsWith("-") ? 1 : 0, digits = 0;
    boolean dot = false;
    for (; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c >= '0' && c <= '9') digits++;
      else if (c == '.' && !dot && digits > 0) dot = true;
      else return false;
    }
    return digits > 0 && !s.endsWith(".");
  }

  private static int bucket(String feature, int buckets) {
    long h = 0xcbf29ce484222325L;
    for (int i = 0; i < feature.length(); i++) {
      h ^= feature.charAt(i);
      h *= 0x100000001b3L;
    }
    return (int) Math.floorMod(h ^ (h >>> 29), (long) buckets);
  }
}
