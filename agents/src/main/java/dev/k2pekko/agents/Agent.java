package dev.k2pekko.agents;

import dev.k2pekko.agents.policy.Action;
import dev.k2pekko.agents.policy.Policy;
import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.protocol.EndEpisode;
import dev.k2pekko.protocol.KryoWire;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.protocol.ToolCall;
import dev.k2pekko.protocol.ToolCommand;
import dev.k2pekko.protocol.ToolError;
import dev.k2pekko.protocol.ToolResult;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.WorldSnapshot;
import dev.k2pekko.tools.ToolDirectory;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.Cancellable;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.ExtensibleBehavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.Signal;
import org.apache.pekko.actor.typed.TypedActorContext;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * An agent: an actor that runs episodes, a child of its {@link AgentCohort} (the Cluster Sharding entity that decides
 * on which node it lives). The traffic of a running episode goes straight to a tool worker's {@code ActorRef} (the one
 * that owns the episode's world state), never through a shard region. Each tool call has a timeout, checked by a tick
 * that runs only while an episode does, so an idle agent holds no timer; between runs an agent is an {@link Idle},
 * without any of the run's state. It extends {@code ExtensibleBehavior} rather than {@code AbstractBehavior}: a switch
 * over the sealed protocol needs no per-actor receive table, which matters at a million agents a node.
 */
public final class Agent extends ExtensibleBehavior<Object> {
  /**
   * What others send an agent: its assignments. An agent also takes the replies to its requests as they are (a tool
   * worker's {@link ToolResult} and {@link WorldSnapshot}, the inference server's {@code Reply}), which is why its
   * behavior is typed {@code Object}: message adapters would cost every agent that ever ran about 400 bytes (a function
   * ref and three registrations that typed Pekko keeps for the actor's life) and every reply an allocation.
   */
  public sealed interface Command {}

  /**
   * Run episodes of run {@code runId}: all {@code episodes} of them, or only the indices in {@code only} (episodes
   * redone after a node died, or not yet done when a run resumes). The judge reports them to {@code tracker}. An
   * agent that already runs (or ran) this run for this tracker ignores a repeat, and says where it is either way.
   * {@code again}: episodes given before may have started somewhere; the agent discards any world state a tool worker
   * still holds for each before it starts it, so a redone episode starts from the same empty world as the first try.
   */
  public record RunEpisodes(String runId, long seed, int episodes, PersistMode persist,
                            ActorRef<RunTracker.Command> tracker, EpisodeSpec spec, int[] only, boolean again) implements Command, KryoWire {
    public RunEpisodes(String runId, long seed, int episodes, PersistMode persist, ActorRef<RunTracker.Command> tracker) {
      this(runId, seed, episodes, persist, tracker, EpisodeSpec.SYNTHESIS, null, false);
    }

    public RunEpisodes(String runId, long seed, int episodes, PersistMode persist, ActorRef<RunTracker.Command> tracker, EpisodeSpec spec) {
      this(runId, seed, episodes, persist, tracker, spec, null, false);
    }

    /** How many episodes this message asks for. */
    int count() { return only == null ? episodes : only.length; }

    /** The index of the i-th episode asked for. */
    int episodeAt(int i) { return only == null ? i : only[i]; }

    boolean sameAs(RunEpisodes o) { return o != null && runId.equals(o.runId) && java.util.Objects.equals(tracker, o.tracker); }
  }

  /** Which tasks a run's episodes play ({@link EpisodeSpec#tasks}); its label is the form in logs and messages. */
  public enum Tasks {
    /** The whole tool universe from the node's task bank (synthesis). */
    UNIVERSE("universe"),
    /** Core-tool tasks of the training split. */
    TRAIN("train"),
    /** Core-tool tasks of the held-out split, difficulties 1..max in equal shares. */
    HELD_OUT("held-out"),
    /** The fixed held-out open tasks ({@link TaskDraws#heldOutOpenTask}). */
    HELD_OUT_OPEN("held-out-open"),
    /** Knowledge-graph tasks on the MCP memory server, any instance ({@link dev.k2pekko.agents.tasks.KnowledgeGraphTasks}). */
    KG("kg"),
    /** Knowledge-graph tasks of the training split (the learned policy's with k2.policy.tasks = kg). */
    KG_TRAIN("kg-train"),
    /** Knowledge-graph tasks of the held-out split, numbered over the run as HELD_OUT's ({@link TaskDraws#heldOutGraphTask}). */
    KG_HELD_OUT("kg-held-out"),
    /** File tasks on the MCP filesystem server, any instance ({@link dev.k2pekko.agents.tasks.FileTasks}). */
    FS("fs"),
    /** File tasks of the training split. */
    FS_TRAIN("fs-train"),
    /** File tasks of the held-out split, numbered over the run. */
    FS_HELD_OUT("fs-held-out");

    private final String label;

    Tasks(String label) { this.label = label; }

    public String label() { return label; }

    /** An evaluation's tasks: counted per task instance (trials and successes, for pass^k). */
    public boolean heldOut() { return this == HELD_OUT || this == HELD_OUT_OPEN || this == KG_HELD_OUT || this == FS_HELD_OUT; }

    @Override public String toString() { return label; }
  }

  /**
   * Which tasks and which policy a run's episodes use.
   *
   * @param tasks which tasks ({@link Tasks})
   * @param policy "teacher" (the scripted teacher), "learned" (the node's inference server) or "openai" (a served LLM
   *     over HTTP: the node's {@link dev.k2pekko.agents.inference.OpenAiPolicy}, {@code k2.policy.openai})
   * @param temperature sampling temperature of the learned policy or the served LLM
   * @param rollouts consecutive episodes of an agent that share one task (K rollouts per task for RL, n trials for
   *     evaluation); their trajectory ids differ only after '#', so they share a journal tag
   * @param difficultyWeights "train" only: relative weights of difficulties 1..n (a task's difficulty is drawn by
   *     them, then a task of that difficulty); null draws the generator's way (uniform)
   * @param openShare "train" only: the share of tasks (of task groups: an agent's {@code rollouts} episodes share one)
   *     that are open tasks (docs/LOOP.md, "Open tasks"), each task drawn open or not from its seed; 0: none
   */
  public record EpisodeSpec(Tasks tasks, String policy, double temperature, int rollouts, double[] difficultyWeights, double openShare)
      implements KryoWire {
    /** The policies an episode may be played by (before SYNTHESIS: class initialisation runs in this order). */
    public static final java.util.Set<String> POLICIES = java.util.Set.of("teacher", "learned", "openai");

    public static final EpisodeSpec SYNTHESIS = new EpisodeSpec(Tasks.UNIVERSE, "teacher", 0, 1);

    public EpisodeSpec(Tasks tasks, String policy, double temperature, int rollouts) {
      this(tasks, policy, temperature, rollouts, null);
    }

    public EpisodeSpec(Tasks tasks, String policy, double temperature, int rollouts, double[] difficultyWeights) {
      this(tasks, policy, temperature, rollouts, difficultyWeights, 0);
    }

    public EpisodeSpec {
      if (difficultyWeights != null) {
        double sum = 0;
        for (double w : difficultyWeights) {
          if (!(w >= 0) || Double.isInfinite(w)) throw new IllegalArgumentException("difficulty weights must be finite and >= 0");
          sum += w;
        }
        if (!(sum > 0)) throw new IllegalArgumentException("difficulty weights must not all be 0");
        if (tasks != Tasks.TRAIN) throw new IllegalArgumentException("difficulty weights apply to train tasks only");
      }
      java.util.Objects.requireNonNull(tasks, "tasks");
      if (!(openShare >= 0 && openShare <= 1)) throw new IllegalArgumentException("the open share must lie in [0, 1], got " + openShare);
      if (openShare > 0 && tasks != Tasks.TRAIN) throw new IllegalArgumentException("an open share applies to train tasks only");
      if (!POLICIES.contains(policy)) throw new IllegalArgumentException("policy must be teacher, learned or openai, got " + policy);
      if (rollouts < 1) throw new IllegalArgumentException("rollouts must be at least 1, got " + rollouts);
      if (!(temperature >= 0)) throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
    }

    public boolean learned() { return policy.equals("learned"); }

    /** An evaluation's tasks: counted per task instance (trials and successes, for pass^k). */
    public boolean heldOut() { return tasks.heldOut(); }

    /** Actions from a served LLM over HTTP. */
    public boolean openAi() { return policy.equals("openai"); }
  }

  public enum PersistMode { NONE, ACCEPTED, ALL }

  private enum Tick implements Command, LocalOnly { INSTANCE }

  /**
   * How a cohort starts an agent: one Props shared by every agent of the node, the agent's number taken from its name
   * ({@code agent-<n>}). A typed {@code spawn} makes a Props, a Deploy and creator closures per actor, about 240
   * bytes of every idle agent (docs/DESIGN.md, "Agents and cohorts").
   */
  static final org.apache.pekko.actor.Props PROPS = Adapter.props(
      () -> Behaviors.<Object>setup(ctx -> new Idle(TaskDraws.agentNumber(ctx.getSelf().path().name()), null)));

  /**
   * An agent between runs: its number and the last run it finished (a repeat of it is ignored), nothing else, so that
   * a million idle agents fit on one node. The first assignment with episodes turns it into an {@link Agent}, which
   * holds a run's and an episode's state and turns back into this when its last run is done.
   */
  static final class Idle extends ExtensibleBehavior<Object> {
    private final int agentNumber;
    private final RunEpisodes finished;

    Idle(int agentNumber, RunEpisodes finished) {
      this.agentNumber = agentNumber;
      this.finished = finished;
    }

    @Override public Behavior<Object> receive(TypedActorContext<Object> context, Object msg) {
      if (!(msg instanceof RunEpisodes r) || r.episodes() <= 0 || r.count() == 0) return this; // late replies and ticks of a run done
      var agent = new Agent(context.asJava(), agentNumber, finished);
      agent.onRun(r);
      return agent.next();
    }

    @Override public Behavior<Object> receiveSignal(TypedActorContext<Object> context, Signal signal) {
      return Behaviors.unhandled();
    }
  }

  private final ActorContext<Object> ctx;
  private final NodeServices services;
  private final ToolDirectory tools;
  private final String agentId;
  private ArrayDeque<RunEpisodes> queued;
  private boolean awaitingAction;
  private dev.k2pekko.protocol.Sampling sampling;
  private ArrayList<int[]> sampledActions;
  private Cancellable tick;
  // the run
  private RunEpisodes run;
  /** The last run this agent finished: a repeat of it is ignored (kept by {@link Idle} between runs). */
  private RunEpisodes finished;
  private final int agentNumber;
  /** Position in the run's episodes (see {@link RunEpisodes#episodeAt}) and the episode's index. */
  private int position, episode;
  // the episode
  private String episodeId;
  private Task task;
  private Policy.Episode policy;
  private ActorRef<ToolCommand> worker;
  private ArrayList<Step> steps;
  private Action.Call pendingCall;
  private String pendingId;
  private long waitingSince;
  private boolean awaitingSnapshot;
  private String finalAnswer;
  private boolean budgetExceeded;
  /** A served LLM's actions: per action the log-probability it reported (NaN: none) and its tokens. */
  private double[] servedLogProbs;
  private int[] servedTokens;
  private int servedActions;

  private Agent(ActorContext<Object> ctx, int agentNumber, RunEpisodes finished) {
    this.ctx = ctx;
    this.services = NodeServices.get(ctx.getSystem());
    this.tools = ToolDirectory.get(ctx.getSystem());
    this.agentId = ctx.getSelf().path().name();
    this.agentNumber = agentNumber;
    this.finished = finished;
  }

  @Override public Behavior<Object> receive(TypedActorContext<Object> context, Object msg) {
    switch (msg) {
      case RunEpisodes r -> onRun(r);
      case ToolResult r -> onResult(r);
      case WorldSnapshot s -> onSnapshot(s);
      case dev.k2pekko.agents.inference.InferenceServer.Reply r -> onAction(r);
      case dev.k2pekko.agents.inference.OpenAiPolicy.Reply r -> onServed(r);
      case Tick t -> onTick();
      case NodeServices.CaughtUp c -> onCaughtUp();
      default -> {
        return Behaviors.unhandled();
      }
    }
    return next();
  }

  /** This while a run is under way (or queued); idle again, without the run's state, once none is. */
  private Behavior<Object> next() {
    return run == null ? new Idle(agentNumber, finished) : this;
  }

  @Override public Behavior<Object> receiveSignal(TypedActorContext<Object> context, Signal signal) {
    if (!(signal instanceof PostStop)) return Behaviors.unhandled();
    onStop();
    return Behaviors.same();
  }

  private ActorContext<Object> getContext() { return ctx; }

  /** This agent as the reply address of a request: the reply comes as it is (no adapter), see {@link Command}. */
  private <U> ActorRef<U> self() { return ctx.getSelf().narrow(); }

  /**
   * The agent stops with its cohort (sharding moves the cohort's shard to another node, or passivates it): a run it has
   * not finished hears of it, and sends the episodes not done to the agent's next incarnation.
   */
  private void onStop() {
    // the episode is redone elsewhere: its world here goes (the redo may come back to this worker)
    if (run != null && worker != null && episodeId != null) worker.tell(new EndEpisode(episodeId, getContext().getSystem().ignoreRef()));
    // and its conversation with a served LLM (the adapter would keep it otherwise)
    if (run != null && run.spec().openAi() && episodeId != null && services.openAi() != null) {
      services.openAi().tell(new dev.k2pekko.agents.inference.OpenAiPolicy.End(episodeId));
    }
    if (run != null && run.tracker() != null) run.tracker().tell(new RunTracker.AgentMoved(run.runId(), agentNumber));
    if (queued != null) for (var q : queued) if (q.tracker() != null) q.tracker().tell(new RunTracker.AgentMoved(q.runId(), agentNumber));
    if (tick != null) tick.cancel();
  }

  private NodeServices services() { return services; }

  private Behavior<Object> onRun(RunEpisodes r) {
    if (r.episodes() <= 0 || r.count() == 0) return this;
    if (r.tracker() != null) r.tracker().tell(new RunTracker.AgentAt(r.runId(), agentNumber, services.nodeKey()));
    if (r.sameAs(run) || r.sameAs(finished) || (queued != null && queued.stream().anyMatch(r::sameAs))) return this;
    if (run != null) {
      if (queued == null) queued = new ArrayDeque<>(2);
      queued.add(r);
      return this;
    }
    run = r;
    position = 0;
    if (tick == null) scheduleTick();
    startEpisode();
    return this;
  }

  /** The next episode waits until the judges' backlog is below its limit (woken by {@link NodeServices.CaughtUp}, checked at each tick too). */
  private boolean waitingForJournal;

  private void scheduleTick() {
    tick = getContext().scheduleOnce(services().settings().tickInterval(), getContext().getSelf(), Tick.INSTANCE);
  }

  private void startEpisode() {
    var s = services();
    var spec = run.spec();
    episode = run.episodeAt(position);
    task = s.draws().task(spec, run.seed(), agentId, episode, run.episodes());
    episodeId = spec.rollouts() == 1 && spec.tasks() == Tasks.UNIVERSE ? run.runId() + "/" + agentId + "/" + episode
        : run.runId() + "/" + agentId + "/" + (episode / spec.rollouts()) + "#" + (episode % spec.rollouts());
    sampling = null;
    sampledActions = new ArrayList<>();
    awaitingAction = false;
    steps = new ArrayList<>(task.plan().size() + 2);
    finalAnswer = null;
    budgetExceeded = false;
    servedActions = 0;
    servedLogProbs = null;
    servedTokens = null;
    awaitingSnapshot = false;
    pendingId = null;
    waitingSince = System.nanoTime();
    worker = tools.workerFor(episodeId);
    if (worker == null) return; // no tool node yet: the tick retries until the timeout
    begin();
  }

  /** The first action of the episode: from the teacher here, or asked of the node's inference server. */
  private void begin() {
    var spec = run.spec();
    // a first try of this episode may have left its world on this worker (its agent stopped mid-episode here)
    if (run.again()) worker.tell(new EndEpisode(episodeId, getContext().getSystem().ignoreRef()));
    // the worker's firewall refuses any call to a tool not offered here
    worker.tell(new dev.k2pekko.protocol.OpenEpisode(episodeId, agentId, task.toolsOffered()));
    if (spec.learned()) {
      awaitingAction = true;
      waitingSince = System.nanoTime();
      services().inference().tell(new dev.k2pekko.agents.inference.InferenceServer.Begin(episodeId, task,
          task.seed() * 31 + episode, spec.temperature(), self()));
    } else if (spec.openAi()) {
      var adapter = services().openAi();
      if (adapter == null) {
        judge(Map.of(), "no-policy: --policy openai, but this node has no served LLM configured (k2.policy.openai.base-url)");
        return;
      }
      awaitingAction = true;
      waitingSince = System.nanoTime();
      servedLogProbs = new double[4];
      servedTokens = new int[4];
      adapter.tell(new dev.k2pekko.agents.inference.OpenAiPolicy.Begin(episodeId, task, task.seed() * 31 + episode, spec.temperature(), self()));
    } else {
      policy = services().policy().start(task, task.seed());
      act(null);
    }
  }

  private Behavior<Object> onAction(dev.k2pekko.agents.inference.InferenceServer.Reply r) {
    if (!awaitingAction || !r.episodeId().equals(episodeId)) return this; // a late reply of an episode that timed out
    awaitingAction = false;
    if (r.error() != null) {
      judge(Map.of(), r.error());
      return this;
    }
    sampledActions.add(r.tokens());
    sampling = new dev.k2pekko.protocol.Sampling(r.version(), r.logProb(), run.spec().temperature(), List.copyOf(sampledActions));
    perform(r.action());
    return this;
  }

  private Behavior<Object> onServed(dev.k2pekko.agents.inference.OpenAiPolicy.Reply r) {
    if (!awaitingAction || !r.episodeId().equals(episodeId)) return this; // a late reply of an episode that timed out
    awaitingAction = false;
    if (r.error() != null) {
      judge(Map.of(), r.error());
      return this;
    }
    if (servedActions == servedLogProbs.length) {
      servedLogProbs = java.util.Arrays.copyOf(servedLogProbs, servedActions * 2);
      servedTokens = java.util.Arrays.copyOf(servedTokens, servedActions * 2);
    }
    servedLogProbs[servedActions] = r.logProb();
    servedTokens[servedActions++] = r.tokens();
    perform(r.action());
    return this;
  }

  private void act(Step previous) {
    if (steps.size() >= task.rubric().stepBudget()) {
      budgetExceeded = true;
      finish(null);
      return;
    }
    if (run.spec().learned()) {
      if (previous == null) throw new IllegalStateException("the learned policy's first action comes from begin()");
      awaitingAction = true;
      waitingSince = System.nanoTime();
      services().inference().tell(new dev.k2pekko.agents.inference.InferenceServer.Continue(episodeId, previous, self()));
      return;
    }
    if (run.spec().openAi()) {
      awaitingAction = true;
      waitingSince = System.nanoTime();
      services().openAi().tell(new dev.k2pekko.agents.inference.OpenAiPolicy.Continue(episodeId, previous, self()));
      return;
    }
    perform(policy.next(previous));
  }

  private void perform(Action next) {
    switch (next) {
      case Action.Call call -> {
        pendingCall = call;
        pendingId = "call_" + steps.size();
        waitingSince = System.nanoTime();
        worker.tell(new ToolCall(episodeId, pendingId, call.tool(), call.arguments(), self()));
      }
      case Action.Answer answer -> finish(answer.text());
    }
  }

  private Behavior<Object> onResult(ToolResult r) {
    if (pendingId == null || !pendingId.equals(r.callId())) return this; // late reply of a timed-out call
    var step = new Step(pendingId, pendingCall.tool(), pendingCall.arguments(), r.content(),
        r.error() == null ? null : r.error().name(), r.partial());
    steps.add(step);
    pendingId = null;
    pendingCall = null;
    act(step);
    return this;
  }

  private void finish(String answer) {
    if (run.spec().learned()) services().inference().tell(new dev.k2pekko.agents.inference.InferenceServer.End(episodeId));
    if (run.spec().openAi()) services().openAi().tell(new dev.k2pekko.agents.inference.OpenAiPolicy.End(episodeId));
    finalAnswer = answer;
    awaitingSnapshot = true;
    waitingSince = System.nanoTime();
    worker.tell(new EndEpisode(episodeId, self()));
  }

  private Behavior<Object> onSnapshot(WorldSnapshot snapshot) {
    if (!awaitingSnapshot || !episodeId.equals(snapshot.episodeId())) return this;
    judge(snapshot.state(), null);
    return this;
  }

  private void judge(Map<String, String> world, String problem) {
    var s = services();
    var spec = run.spec();
    var served = spec.openAi() && s.openAiSettings() != null
        ? new dev.k2pekko.protocol.Served(s.openAiSettings().model(), java.util.Arrays.copyOf(servedLogProbs, servedActions),
            java.util.Arrays.copyOf(servedTokens, servedActions))
        : null;
    String policyName = spec.learned() ? "learned@v" + (sampling == null ? -1 : sampling.version())
        : spec.openAi() ? (s.openAiSettings() == null ? "openai" : s.openAiSettings().policyName()) : s.policy().name();
    var draft = new Trajectory(episodeId, task.id(), task.category(), task.difficulty(), task.seed(), NodeServices.SYSTEM_PROMPT,
        task.prompt(), task.toolsOffered(), steps, finalAnswer, null, policyName, sampling, served);
    if (spec.learned() && awaitingAction) s.inference().tell(new dev.k2pekko.agents.inference.InferenceServer.End(episodeId));
    if (spec.openAi() && awaitingAction && s.openAi() != null) s.openAi().tell(new dev.k2pekko.agents.inference.OpenAiPolicy.End(episodeId));
    awaitingAction = false;
    s.sentToJudge();
    s.judgeFor(agentNumber).tell(new Judge.Evaluate(task, draft, world, budgetExceeded, problem, run.runId(), run.persist(), run.tracker(),
        run.spec().heldOut(), run.spec().rollouts(), agentNumber, episode));
    awaitingSnapshot = false;
    position++;
    if (position < run.count()) {
      // backpressure: with the judges' backlog full (the journal is slow or away, or the judges behind) the next
      // episode waits until it falls below the limit
      if (s.journalBehind() && !s.awaitCaughtUp(ctx.getSelf())) {
        waitingForJournal = true;
        s.countWait();
      } else {
        startEpisode();
      }
    } else {
      finished = run;
      run = null;
      task = null;
      steps = null;
      policy = null;
      if (tick != null) tick.cancel();
      tick = null;
      if (queued != null && !queued.isEmpty()) onRun(queued.poll());
    }
  }

  /** The backlog fell below its limit: a waiting agent starts its next episode (a late or repeated wake-up is ignored). */
  private void onCaughtUp() {
    if (run == null || !waitingForJournal) return;
    if (services().journalBehind() && !services().awaitCaughtUp(ctx.getSelf())) return; // others were quicker: wait again
    waitingForJournal = false;
    startEpisode();
  }

  private Behavior<Object> onTick() {
    tick = null;
    if (run == null) return this;
    if (waitingForJournal) {
      if (!services().journalBehind()) {
        waitingForJournal = false;
        startEpisode();
      }
      if (run != null && tick == null) scheduleTick();
      return this;
    }
    long timeout = services().settings().toolTimeout().toNanos();
    boolean late = System.nanoTime() - waitingSince > timeout;
    var actionWait = services().actionWait(run.spec().openAi());
    boolean lateAction = System.nanoTime() - waitingSince > actionWait.toNanos();
    if (worker == null) {
      worker = tools.workerFor(episodeId);
      if (worker != null) {
        begin();
      } else if (late) {
        judge(Map.of(), "no-tools: no tool worker in the cluster");
      }
    } else if (lateAction && awaitingAction) {
      judge(Map.of(), "policy-timeout: " + (run.spec().openAi() ? "the served LLM's adapter" : "the inference server") + " gave no action within " + actionWait);
    } else if (late && pendingId != null) {
      onResult(ToolResult.failed(pendingId, ToolError.TIMEOUT, "no result within " + services().settings().toolTimeout()));
    } else if (late && awaitingSnapshot) {
      judge(Map.of(), "world-unavailable: the tool worker did not return the world state");
    }
    if (run != null && tick == null) scheduleTick();
    return this;
  }
}
