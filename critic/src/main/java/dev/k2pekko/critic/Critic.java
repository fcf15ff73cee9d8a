package dev.k2pekko.critic;

import com.typesafe.config.Config;
import dev.k2pekko.agents.LocalOnly;
import dev.k2pekko.protocol.KryoWire;
import dev.k2pekko.protocol.Trajectory;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;
import org.apache.pekko.pattern.StatusReply;

/**
 * The node's critic service, beside its inference server: it holds the critic's weights (a version number per
 * training, 0 for the random initial ones), answers score requests with them, and retrains on request.
 *
 * <p>Its data is every episode the node's judge judges, with the verdict ({@code Observe}, from the judge's tap): the
 * teacher's rejected synthesis episodes too (the journal keeps only the accepted ones), the RL rollouts and the
 * evaluation episodes (never persisted). Each episode is kept as its features and label under its stage, the run id
 * before the first '/' of its trajectory id ({@code <run>-synth}, {@code <run>-rl2}, {@code <run>-eval-sft}); an open
 * task's episodes under the stage's open part ({@code <run>-rl2:open}), which it may be measured on but is never trained
 * on (their verdict is the hidden rubric, docs/LOOP.md "Open tasks"), so a stage trained on holds no open episode. A
 * stage the journal holds whole (an RL round) can be handed over from it instead ({@code Replace}).
 * {@code Retrain} trains on the named stages, warm-started from the current weights, with a replay of as many examples
 * again drawn from the stages trained on before (so a round of mostly accepted rollouts does not wash out what the
 * synthesis taught), then measures the ROC AUC of the new weights on the evaluation stages, which it refuses to have
 * trained on. Training runs on the blocking dispatcher; scores keep coming from the weights in use meanwhile, and
 * further retrain requests wait their turn.
 */
public final class Critic extends AbstractBehavior<Critic.Command> {
  /** Registered with the receptionist, so that any node (a learner mixing the score into its reward) finds it. */
  public static final ServiceKey<Command> KEY = ServiceKey.create(Command.class, "k2-critic");

  public sealed interface Command {}

  /** The probability that the judge accepts {@code trajectory} (its verdict is not read), under the current weights. */
  public record Score(Trajectory trajectory, ActorRef<Scored> replyTo) implements Command, KryoWire {}

  public record Scored(String trajectoryId, double accept, long version) implements KryoWire {}

  /** Scores of several trajectories at one weights version, in order. */
  public record ScoreAll(List<Trajectory> trajectories, ActorRef<ScoredAll> replyTo) implements Command, KryoWire {}

  public record ScoredAll(double[] accept, long version) implements KryoWire {}

  /**
   * Train on the judged episodes of the stages {@code trainOn} (plus the replay), then measure the AUC on those of
   * {@code evaluateOn} (empty: no measurement). Fails when none of {@code trainOn} was observed, or when an evaluation
   * stage was ever trained on.
   */
  public record Retrain(List<String> trainOn, List<String> evaluateOn, ActorRef<StatusReply<Trained>> replyTo) implements Command, KryoWire {}

  /**
   * @param examples trained on (fresh and replayed), {@code accepted} of them accepted; @param loss the mean training
   *     loss of the last epoch; @param evaluation the AUC on the evaluation stages, null when none was asked for
   */
  public record Trained(long version, int examples, int accepted, int steps, double firstLoss, double loss, Evaluation evaluation)
      implements KryoWire {}

  /**
   * The AUC of one weights version on the episodes of {@code stages}: NaN when they are all accepted or all rejected.
   * {@code meanScore}: the mean of its scores over them (NaN for none), beside {@code accepted / episodes}, the judge's.
   */
  public record Evaluation(long version, List<String> stages, int episodes, int accepted, double auc, double meanScore) implements KryoWire {}

  /** The AUC of the current weights on the judged episodes of {@code stages} (fails when one was trained on). */
  public record Evaluate(List<String> stages, ActorRef<StatusReply<Evaluation>> replyTo) implements Command, KryoWire {}

  public record GetVersion(ActorRef<Version> replyTo) implements Command, KryoWire {}

  /** @param examplesHeld judged episodes held, over all stages; @param perStage how many of each stage */
  public record Version(long version, long examplesHeld, java.util.LinkedHashMap<String, Integer> perStage) implements KryoWire {}

  /**
   * The judged episodes of {@code stage} as the journal holds them (an RL round's rollouts, all persisted): they
   * replace what the tap gave for that stage, which misses episodes judged on other nodes or before a restart.
   * Node-local (the list is large); answered with the number kept.
   */
  public record Replace(String stage, List<Trajectory> judged, ActorRef<Integer> replyTo) implements Command, LocalOnly {}

  /** The current weights themselves, for a scorer on this node ({@link CriticModel} is immutable; megabytes: local only). */
  public record GetWeights(ActorRef<Weights> replyTo) implements Command, LocalOnly {}

  public record Weights(long version, int buckets, CriticModel model) implements LocalOnly {
    /** The probability that the judge accepts {@code t}, as the actor would answer at this version. */
    public double score(Trajectory t) {
      return model.score(TrajectoryFeatures.of(t, buckets));
    }
  }

  /** A judged episode from the judge's tap. */
  private record Observe(Trajectory trajectory) implements Command, LocalOnly {}

  private record Done(Retrain request, CriticTrainer.Trained trained, int examples, int accepted, Evaluation evaluation, Throwable failure)
      implements Command, LocalOnly {}

  /**
   * @param buckets feature hash buckets; @param hidden the hidden layer's width; @param replay examples replayed from
   *     earlier stages per fresh example; @param maxPerStage judged episodes kept per stage (later ones are counted,
   *     not kept); @param maxStages stages kept (the oldest is dropped); @param maskUntrained whether a bucket no
   *     training example held counts as 0 in a score ({@link CriticModel}; off: its random initial row counts, as before)
   */
  public record Settings(int buckets, int hidden, CriticTrainer.Settings training, double replay, int maxPerStage, int maxStages,
                         boolean maskUntrained) {
    public Settings {
      if (buckets < 2 || hidden < 1) throw new IllegalArgumentException("k2.critic.buckets must be >= 2 and hidden >= 1");
      if (!(replay >= 0)) throw new IllegalArgumentException("k2.critic.replay must be >= 0, got " + replay);
      if (maxPerStage < 1 || maxStages < 1) throw new IllegalArgumentException("k2.critic.max-per-stage and max-stages must be at least 1");
    }

    public static Settings fromConfig(Config config) {
      var c = config.getConfig("k2.critic");
      return new Settings(c.getInt("buckets"), c.getInt("hidden"), new CriticTrainer.Settings(c.getInt("epochs"), c.getInt("batch-size"),
          c.getDouble("lr"), c.getDouble("weight-decay"), c.getLong("seed")), c.getDouble("replay"), c.getInt("max-per-stage"),
          c.getInt("max-stages"), c.getBoolean("mask-untrained"));
    }
  }

  /**
   * @param subscribe called once with the ref the judge's tap should send every judged trajectory to
   *     ({@code NodeServices.onJudged} on a node; a test feeds it directly)
   */
  public static Behavior<Command> create(Settings settings, Consumer<ActorRef<Trajectory>> subscribe) {
    return Behaviors.setup(ctx -> {
      subscribe.accept(ctx.messageAdapter(Trajectory.class, Observe::new));
      ctx.getSystem().receptionist().tell(Receptionist.register(KEY, ctx.getSelf()));
      return new Critic(ctx, settings);
    });
  }

  private final Settings settings;
  private final Map<String, List<CriticTrainer.Example>> byStage = new LinkedHashMap<>();
  private final LinkedHashSet<String> trainedOn = new LinkedHashSet<>();
  private final ArrayDeque<Retrain> waiting = new ArrayDeque<>();
  private CriticModel model;
  private long version;
  private long held;
  private boolean training;

  private Critic(ActorContext<Command> ctx, Settings settings) {
    super(ctx);
    this.settings = settings;
    this.model = scoring(CriticModel.init(settings.buckets(), settings.hidden(), settings.training().seed()));
  }

  @Override public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Observe.class, this::onObserve)
        .onMessage(Score.class, s -> {
          s.replyTo().tell(new Scored(s.trajectory().trajectoryId(), model.score(TrajectoryFeatures.of(s.trajectory(), settings.buckets())), version));
          return this;
        })
        .onMessage(ScoreAll.class, s -> {
          double[] out = new double[s.trajectories().size()];
          for (int i = 0; i < out.length; i++) out[i] = model.score(TrajectoryFeatures.of(s.trajectories().get(i), settings.buckets()));
          s.replyTo().tell(new ScoredAll(out, version));
          return this;
        })
        .onMessage(Retrain.class, this::onRetrain)
        .onMessage(Done.class, this::onDone)
        .onMessage(Evaluate.class, this::onEvaluate)
        .onMessage(GetVersion.class, g -> {
          var perStage = new java.util.LinkedHashMap<String, Integer>();
          byStage.forEach((k, v) -> perStage.put(k, v.size()));
          g.replyTo().tell(new Version(version, held, perStage));
          return this;
        })
        .onMessage(Replace.class, this::onReplace)
        .onMessage(GetWeights.class, g -> {
          g.replyTo().tell(new Weights(version, settings.buckets(), model));
          return this;
        })
        .build();
  }

  /** The stage of a trajectory: its run id, the part of its id before the first '/'. */
  public static String stageOf(String trajectoryId) {
    int slash = trajectoryId.indexOf('/');
    return slash < 0 ? trajectoryId : trajectoryId.substring(0, slash);
  }

  /** The category of the open tasks, whose verdict (the hidden rubric) the critic never trains on. */
  public static final String OPEN_CATEGORY = "open";

  /** What is appended to a stage's name for its open tasks' episodes: {@code <run>-rl2:open}. */
  public static final String OPEN_SUFFIX = ":open";

  /**
   * Where the critic keeps a judged trajectory: its stage, or for an open task's episode the stage's open part
   * ({@link #openStage}), which it can be measured on (the hacking watch of open tasks) but never trained on.
   */
  public static String keptUnder(Trajectory t) {
    String stage = stageOf(t.trajectoryId());
    return OPEN_CATEGORY.equals(t.category()) ? openStage(stage) : stage;
  }

  /** The open tasks' part of {@code stage}. */
  public static String openStage(String stage) {
    return stage + OPEN_SUFFIX;
  }

  private Behavior<Command> onObserve(Observe o) {
    observe(o.trajectory());
    return this;
  }

  private Behavior<Command> onReplace(Replace r) {
    for (var stage : List.of(r.stage(), openStage(r.stage()))) {
      var old = byStage.remove(stage);
      if (old != null) held -= old.size();
    }
    int kept = 0;
    for (var t : r.judged()) {
      if (t.verdict() != null && stageOf(t.trajectoryId()).equals(r.stage()) && observe(t)) kept++;
    }
    r.replyTo().tell(kept);
    return this;
  }

  /** Keeps a judged trajectory's features and label under its stage (an open task's: its open part); false when it is not kept. */
  private boolean observe(Trajectory t) {
    if (t.verdict() == null) return false;
    String stage = keptUnder(t);
    var list = byStage.get(stage);
    if (list == null) {
      if (byStage.size() >= settings.maxStages()) {
        var oldest = byStage.keySet().iterator().next();
        held -= byStage.remove(oldest).size();
        getContext().getLog().info("critic: dropped the episodes of stage {} (more than {} stages held)", oldest, settings.maxStages());
      }
      byStage.put(stage, list = new ArrayList<>());
    }
    if (list.size() >= settings.maxPerStage()) return false;
    list.add(new CriticTrainer.Example(TrajectoryFeatures.of(t, settings.buckets()), t.verdict().accepted()));
    held++;
    return true;
  }

  private Behavior<Command> onRetrain(Retrain r) {
    waiting.add(r);
    startNext();
    return this;
  }

  private void startNext() {
    while (!training && !waiting.isEmpty()) {
      var r = waiting.poll();
      var problem = refusal(r);
      if (problem != null) {
        r.replyTo().tell(StatusReply.error(problem));
        continue;
      }
      var fresh = new ArrayList<CriticTrainer.Example>();
      for (var s : r.trainOn()) fresh.addAll(byStage.getOrDefault(s, List.of()));
      var data = new ArrayList<>(fresh);
      var before = new ArrayList<CriticTrainer.Example>();
      for (var s : trainedOn) if (!r.trainOn().contains(s)) before.addAll(byStage.getOrDefault(s, List.of()));
      var rnd = new SplittableRandom(settings.training().seed() + version + 1);
      long replay = before.isEmpty() ? 0 : Math.round(settings.replay() * fresh.size());
      for (long i = 0; i < replay; i++) data.add(before.get(rnd.nextInt(before.size())));
      var eval = examples(r.evaluateOn());
      trainedOn.addAll(r.trainOn());
      training = true;
      var start = model;
      long next = version + 1;
      var executor = getContext().getSystem().dispatchers().lookup(DispatcherSelector.blocking());
      getContext().pipeToSelf(CompletableFuture.supplyAsync(() -> {
        var trained = CriticTrainer.train(start, data, settings.training());
        return new Object[] {trained, r.evaluateOn().isEmpty() ? null : evaluation(scoring(trained.model()), next, r.evaluateOn(), eval)};
      }, executor), (res, failure) -> {
        int accepted = (int) data.stream().filter(CriticTrainer.Example::accepted).count();
        if (failure != null) return new Done(r, null, data.size(), accepted, null, failure);
        return new Done(r, (CriticTrainer.Trained) res[0], data.size(), accepted, (Evaluation) res[1], null);
      });
    }
  }

  /** Why a retrain request cannot be served, or null. */
  private String refusal(Retrain r) {
    if (r.trainOn().isEmpty()) return "critic: no stage to train on";
    // an open task's verdict is its hidden rubric: training never sees it (docs/LOOP.md, "Open tasks")
    for (var s : r.trainOn()) if (s.endsWith(OPEN_SUFFIX)) return "critic: " + s + " holds open tasks' episodes, never trained on";
    long fresh = 0;
    for (var s : r.trainOn()) fresh += byStage.getOrDefault(s, List.of()).size();
    if (fresh == 0) return "critic: this node judged no episode of " + r.trainOn() + " (a stage judged before a restart, or on another node?)";
    for (var s : r.evaluateOn()) {
      if (trainedOn.contains(s) || r.trainOn().contains(s)) return "critic: evaluation stage " + s + " was trained on";
    }
    return null;
  }

  /** The model as this node scores with it: with or without the untrained buckets ({@code k2.critic.mask-untrained}). */
  private CriticModel scoring(CriticModel m) {
    return settings.maskUntrained() ? m : m.unmasked();
  }

  private Behavior<Command> onDone(Done d) {
    training = false;
    if (d.failure() != null) {
      getContext().getLog().error("critic: training on {} failed: {}", d.request().trainOn(), d.failure().toString());
      d.request().replyTo().tell(StatusReply.error("critic: training failed: " + d.failure()));
    } else {
      model = scoring(d.trained().model());
      version++;
      var t = d.trained();
      d.request().replyTo().tell(StatusReply.success(new Trained(version, d.examples(), d.accepted(), t.steps(), t.firstEpochLoss(),
          t.lastEpochLoss(), d.evaluation())));
    }
    startNext();
    return this;
  }

  private Behavior<Command> onEvaluate(Evaluate e) {
    for (var s : e.stages()) {
      if (trainedOn.contains(s)) {
        e.replyTo().tell(StatusReply.error("critic: evaluation stage " + s + " was trained on"));
        return this;
      }
    }
    e.replyTo().tell(StatusReply.success(evaluation(model, version, e.stages(), examples(e.stages()))));
    return this;
  }

  private List<CriticTrainer.Example> examples(List<String> stages) {
    var out = new ArrayList<CriticTrainer.Example>();
    for (var s : stages) out.addAll(byStage.getOrDefault(s, List.of()));
    return out;
  }

  static Evaluation evaluation(CriticModel m, long version, List<String> stages, List<CriticTrainer.Example> examples) {
    double[] scores = new double[examples.size()];
    boolean[] labels = new boolean[examples.size()];
    int accepted = 0;
    double sum = 0;
    for (int i = 0; i < scores.length; i++) {
      scores[i] = m.score(examples.get(i).features());
      sum += scores[i];
      labels[i] = examples.get(i).accepted();
      if (labels[i]) accepted++;
    }
    return new Evaluation(version, List.copyOf(stages), scores.length, accepted, Auc.of(scores, labels), scores.length == 0 ? Double.NaN : sum / scores.length);
  }
}
