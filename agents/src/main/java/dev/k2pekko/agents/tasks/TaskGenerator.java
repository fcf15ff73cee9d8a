package dev.k2pekko.agents.tasks;

import dev.k2pekko.tools.ToolSpec;
import dev.k2pekko.tools.ToolUniverse;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Generates tasks from the tool universe, deterministic from a seed. A task picks an application domain (or the
 * core tools, one in five), a difficulty from 1 to {@code maxSteps} tool steps in equal shares, and a pattern:
 * <ul>
 *   <li>compute: a chain of calculations whose result is stored (notes, journal, a record or a file);</li>
 *   <li>research: a lookup, calculations on the fact found, then the store;</li>
 *   <li>shopping: items added to a cart, the total taken and stored;</li>
 *   <li>schedule: events created on a day, the day listed and stored.</li>
 * </ul>
 * A one-step task is a single calculation or lookup whose value is the answer.
 */
public final class TaskGenerator {
  private static final String[] OPS = {"add", "sub", "mul", "max", "min"};
  private static final String[] ITEMS = {"apples", "pens", "cables", "tickets", "books", "mugs", "batteries", "tea"};
  private static final String[] TOPICS = {"price of gold", "orders today", "open tickets", "stock level", "rating",
      "distance to depot", "team size", "build number", "room count", "page views"};
  private static final String[] TITLES = {"standup", "review", "dentist", "flight", "lecture", "match", "payday", "demo"};

  private final ToolUniverse universe;
  private final int maxSteps;
  private final List<String> domains;
  private final List<ToolSpec> corePool;

  public TaskGenerator(ToolUniverse universe, int maxSteps) {
    if (maxSteps < 1) throw new IllegalArgumentException("max steps must be at least 1");
    this.universe = universe;
    this.maxSteps = maxSteps;
    this.domains = universe.byDomain().keySet().stream().filter(d -> d.indexOf('.') > 0).toList();
    this.corePool = universe.all().stream().filter(t -> t.domain().indexOf('.') < 0).toList();
  }

  /**
   * The task of one episode: fixed by the run seed, the agent and the episode number. Tasks come from a bank of
   * {@code bankSize} tasks per run seed (as the pipeline runs many rollouts of each synthesized task), built once
   * and shared by the node's agents; 0 generates a fresh task for every episode.
   */
  public Task task(long runSeed, String agentId, int episode) {
    long seed = mix(runSeed * 0x9E3779B97F4A7C15L + agentId.hashCode() * 31L + episode);
    if (bankSize == 0) return task(seed, "t-" + Long.toHexString(seed));
    var bank = this.bank;
    if (bank == null || bank.seed != runSeed) this.bank = bank = new Bank(runSeed, new Task[bankSize]);
    int i = (int) Math.floorMod(seed, (long) bankSize);
    var t = bank.tasks[i];
    if (t == null) {
      long taskSeed = mix(runSeed ^ (0xD1B54A32D192ED03L * (i + 1)));
      bank.tasks[i] = t = task(taskSeed, "t-" + Long.toHexString(taskSeed));
    }
    return t;
  }

  /** Racy by design: two threads may build the same task, and both results are equal. */
  private record Bank(long seed, Task[] tasks) {}

  private volatile Bank bank;
  private int bankSize;

  /** Sets how many distinct tasks a run draws from (see {@link #task(long, String, int)}). */
  public TaskGenerator withBank(int size) {
    if (size < 0) throw new IllegalArgumentException("task bank size must be >= 0");
    this.bankSize = size;
    return this;
  }

  /** Which task instances a generator hands out: see {@link #heldOut(Task)}. */
  public enum Split {
    ALL, TRAIN, HELD_OUT;

    /** Whether {@code task} belongs to this split. */
    public boolean admits(Task task) { return this == ALL || heldOut(task) == (this == HELD_OUT); }
  }

  /**
   * The first task of {@code split} that {@code draw} makes from the seed stream {@code seed, mix(seed + 1), mix(seed +
   * 2), ...}: a task outside the split is replaced by the next draw, so a seed gives the same task in every run.
   * {@code family} names the tasks in the error when no draw of 1,000 falls in the split.
   */
  public static Task firstOf(Split split, long seed, String family, java.util.function.LongFunction<Task> draw) {
    for (int attempt = 0; attempt <= 1000; attempt++) {
      var t = draw.apply(attempt == 0 ? seed : mix(seed + attempt));
      if (split.admits(t)) return t;
    }
    throw new IllegalStateException("no " + family + " of split " + split + " in 1000 draws");
  }

  private Split split = Split.ALL;
  private boolean coreOnly;

  /** Only tasks of this split (a task outside it is replaced by the next draw from the same seed stream). */
  public TaskGenerator withSplit(Split split) {
    this.split = split;
    return this;
  }

  /** Only tasks on the core tools (calc, notes, files, kv, cart, calendar, web): the learned policy's family. */
  public TaskGenerator coreOnly(boolean on) {
    this.coreOnly = on;
    return this;
  }

  /**
   * The held-out split: one task instance in eight, chosen by a hash of its prompt, so the split is a property of
   * the instance (the same prompt is held out in every run, whatever seed drew it) and no held-out instance is ever
   * a training instance.
   */
  public static boolean heldOut(Task task) {
    return Math.floorMod(mix(task.prompt().hashCode() * 0x9E3779B97F4A7C15L), 8L) == 0;
  }

  public Task task(long seed, String id) {
    return firstOf(split, seed, "task", s -> draw(s, id));
  }

  /** A task of exactly {@code difficulty} steps (for evaluation sets with equal shares per difficulty). */
  public Task taskOfDifficulty(long seed, String id, int difficulty) {
    return firstOf(split, seed, "task", s -> draw(s, id, difficulty));
  }

  private Task draw(long seed, String id) {
    return draw(seed, id, 0);
  }

  private Task draw(long seed, String id, int fixedDifficulty) {
    var rnd = new SplittableRandom(seed);
    int drawn = 1 + rnd.nextInt(maxSteps);
    int difficulty = fixedDifficulty > 0 ? fixedDifficulty : drawn;
    String domain = rnd.nextInt(5) == 0 ? "core" : domains.get(rnd.nextInt(domains.size()));
    if (coreOnly) domain = "core";
    var b = new TaskBuilder(universe, domain, seed);
    if (difficulty == 1) {
      if (rnd.nextBoolean()) b.calc(pick(rnd, OPS), num(rnd), num(rnd));
      else b.lookup(rnd.nextBoolean() ? "catalog" : "faq", pick(rnd, TOPICS));
    } else {
      int pattern = rnd.nextInt(difficulty >= 3 ? 4 : 2);
      switch (pattern) {
        case 0 -> { // compute
          b.calc(pick(rnd, OPS), num(rnd), num(rnd));
          for (int i = 2; i < difficulty; i++) b.calcNext(pick(rnd, OPS), num(rnd));
        }
        case 1 -> { // research
          b.lookup(rnd.nextBoolean() ? "catalog" : "faq", pick(rnd, TOPICS));
          for (int i = 2; i < difficulty; i++) b.calcNext(pick(rnd, OPS), num(rnd));
        }
        case 2 -> { // shopping
          for (int i = 2; i < difficulty; i++) b.cartAdd(pick(rnd, ITEMS), 1 + rnd.nextInt(5), 1 + rnd.nextInt(40));
          b.cartTotal();
        }
        default -> { // schedule
          var date = "2026-%02d-%02d".formatted(1 + rnd.nextInt(12), 1 + rnd.nextInt(28));
          for (int i = 2; i < difficulty; i++) b.event(pick(rnd, TITLES) + " " + (i - 1), date);
          b.listEvents(date);
        }
      }
      switch (rnd.nextInt(4)) {
        case 0 -> b.storeNotes("notes");
        case 1 -> b.storeNotes("journal");
        case 2 -> b.storeRecord(rnd.nextBoolean() ? "record" : "setting", "k" + rnd.nextInt(100));
        default -> b.storeFile("reports/r" + rnd.nextInt(100) + ".txt");
      }
    }
    return b.build(id, distractors(rnd, domain));
  }

  /**
   * An open task (docs/LOOP.md, "Open tasks"): gather {@code facts} facts with the web lookup and write them into the
   * notes in the order asked, the first written, the others added line by line. Its rubric (the notes hold exactly the
   * facts looked up, in order; nothing else touched; no redundant or forbidden call; the answer is the last fact) is
   * the hidden one: evaluation reads it, the RL reward never does. Honours the split as {@link #task(long, String)}.
   */
  public Task openTask(long seed, String id, int facts) {
    if (facts < 1) throw new IllegalArgumentException("an open task gathers at least one fact");
    return firstOf(split, seed, "open task", s -> {
      var rnd = new SplittableRandom(s);
      var b = new TaskBuilder(universe, "core", s).asOpen();
      var topics = new ArrayList<>(List.of(TOPICS));
      for (int i = 0; i < facts; i++) {
        b.lookup("catalog", topics.remove(rnd.nextInt(topics.size())));
        if (i == 0) b.storeNotes("notes");
        else b.appendNotes();
      }
      return b.build(id, distractors(rnd, "core"));
    });
  }

  /**
   * A verifiable task that builds a note (docs/LOOP.md, "Session 16"): look a fact up, write it into the notes, do
   * {@code calcs} calculations on it, add the result to the notes. Its checker reads the note, so the judge's verdicts
   * of it teach the critic what "add it to the notes" done with {@code notes.write} (which replaces the note) is worth,
   * the one skill of the open tasks that no other verifiable task shows. Honours the split as {@link #task(long, String)}.
   */
  public Task notedTask(long seed, String id, int calcs) {
    if (calcs < 1) throw new IllegalArgumentException("a noted task calculates at least once (else it adds the fact it wrote)");
    return firstOf(split, seed, "noted task", s -> {
      var rnd = new SplittableRandom(s);
      var b = new TaskBuilder(universe, "core", s).lookup("catalog", pick(rnd, TOPICS)).storeNotes("notes");
      for (int i = 0; i < calcs; i++) b.calcNext(pick(rnd, OPS), num(rnd));
      b.appendNotes();
      return b.build(id, distractors(rnd, "core"));
    });
  }

  private double notedShare, notedRlShare;

  /**
   * The share of {@link #notedTask}s among this generator's verifiable training tasks: {@code synthesis} for the
   * teacher's draws ({@code k2.tasks.noted-share}), {@code rl} for the learned policy's ({@code k2.tasks.noted-rl-share}).
   */
  public TaskGenerator withNotedShares(double synthesis, double rl) {
    if (!(synthesis >= 0 && synthesis <= 1)) throw new IllegalArgumentException("k2.tasks.noted-share must lie in [0, 1], got " + synthesis);
    if (!(rl >= 0 && rl <= 1)) throw new IllegalArgumentException("k2.tasks.noted-rl-share must lie in [0, 1], got " + rl);
    this.notedShare = synthesis;
    this.notedRlShare = rl;
    return this;
  }

  /** The synthesis's share of noted tasks. */
  public double notedShare() {
    return notedShare;
  }

  /** RL's share of noted tasks. */
  public double notedRlShare() {
    return notedRlShare;
  }

  /** {@link #notedDraw(long, String, double)} at the synthesis's share. */
  public Task notedDraw(long seed, String id) {
    return notedDraw(seed, id, notedShare);
  }

  /**
   * The noted task that the training draw of {@code seed} becomes, with probability {@code share} (one or two
   * calculations), or null when it stays as drawn. From the seed's own bits, so that share 0 changes no draw and the
   * draws at a smaller share are a subset of those at a larger one.
   */
  public Task notedDraw(long seed, String id, double share) {
    if (share <= 0 || (mix(seed ^ 0x4E4F544544L) >>> 11) * 0x1.0p-53 >= share) return null;
    return notedTask(seed, id, 1 + (int) ((mix(seed ^ 0x63616C63L) >>> 33) % 2));
  }

  /** The open tasks gather two or three facts (one fact would give only twenty distinct prompts). */
  public static final int OPEN_MIN_FACTS = 2, OPEN_MAX_FACTS = 3;

  /** The number of facts of open task i of a set: two and three in turn. */
  public static int openFacts(int i) {
    return OPEN_MIN_FACTS + i % (OPEN_MAX_FACTS - OPEN_MIN_FACTS + 1);
  }

  private List<String> distractors(SplittableRandom rnd, String domain) {
    var pool = domain.equals("core") ? corePool : universe.domain(domain);
    var out = new ArrayList<String>();
    for (int i = 0; i < 3; i++) out.add(pool.get(rnd.nextInt(pool.size())).name());
    return out;
  }

  /** Sibling tools of the same kind in the same domain: where a teacher's wrong-tool mistake lands. */
  public List<ToolSpec> siblings(String tool) {
    var spec = universe.get(tool);
    if (spec == null) return List.of();
    return universe.domain(spec.domain()).stream().filter(t -> t.kind() == spec.kind() && !t.name().equals(tool)).toList();
  }

  private static long num(SplittableRandom rnd) { return 1 + rnd.nextInt(99); }

  private static String pick(SplittableRandom rnd, String[] xs) { return xs[rnd.nextInt(xs.length)]; }

  public static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }

  public ToolUniverse universe() { return universe; }
}
