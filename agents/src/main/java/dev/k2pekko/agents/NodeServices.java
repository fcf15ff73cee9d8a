package dev.k2pekko.agents;

import dev.k2pekko.agents.policy.Policy;
import dev.k2pekko.agents.policy.TeacherPolicy;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.tools.ToolDirectory;
import java.time.Duration;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;

/**
 * What the agents of one node share: the task generator, the policy, the judge's settings and the node's judge.
 * A Pekko extension, so there is one per ActorSystem (several test nodes in one JVM each have their own).
 */
public final class NodeServices implements Extension {
  public static final String SYSTEM_PROMPT = "You are an agent that completes tasks by calling the tools you are given. "
      + "Call one tool at a time, use each result, and answer with the final value.";

  public record Settings(Duration toolTimeout, Duration tickInterval, double acceptThreshold, int batchSize,
                         Duration flushInterval, Duration ackTimeout, int collectors, int tags, int dedupWindow,
                         Duration journalGiveUp, int maxBacklog, int cohorts, int judges) {}

  /**
   * {@code k2.judge.count}: a number >= 1, or {@code auto}: half the processors this JVM may use, at least one. One
   * judge per node fell behind the agents of 8 and 16 cores (the backpressure then held every agent for whole ticks:
   * 46,000 and 35,000 tool calls/s against 225,000 on 2 cores; BENCHMARKS.md, "Cores, session 9"); 8 and 16 judges on
   * 16 cores did not differ, and on 2 cores two judges (smaller journal batches) made the default run slower than one.
   */
  static int judgeCount(com.typesafe.config.Config c) {
    return countOrAuto(c, "judge.count", "k2.judge.count", Math.max(1, Runtime.getRuntime().availableProcessors() / 2));
  }

  /**
   * {@code k2.inference} (window, max-batch, threads): {@code threads} a number >= 1, or {@code auto}: the processors
   * this JVM may use. The node's inference server and {@code k2 serve}'s read it here.
   */
  public static dev.k2pekko.agents.inference.InferenceServer.Settings inferenceSettings(com.typesafe.config.Config inference) {
    return new dev.k2pekko.agents.inference.InferenceServer.Settings(inference.getDuration("window"), inference.getInt("max-batch"),
        countOrAuto(inference, "threads", "k2.inference.threads", Runtime.getRuntime().availableProcessors()));
  }

  /** A count setting at {@code path}: a whole number >= 1, or {@code auto} for {@code auto}; {@code name} in errors. */
  private static int countOrAuto(com.typesafe.config.Config c, String path, String name, int auto) {
    String v = c.getString(path).trim();
    if (v.equals("auto")) return auto;
    int n;
    try {
      n = Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + " must be auto or a whole number >= 1, got '" + v + "'");
    }
    if (n < 1) throw new IllegalArgumentException(name + " must be auto or a whole number >= 1, got " + n);
    return n;
  }

  public static final ExtensionId<NodeServices> ID = new ExtensionId<>() {
    @Override public NodeServices createExtension(ActorSystem<?> system) { return new NodeServices(system); }
  };

  public static NodeServices get(ActorSystem<?> system) { return ID.apply(system); }

  private final TaskGenerator generator;
  private final Policy policy;
  private final JudgeRubric rubric;
  private final Settings settings;
  /** The node's judges; an agent's episodes go to judge (agent number mod count), so a rollout group stays with one. */
  private volatile java.util.List<ActorRef<Judge.Command>> judges;
  private volatile ActorRef<dev.k2pekko.agents.inference.InferenceServer.Command> inference;
  private volatile ActorRef<dev.k2pekko.agents.inference.OpenAiPolicy.Command> openAi;
  private final dev.k2pekko.agents.inference.OpenAiPolicy.Settings openAiSettings;
  /** The knowledge-graph tasks on the MCP memory server, where k2.mcp.knowledge-graph names it. */
  private final dev.k2pekko.agents.tasks.KnowledgeGraphTasks graphTasks;
  /** The file tasks on the MCP filesystem server, where k2.mcp.files names it. */
  private final dev.k2pekko.agents.tasks.FileTasks fileTasks;
  private final dev.k2pekko.agents.policy.PolicyFormat format;
  /** k2.policy.tasks: the learned policy's task family, core, kg or fs. */
  private final String policyTasks;
  private final TaskGenerator train, heldOut;
  private final int maxSteps;
  private final String nodeKey;
  private final dev.k2pekko.agents.inference.InferenceServer.Settings inferenceSettings;

  private NodeServices(ActorSystem<?> system) {
    var c = system.settings().config().getConfig("k2");
    this.nodeKey = org.apache.pekko.cluster.typed.Cluster.get(system).selfMember().address().hostPort();
    this.generator = new TaskGenerator(ToolDirectory.get(system).universe(), c.getInt("tasks.max-steps"))
        .withBank(c.getInt("tasks.bank-size"));
    var t = c.getConfig("teacher");
    this.policy = new TeacherPolicy(generator, new TeacherPolicy.Mistakes(t.getDouble("wrong-argument"),
        t.getDouble("skip-step"), t.getDouble("wrong-tool"), t.getDouble("premature-answer"), t.getDouble("recover")));
    this.rubric = new JudgeRubric(c.getDouble("judge.threshold"));
    var universe = ToolDirectory.get(system).universe();
    String kg = c.getString("mcp.knowledge-graph");
    this.graphTasks = kg.isEmpty() ? null : new dev.k2pekko.agents.tasks.KnowledgeGraphTasks(kg);
    this.policyTasks = c.getString("policy.tasks");
    this.format = policyFormat(c, universe);
    this.maxSteps = c.getInt("policy.max-steps");
    this.train = new TaskGenerator(universe, maxSteps).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN)
        .withNotedShares(c.getDouble("tasks.noted-share"), c.getDouble("tasks.noted-rl-share"));
    this.heldOut = new TaskGenerator(universe, maxSteps).coreOnly(true).withSplit(TaskGenerator.Split.HELD_OUT);
    this.inferenceSettings = inferenceSettings(c.getConfig("inference"));
    this.openAiSettings = dev.k2pekko.agents.inference.OpenAiPolicy.Settings.fromConfig(c);
    String fs = c.getString("mcp.files");
    this.fileTasks = fs.isEmpty() ? null : new dev.k2pekko.agents.tasks.FileTasks(fs);
    var timeout = c.getDuration("agent.tool-timeout");
    this.settings = new Settings(timeout, timeout.dividedBy(4), rubric.threshold(), c.getInt("judge.batch-size"),
        c.getDuration("judge.flush-interval"), c.getDuration("judge.ack-timeout"), c.getInt("collector.count"),
        c.getInt("collector.tags"), c.getInt("collector.dedup-window"), c.getDuration("journal.give-up-after"),
        c.getInt("judge.max-backlog"), c.getInt("agent.cohorts"), judgeCount(c));
    if (settings.cohorts() < 1) throw new IllegalArgumentException("k2.agent.cohorts must be at least 1, got " + settings.cohorts());
    if (settings.maxBacklog() < 1) throw new IllegalArgumentException("k2.judge.max-backlog must be at least 1, got " + settings.maxBacklog());
    if (settings.journalGiveUp().isNegative() || settings.journalGiveUp().isZero()) {
      throw new IllegalArgumentException("k2.journal.give-up-after must be positive, got " + settings.journalGiveUp());
    }
    this.backlogs = new java.util.concurrent.atomic.AtomicLongArray(settings.judges());
    this.agentWaits = dev.k2pekko.metrics.Metrics.get(system).counter("k2_agent_waits",
        "episodes an agent put off because the judge's backlog was full (k2.judge.max-backlog): backpressure from the journal to the agents");
  }

  /** Judged trajectories of this node not yet durable, per judge as it last counted them. */
  private final java.util.concurrent.atomic.AtomicLongArray backlogs;
  private final dev.k2pekko.metrics.Meter.Counter agentWaits;

  /** Judge {@code judge} holds {@code n} judged trajectories that are not durable yet. */
  void backlog(int judge, long n) {
    backlogs.set(judge, n);
    wakeIfCaughtUp();
  }

  /** The judged trajectories of this node's judges that are not durable yet. */
  long backlog() {
    long n = 0;
    for (int i = 0; i < backlogs.length(); i++) n += backlogs.get(i);
    return n;
  }

  /**
   * Episodes this node's agents have sent to a judge that it has not judged yet. Counted with the backlog: a judge
   * that falls behind holds them in its mailbox, where its own count cannot see them, and an agent that looked at the
   * backlog alone started its next episode while thousands of finished ones were still queued (a backlog of 14,056
   * against 2,000 + 10,000 agents in OverloadTest on a loaded machine).
   */
  private final java.util.concurrent.atomic.AtomicLong unjudged = new java.util.concurrent.atomic.AtomicLong();

  /** An agent of this node sent an episode to a judge. */
  void sentToJudge() { unjudged.incrementAndGet(); }

  /** A judge took an episode out of its mailbox. */
  void judged() {
    unjudged.decrementAndGet();
    wakeIfCaughtUp();
  }

  /**
   * Whether an agent of this node must wait before its next episode: its judges hold, or have yet to judge,
   * {@code k2.judge.max-backlog} trajectories that are not durable (a slow or absent journal, or judges behind).
   */
  boolean journalBehind() {
    return backlog() + Math.max(0, unjudged.get()) >= settings.maxBacklog();
  }

  /** Agents waiting for the backlog to fall below its limit: woken as soon as it does, not at their next tick. */
  private final java.util.concurrent.ConcurrentLinkedQueue<ActorRef<Object>> waiting = new java.util.concurrent.ConcurrentLinkedQueue<>();

  /** The message a waiting agent gets when the backlog fell below its limit. */
  enum CaughtUp implements LocalOnly { INSTANCE }

  /**
   * {@code agent} waits for the backlog; true if it need not (the backlog fell meanwhile), else it gets
   * {@link CaughtUp} once it does (its tick checks too, so a wake-up lost in a race costs one tick, no more).
   */
  boolean awaitCaughtUp(ActorRef<Object> agent) {
    waiting.add(agent);
    if (journalBehind()) return false;
    waiting.remove(agent);
    return true;
  }

  /**
   * Wakes as many waiting agents as the backlog has room for, no more: waking them all each time it fell below the
   * limit made every judged episode wake thousands of agents that found it full again (a 16-core run with one judge
   * did not finish in six minutes), while each agent woken here adds at most one episode.
   */
  private void wakeIfCaughtUp() {
    if (waiting.isEmpty()) return;
    long room = settings.maxBacklog() - backlog() - Math.max(0, unjudged.get());
    for (ActorRef<Object> a; room > 0 && (a = waiting.poll()) != null; room--) a.tell(CaughtUp.INSTANCE);
  }

  /** An agent put its next episode off (journalBehind). */
  void countWait() { agentWaits.increment(); }

  public TaskGenerator generator() { return generator; }

  /** This node as runs name it in their counters and assignments: {@code system@host:port}. */
  public String nodeKey() { return nodeKey; }
  public dev.k2pekko.agents.policy.PolicyFormat format() { return format; }
  public dev.k2pekko.agents.inference.InferenceServer.Settings inferenceSettings() { return inferenceSettings; }

  /**
   * The task of an agent's episode under a run's spec. "universe": the node's task bank, as in synthesis. "train"
   * and "held-out": core-tool tasks of that split; the agent's {@code rollouts} consecutive episodes share one task.
   * Held-out tasks are numbered over the run (agent number x tasks per agent + group) and task i has difficulty
   * 1 + i mod max-steps, so a run whose task count is a multiple of max-steps has every difficulty in equal shares.
   * "held-out-open": the fixed held-out open tasks, numbered the same way. A "train" task is an open one with
   * probability {@code openShare}, drawn from its seed.
   */
  public dev.k2pekko.agents.tasks.Task task(Agent.EpisodeSpec spec, long runSeed, String agentId, int episode, int episodes) {
    int group = episode / spec.rollouts();
    return switch (spec.tasks()) {
      case UNIVERSE -> generator.task(runSeed, agentId, episode);
      case KG, KG_TRAIN -> {
        // "kg": any instance (the synthesis); "kg-train": the training split's (the learned policy's)
        if (graphTasks == null) throw new IllegalStateException("kg tasks need k2.mcp.knowledge-graph (the memory server's name)");
        long seed = TaskGenerator.mix(runSeed * 0x9E3779B97F4A7C15L + agentId.hashCode() * 31L + group + 0x6B67L);
        yield graphTasks.task(seed, "kg-" + Long.toHexString(seed), 1 + (int) Math.floorMod(seed >>> 7, 3L),
            spec.tasks() == Agent.Tasks.KG ? TaskGenerator.Split.ALL : TaskGenerator.Split.TRAIN);
      }
      case KG_HELD_OUT -> {
        if (graphTasks == null) throw new IllegalStateException("kg tasks need k2.mcp.knowledge-graph (the memory server's name)");
        int perAgent = (episodes + spec.rollouts() - 1) / spec.rollouts();
        yield heldOutGraphTask(graphTasks, runSeed, (long) agentNumber(agentId) * perAgent + group);
      }
      case FS_HELD_OUT -> {
        if (fileTasks == null) throw new IllegalStateException("fs tasks need k2.mcp.files (the filesystem server's name)");
        int perAgent = (episodes + spec.rollouts() - 1) / spec.rollouts();
        long index = (long) agentNumber(agentId) * perAgent + group;
        yield fileTasks.task(TaskGenerator.mix(runSeed * 0xE7037ED1A0B428DBL + index), "fsh-" + index, 1 + (int) (index % 3), TaskGenerator.Split.HELD_OUT);
      }
      case FS, FS_TRAIN -> {
        if (fileTasks == null) throw new IllegalStateException("fs tasks need k2.mcp.files (the filesystem server's name)");
        long seed = TaskGenerator.mix(runSeed * 0x9E3779B97F4A7C15L + agentId.hashCode() * 31L + group + 0x6673L);
        yield fileTasks.task(seed, "fs-" + Long.toHexString(seed), 1 + (int) Math.floorMod(seed >>> 7, 3L),
            spec.tasks() == Agent.Tasks.FS ? TaskGenerator.Split.ALL : TaskGenerator.Split.TRAIN);
      }
      case TRAIN -> trainTask(train, spec, runSeed, agentId, group);
      case HELD_OUT_OPEN -> {
        int perAgent = (episodes + spec.rollouts() - 1) / spec.rollouts();
        yield heldOutOpenTask(heldOut, runSeed, (long) agentNumber(agentId) * perAgent + group);
      }
      case HELD_OUT -> {
        int perAgent = (episodes + spec.rollouts() - 1) / spec.rollouts();
        yield heldOutTask(heldOut, runSeed, (long) agentNumber(agentId) * perAgent + group, maxSteps);
      }
    };
  }

  /**
   * The training task of an agent's task group {@code group}: fixed by the run seed, the agent and the group; an open
   * task with probability {@code spec.openShare()} (drawn from the task's seed, so a run's share of open tasks is the
   * same whatever node plays them), else a noted task with probability {@code k2.tasks.noted-share} for the teacher,
   * {@code k2.tasks.noted-rl-share} for the learned policy ({@link TaskGenerator#notedDraw}), else a verifiable one of
   * the difficulty drawn by the spec's weights (or uniform).
   */
  static dev.k2pekko.agents.tasks.Task trainTask(TaskGenerator train, Agent.EpisodeSpec spec, long runSeed, String agentId, int group) {
    long seed = TaskGenerator.mix(runSeed * 0x9E3779B97F4A7C15L + agentId.hashCode() * 31L + group);
    if (spec.openShare() > 0 && unit(TaskGenerator.mix(seed ^ 0x0BE7A5C0FFEEL)) < spec.openShare()) {
      long bits = TaskGenerator.mix(seed ^ 0x6F70656EL);
      return train.openTask(seed, "ro-" + Long.toHexString(seed), TaskGenerator.openFacts((int) (bits >>> 33)));
    }
    var noted = train.notedDraw(seed, "rn-" + Long.toHexString(seed), spec.learned() ? train.notedRlShare() : train.notedShare());
    if (noted != null) return noted;
    double[] w = spec.difficultyWeights();
    if (w == null) return train.task(seed, "r-" + Long.toHexString(seed));
    return train.taskOfDifficulty(seed, "r-" + Long.toHexString(seed), drawDifficulty(w, TaskGenerator.mix(seed ^ 0x5DEECE66DL)));
  }

  /** A uniform draw in [0, 1) from 64 random bits. */
  private static double unit(long bits) {
    return (bits >>> 11) * 0x1.0p-53;
  }

  /**
   * Held-out open task {@code index} of a run seed (docs/LOOP.md, "Open tasks"): fixed by the seed and the index, it
   * gathers 2 + index mod 2 facts, and is never a training instance (the split by prompt hash). The pipeline's open
   * evaluation and the offline {@code k2 bench open} take their open tasks from here.
   */
  public static dev.k2pekko.agents.tasks.Task heldOutOpenTask(TaskGenerator heldOut, long runSeed, long index) {
    return heldOut.openTask(TaskGenerator.mix(runSeed * 0x3C6EF372FE94F82BL + index), "open-held-" + index, TaskGenerator.openFacts((int) index));
  }

  /**
   * Held-out task {@code index} of a run: fixed by the run seed and the index, difficulty 1 + index mod max-steps. Every
   * evaluation of a run, and the offline probes that compare with it (bench), take their tasks from here.
   */
  public static dev.k2pekko.agents.tasks.Task heldOutTask(TaskGenerator heldOut, long runSeed, long index, int maxSteps) {
    long seed = TaskGenerator.mix(runSeed * 0xD1B54A32D192ED03L + index);
    return heldOut.taskOfDifficulty(seed, "h-" + index, 1 + (int) (index % maxSteps));
  }

  /**
   * Held-out knowledge-graph task {@code index} of a run: fixed by the run seed and the index, difficulty 1 + index mod
   * 3 (equal shares in a set whose size is a multiple of 3), of the held-out split (never a training instance).
   */
  public static dev.k2pekko.agents.tasks.Task heldOutGraphTask(dev.k2pekko.agents.tasks.KnowledgeGraphTasks tasks, long runSeed, long index) {
    long seed = TaskGenerator.mix(runSeed * 0xA0761D6478BD642FL + index);
    return tasks.task(seed, "kgh-" + index, 1 + (int) (index % 3), TaskGenerator.Split.HELD_OUT);
  }

  /**
   * The learned policy's format under {@code k2} (the config's {@code k2} section): the core tools', or with
   * {@code policy.tasks = kg} the knowledge-graph tasks' tools and words added. The nodes of a run and {@code k2 serve}
   * of its checkpoint build it the same way, so their vocabularies agree.
   */
  public static dev.k2pekko.agents.policy.PolicyFormat policyFormat(com.typesafe.config.Config k2, dev.k2pekko.tools.ToolUniverse universe) {
    String tasks = k2.getString("policy.tasks");
    return switch (tasks) {
      case "core" -> new dev.k2pekko.agents.policy.PolicyFormat(universe);
      case "kg" -> {
        String kg = k2.getString("mcp.knowledge-graph");
        if (kg.isEmpty()) throw new IllegalArgumentException("k2.policy.tasks = kg needs k2.mcp.knowledge-graph (the memory server's name)");
        yield new dev.k2pekko.agents.policy.PolicyFormat(universe, new dev.k2pekko.agents.tasks.KnowledgeGraphTasks(kg).vocabulary());
      }
      case "fs" -> {
        String fs = k2.getString("mcp.files");
        if (fs.isEmpty()) throw new IllegalArgumentException("k2.policy.tasks = fs needs k2.mcp.files (the filesystem server's name)");
        yield new dev.k2pekko.agents.policy.PolicyFormat(universe, new dev.k2pekko.agents.tasks.FileTasks(fs).vocabulary());
      }
      default -> throw new IllegalArgumentException("k2.policy.tasks must be core, kg or fs, got '" + tasks + "'");
    };
  }

  /** k2.policy.tasks: core, kg or fs. */
  public String policyTasks() { return policyTasks; }

  /** Difficulty 1..w.length drawn with probabilities proportional to w, from a uniform draw given by {@code bits}. */
  static int drawDifficulty(double[] w, long bits) {
    double sum = 0;
    for (double x : w) sum += x;
    double u = (bits >>> 11) * 0x1.0p-53 * sum;
    for (int d = 0; d < w.length; d++) {
      u -= w[d];
      if (u < 0) return d + 1;
    }
    for (int d = w.length - 1; d >= 0; d--) if (w[d] > 0) return d + 1; // rounding at the top end
    throw new IllegalArgumentException("difficulty weights must not all be 0");
  }

  /** The number of agent {@code agent-<n>}. */
  static int agentNumber(String agentId) {
    int dash = agentId.lastIndexOf('-');
    try {
      return Integer.parseInt(agentId.substring(dash + 1));
    } catch (NumberFormatException e) {
      return Math.floorMod(agentId.hashCode(), 1 << 20);
    }
  }

  public ActorRef<dev.k2pekko.agents.inference.InferenceServer.Command> inference() {
    var i = inference;
    if (i == null) throw new IllegalStateException("this node runs no inference server (role 'agent' missing?)");
    return i;
  }

  void setInference(ActorRef<dev.k2pekko.agents.inference.InferenceServer.Command> ref) { this.inference = ref; }

  /** {@code k2.policy.openai} of this node, or null where it drives no served LLM (no base-url). */
  public dev.k2pekko.agents.inference.OpenAiPolicy.Settings openAiSettings() { return openAiSettings; }

  /** The node's adapter to a served LLM ({@code --policy openai}), or null where none is configured. */
  public ActorRef<dev.k2pekko.agents.inference.OpenAiPolicy.Command> openAi() { return openAi; }

  void setOpenAi(ActorRef<dev.k2pekko.agents.inference.OpenAiPolicy.Command> ref) { this.openAi = ref; }

  /**
   * How long an agent waits for an action before it gives the episode up: the inference server's answers come within
   * the tool timeout; the adapter to a served LLM answers (or fails) within its action timeout, and the agent waits a
   * little longer, so that the adapter's own, more precise failure is the one judged.
   */
  public java.time.Duration actionWait(boolean openAiPolicy) {
    return openAiPolicy && openAiSettings != null ? openAiSettings.actionTimeout().plus(settings.toolTimeout()) : settings.toolTimeout();
  }
  public Policy policy() { return policy; }
  public JudgeRubric rubric() { return rubric; }
  public Settings settings() { return settings; }

  /** The judge of agent number {@code agent}'s episodes. */
  public ActorRef<Judge.Command> judgeFor(int agent) {
    var js = judges;
    if (js == null) throw new IllegalStateException("this node runs agents but started no judge (role 'agent' missing?)");
    return js.get(Math.floorMod(agent, js.size()));
  }

  /** Starts the node's {@code k2.judge.count} judges. */
  void startJudges(ActorSystem<?> system) {
    var js = new java.util.ArrayList<ActorRef<Judge.Command>>(settings.judges());
    for (int i = 0; i < settings.judges(); i++) {
      js.add(system.systemActorOf(Judge.create(i), "judge-" + i, org.apache.pekko.actor.typed.Props.empty()));
    }
    this.judges = java.util.List.copyOf(js);
  }

  private final java.util.List<ActorRef<dev.k2pekko.protocol.Trajectory>> judgedListeners = new java.util.concurrent.CopyOnWriteArrayList<>();

  /**
   * Subscribes {@code listener} to every trajectory this node's judge judges, with its verdict, whether it is kept
   * or not: the rejected synthesis episodes and the evaluation episodes never reach the journal, and the critic
   * learns from and is measured on them.
   */
  public void onJudged(ActorRef<dev.k2pekko.protocol.Trajectory> listener) { judgedListeners.add(listener); }

  java.util.List<ActorRef<dev.k2pekko.protocol.Trajectory>> judgedListeners() { return judgedListeners; }
}
