package dev.k2pekko.agents.inference;

import dev.k2pekko.agents.LocalOnly;
import dev.k2pekko.agents.policy.Action;
import dev.k2pekko.agents.policy.LearnedPolicy;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.model.Decoder;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.protocol.Step;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ForkJoinPool;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.receptionist.Receptionist;

/**
 * One per node: serves the learned policy to the node's agents. Requests are collected for a batching window (or
 * until {@code maxBatch} are waiting) and run as one batch on a compute pool, one batch at a time; each episode
 * keeps its key/value cache between its requests. A batch runs at the weights it started with: an episode is
 * pinned to the version that began it (its {@code pi_old}), and new versions, verified by their SHA-256 before the
 * swap, apply to episodes that begin afterwards.
 */
public final class InferenceServer extends AbstractBehavior<InferenceServer.Command> {
  public sealed interface Command {}

  public record Begin(String episodeId, Task task, long seed, double temperature, ActorRef<Reply> replyTo) implements Command, LocalOnly {}

  public record Continue(String episodeId, Step previous, ActorRef<Reply> replyTo) implements Command, LocalOnly {}

  /**
   * One action for a conversation held by the caller (k2 serve): the prompt and the steps so far are read into the
   * view afresh, no session is kept. Batched with the agents' requests, at the current weights.
   */
  public record Act(String requestId, String prompt, List<Step> history, long seed, double temperature, LearnedPolicy.Limits limits,
                    ActorRef<Reply> replyTo) implements Command, LocalOnly {}

  public record End(String episodeId) implements Command, LocalOnly {}

  /**
   * The next action of an episode, or why there is none ({@code error}); {@code tokenLogProbs}: log pi of each of the
   * action's {@code tokens} (null with an error).
   */
  public record Reply(String episodeId, Action action, long version, double logProb, int[] tokens, String error, double[] tokenLogProbs)
      implements LocalOnly {
    public Reply(String episodeId, Action action, long version, double logProb, int[] tokens, String error) {
      this(episodeId, action, version, logProb, tokens, error, null);
    }
  }

  public record Stats(long version, long requests, long batches, long maxBatchSeen, long weightsRejected, int sessions) implements LocalOnly {}

  public record GetStats(ActorRef<Stats> replyTo) implements Command, LocalOnly {}

  /** A weights version to verify and swap in (set directly for offline use; the parameter server's come as {@link Published}). */
  public record NewWeights(WeightsSnapshot snapshot) implements Command, LocalOnly {}

  /** A version the parameter server published (under {@link PsProtocol#WEIGHTS}), as it came. */
  private record Published(PsProtocol.Weights weights) implements Command, LocalOnly {}

  private record Flush() implements Command, LocalOnly {}

  private record Done(List<Result> results) implements Command, LocalOnly {}

  private record Request(Command cmd) {}

  private record Result(String episodeId, LearnedPolicy.Run run, Reply reply, ActorRef<Reply> replyTo) {}

  /**
   * {@code threads}: the batch's episodes are stepped on this many threads of the server's own pool. The JVM's common
   * pool, used before, has one thread fewer than the processors: one on the 2-core machine, where the default run's
   * evaluations and the start of each RL round (agents decoding, learners waiting for whole task groups) then used one
   * core of two (BENCHMARKS.md, "Session 14").
   */
  public record Settings(Duration window, int maxBatch, int threads) {
    public Settings {
      if (maxBatch < 1) throw new IllegalArgumentException("k2.inference.max-batch must be >= 1, got " + maxBatch);
      if (threads < 1) throw new IllegalArgumentException("k2.inference.threads must be >= 1, got " + threads);
    }

    /** As many threads as the processors this JVM may use. */
    public Settings(Duration window, int maxBatch) {
      this(window, maxBatch, Runtime.getRuntime().availableProcessors());
    }
  }

  public static Behavior<Command> create(PolicyFormat format, Settings settings) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new InferenceServer(ctx, timers, format, settings)));
  }

  private final TimerScheduler<Command> timers;
  private final PolicyFormat format;
  private final Settings settings;
  // a parallel stream started inside a ForkJoinPool's task runs on that pool: the batch gets all of its threads
  private final ForkJoinPool pool;
  private final Map<String, LearnedPolicy.Run> sessions = new HashMap<>();
  private List<Request> queue = new ArrayList<>();
  private boolean busy;
  private LearnedPolicy policy;
  private long requests, batches, maxBatchSeen, weightsRejected;

  private InferenceServer(ActorContext<Command> ctx, TimerScheduler<Command> timers, PolicyFormat format, Settings settings) {
    super(ctx);
    this.timers = timers;
    this.format = format;
    this.settings = settings;
    this.pool = new ForkJoinPool(settings.threads());
    // the parameter server finds every node's inference server under this key
    var weights = ctx.messageAdapter(PsProtocol.Weights.class, Published::new);
    ctx.getSystem().receptionist().tell(Receptionist.register(PsProtocol.WEIGHTS, weights));
  }

  @Override public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Begin.class, this::enqueue)
        .onMessage(Continue.class, this::enqueue)
        .onMessage(Act.class, this::enqueue)
        .onMessage(End.class, e -> { sessions.remove(e.episodeId()); return this; })
        .onMessage(NewWeights.class, w -> onWeights(w.snapshot()))
        .onMessage(Published.class, this::onPublished)
        .onMessage(Flush.class, f -> { runBatch(); return this; })
        .onMessage(Done.class, this::onDone)
        .onSignal(PostStop.class, stop -> { pool.shutdownNow(); return this; })
        .onMessage(GetStats.class, g -> {
          g.replyTo().tell(new Stats(policy == null ? -1 : policy.version(), requests, batches, maxBatchSeen, weightsRejected, sessions.size()));
          return this;
        })
        .build();
  }

  private Behavior<Command> onPublished(Published p) {
    if (policy != null && p.weights().version() <= policy.version()) return this; // as onWeights: an old version is no news
    WeightsSnapshot snap;
    try {
      snap = snapshot(p.weights());
    } catch (WeightsSnapshot.CorruptWeightsException e) {
      return refused(e);
    }
    return onWeights(snap);
  }

  /**
   * The published weights as a snapshot, to verify before use: the model's shape comes as plain numbers, and a shape no
   * model can have is refused like a wrong checksum.
   */
  public static WeightsSnapshot snapshot(PsProtocol.Weights w) {
    var sh = w.shape();
    ModelConfig config;
    try {
      config = new ModelConfig(sh.vocab(), sh.dModel(), sh.layers(), sh.heads(), sh.context(), sh.mlpRatio(), sh.normEps());
    } catch (IllegalArgumentException e) {
      throw new WeightsSnapshot.CorruptWeightsException("version " + w.version() + ": " + e.getMessage());
    }
    return new WeightsSnapshot(w.version(), config, w.names(), w.data(), w.sha256());
  }

  private Behavior<Command> refused(WeightsSnapshot.CorruptWeightsException e) {
    weightsRejected++;
    getContext().getLog().error("weights refused, keeping version {}: {}", policy == null ? "none" : policy.version(), e.getMessage());
    return this;
  }

  private Behavior<Command> onWeights(WeightsSnapshot snap) {
    if (policy != null && snap.version() <= policy.version()) return this;
    try {
      snap.verify();
    } catch (WeightsSnapshot.CorruptWeightsException e) {
      return refused(e);
    }
    policy = new LearnedPolicy(format, new Decoder(snap.toModel(new ReferenceOps())), snap.version(), 0.0);
    return this;
  }

  private Behavior<Command> enqueue(Command c) {
    requests++;
    queue.add(new Request(c));
    if (queue.size() >= settings.maxBatch()) runBatch();
    else if (queue.size() == 1) timers.startSingleTimer("flush", new Flush(), settings.window());
    return this;
  }

  private void runBatch() {
    if (busy || queue.isEmpty()) return;
    timers.cancel("flush");
    var batch = queue.size() > settings.maxBatch() ? new ArrayList<>(queue.subList(0, settings.maxBatch())) : queue;
    queue = queue.size() > settings.maxBatch() ? new ArrayList<>(queue.subList(settings.maxBatch(), queue.size())) : new ArrayList<>();
    busy = true;
    batches++;
    maxBatchSeen = Math.max(maxBatchSeen, batch.size());
    // Everything a job touches is handed over here: the sessions of its episodes and the current weights.
    var jobs = new ArrayList<Runnable>();
    var results = new Result[batch.size()];
    var current = policy;
    for (int i = 0; i < batch.size(); i++) {
      int at = i;
      switch (batch.get(i).cmd()) {
        case Begin b -> jobs.add(() -> {
          if (current == null) {
            results[at] = new Result(b.episodeId(), null, new Reply(b.episodeId(), null, -1, 0, null, "no-policy: no weights published yet"), b.replyTo());
            return;
          }
          var run = current.withTemperature(b.temperature()).start(b.task(), b.seed());
          var action = run.next(null);
          results[at] = new Result(b.episodeId(), run, new Reply(b.episodeId(), action, current.version(), run.logProb(), run.lastAction(), null, run.lastLogProbs()), b.replyTo());
        });
        case Continue c -> {
          var run = sessions.get(c.episodeId());
          jobs.add(() -> {
            if (run == null) {
              results[at] = new Result(c.episodeId(), null, new Reply(c.episodeId(), null, -1, 0, null, "no-session: unknown episode " + c.episodeId()), c.replyTo());
              return;
            }
            var action = run.next(c.previous());
            results[at] = new Result(c.episodeId(), run, new Reply(c.episodeId(), action, run.version(), run.logProb(), run.lastAction(), null, run.lastLogProbs()), c.replyTo());
          });
        }
        case Act a -> jobs.add(() -> {
          if (current == null) {
            results[at] = new Result(a.requestId(), null, new Reply(a.requestId(), null, -1, 0, null, "no-policy: no weights loaded yet"), a.replyTo());
            return;
          }
          var run = current.withTemperature(a.temperature()).resume(a.prompt(), a.history(), a.seed());
          var action = run.next(null, a.limits());
          results[at] = new Result(a.requestId(), null, new Reply(a.requestId(), action, current.version(), run.logProb(), run.lastAction(), null, run.lastLogProbs()), a.replyTo());
        });
        default -> throw new IllegalStateException("not a request: " + batch.get(i).cmd());
      }
    }
    var self = getContext().getSelf();
    CompletableFuture.runAsync(() -> jobs.parallelStream().forEach(Runnable::run), pool)
        .whenComplete((ok, failure) -> {
          var out = new ArrayList<Result>();
          for (int i = 0; i < results.length; i++) {
            if (results[i] != null) out.add(results[i]);
            else {
              var c = batch.get(i).cmd();
              String id = switch (c) {
                case Begin b -> b.episodeId();
                case Act a -> a.requestId();
                default -> ((Continue) c).episodeId();
              };
              var replyTo = switch (c) {
                case Begin b -> b.replyTo();
                case Act a -> a.replyTo();
                default -> ((Continue) c).replyTo();
              };
              out.add(new Result(id, null, new Reply(id, null, -1, 0, null, "policy-failure: " + (failure == null ? "no result" : failure.getMessage())), replyTo));
            }
          }
          self.tell(new Done(out));
        });
  }

  private Behavior<Command> onDone(Done d) {
    busy = false;
    for (var r : d.results()) {
      if (r.run() != null) sessions.put(r.episodeId(), r.run());
      else sessions.remove(r.episodeId());
      r.replyTo().tell(r.reply());
    }
    runBatch();
    return this;
  }
}
