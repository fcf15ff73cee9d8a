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
  private final dev.k2pekko.agents.policy.PolicyFormat format;
  /** k2.policy.tasks: the learned policy's task family, core, kg or fs. */
  private final String policyTasks;
  private final TaskDraws draws;
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
    this.policyTasks = c.getString("policy.tasks");
    this.format = policyFormat(c, universe);
    this.draws = new TaskDraws(c, universe, generator);
    this.inferenceSettings = inferenceSettings(c.getConfig("inference"));
    this.openAiSettings = dev.k2pekko.agents.inference.OpenAiPolicy.Settings.fromConfig(c);
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

  /** The node's task draws: which task each episode of a run plays. */
  public TaskDraws draws() { return draws; }

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
