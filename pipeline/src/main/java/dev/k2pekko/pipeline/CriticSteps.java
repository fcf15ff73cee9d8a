package dev.k2pekko.pipeline;

import dev.k2pekko.critic.Critic;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * The critic's part in a run: its (re)trainings after synthesis and after each RL round, and its measurements on
 * held-out evaluation episodes, each asked of this node's {@link Critic} with a deadline. A critic that cannot train
 * or answer is reported with its reason and never fails the run.
 */
final class CriticSteps {
  private final ActorSystem<?> system;
  private final ActorRef<Critic.Command> critic;
  private final String runId;
  private final Duration stageTimeout;
  private final Consumer<Pipeline.Progress> progress;

  /** {@code critic} is null on a node that runs none. */
  CriticSteps(ActorSystem<?> system, ActorRef<Critic.Command> critic, String runId, Duration stageTimeout, Consumer<Pipeline.Progress> progress) {
    this.system = system;
    this.critic = critic;
    this.runId = runId;
    this.stageTimeout = stageTimeout;
    this.progress = progress;
  }

  /**
   * Retrains this node's critic on the judged episodes of stage {@code trainOn} and measures it on the sft evaluation's
   * episodes (held-out tasks, never trained on). A stage the journal holds whole ({@code inJournal} >= 0 episodes: an
   * RL round) is read from the journal when the critic's tap missed some of it (judged on another node, or before a
   * restart). A critic that cannot train (the synthesis of a resumed run: its rejected episodes were only in memory) is
   * reported with its reason; it never fails the run.
   */
  Pipeline.CriticRound retrain(String trainOn, String label, long inJournal) {
    return retrain(List.of(trainOn), label, inJournal);
  }

  /** As {@link #retrain(String, String, long)}, on the episodes of several stages (the synthesis's parts). */
  Pipeline.CriticRound retrain(List<String> trainOn, String label, long inJournal) {
    String heldOut = runId + "-eval-sft";
    long t = System.nanoTime();
    if (critic == null) return Pipeline.CriticRound.failed(label, "eval-sft", since(t), "this node runs no critic");
    progress.accept(new Pipeline.Progress("critic", 0, 1, "training on " + label));
    try {
      if (inJournal >= 0) for (var stage : trainOn) completeFromJournal(stage, inJournal);
      var trained = AskPattern.<Critic.Command, Critic.Trained>askWithStatus(critic,
          r -> new Critic.Retrain(List.copyOf(trainOn), List.of(heldOut), r), CRITIC_TIMEOUT, system.scheduler())
          .toCompletableFuture().get(CRITIC_TIMEOUT.toSeconds() + 10, TimeUnit.SECONDS);
      var ev = trained.evaluation();
      progress.accept(new Pipeline.Progress("critic", 1, 1, String.format("v%d, AUC %.3f on eval-sft", trained.version(), ev.auc())));
      return new Pipeline.CriticRound(label, trained.version(), trained.examples(), trained.accepted(), "eval-sft", ev.episodes(), ev.accepted(), ev.auc(),
          since(t), null);
    } catch (Exception e) {
      var cause = e instanceof java.util.concurrent.ExecutionException && e.getCause() != null ? e.getCause() : e;
      system.log().warn("critic: no training on {}: {}", label, cause.getMessage());
      return Pipeline.CriticRound.failed(label, "eval-sft", since(t), String.valueOf(cause.getMessage()));
    }
  }

  /**
   * The critic's mean score on the rollouts of round {@code stage} at the weights that scored them during the round
   * (asked before it retrains on them), next to the judge's acceptance of the same rollouts: one row of the hacking
   * watch ({@link HackingFlag}). Never fails the run: a critic that cannot answer gives a row with its reason.
   */
  HackingFlag.Round watch(String stage, String label, long inJournal) {
    if (critic == null) return HackingFlag.Round.failed(label, "this node runs no critic");
    try {
      completeFromJournal(stage, inJournal);
      var ev = AskPattern.<Critic.Command, Critic.Evaluation>askWithStatus(critic, r -> new Critic.Evaluate(List.of(stage), r),
          CRITIC_TIMEOUT, system.scheduler()).toCompletableFuture().get(CRITIC_TIMEOUT.toSeconds() + 10, TimeUnit.SECONDS);
      if (ev.episodes() == 0) return HackingFlag.Round.failed(label, "no rollouts of the round held");
      return new HackingFlag.Round(label, ev.version(), ev.episodes(), ev.meanScore(), (double) ev.accepted() / ev.episodes(), false, null);
    } catch (Exception e) {
      var cause = e instanceof java.util.concurrent.ExecutionException && e.getCause() != null ? e.getCause() : e;
      return HackingFlag.Round.failed(label, String.valueOf(cause.getMessage()));
    }
  }

  /**
   * The critic's mean score on the open tasks' rollouts of round {@code stage} (at the weights that rewarded them), next
   * to their hidden success (the rubric training never sees): the hacking watch of open tasks. Asked after {@link #watch},
   * which has completed the round from the journal.
   */
  HackingFlag.Round watchOpen(String stage, String label) {
    if (critic == null) return HackingFlag.Round.failed(label, "this node runs no critic");
    try {
      var ev = AskPattern.<Critic.Command, Critic.Evaluation>askWithStatus(critic, r -> new Critic.Evaluate(List.of(Critic.openStage(stage)), r),
          CRITIC_TIMEOUT, system.scheduler()).toCompletableFuture().get(CRITIC_TIMEOUT.toSeconds() + 10, TimeUnit.SECONDS);
      if (ev.episodes() == 0) return HackingFlag.Round.failed(label, "no open rollouts in the round");
      return new HackingFlag.Round(label, ev.version(), ev.episodes(), ev.meanScore(), (double) ev.accepted() / ev.episodes(), false, null);
    } catch (Exception e) {
      var cause = e instanceof java.util.concurrent.ExecutionException && e.getCause() != null ? e.getCause() : e;
      return HackingFlag.Round.failed(label, String.valueOf(cause.getMessage()));
    }
  }

  /** Hands the critic the journal's episodes of {@code stage} when its tap holds fewer than the journal's {@code inJournal}. */
  private void completeFromJournal(String stage, long inJournal) throws Exception {
    var v = AskPattern.<Critic.Command, Critic.Version>ask(critic, Critic.GetVersion::new, Duration.ofSeconds(10), system.scheduler())
        .toCompletableFuture().get(15, TimeUnit.SECONDS);
    // the critic keeps a stage's open episodes apart (never trained on): the two parts together are the stage
    int tapped = v.perStage().getOrDefault(stage, 0) + v.perStage().getOrDefault(Critic.openStage(stage), 0);
    if (tapped >= inJournal) return;
    var judged = new dev.k2pekko.agents.TrajectoryReplay(system).source(dev.k2pekko.agents.TrajectoryReplay.Filter.ALL)
        .filter(x -> x.trajectory().trajectoryId().startsWith(stage + "/"))
        .map(x -> x.trajectory())
        .runWith(org.apache.pekko.stream.javadsl.Sink.seq(), system)
        .toCompletableFuture().get(stageTimeout.toSeconds(), TimeUnit.SECONDS);
    int kept = AskPattern.<Critic.Command, Integer>ask(critic, r -> new Critic.Replace(stage, List.copyOf(judged), r), Duration.ofSeconds(60),
        system.scheduler()).toCompletableFuture().get(70, TimeUnit.SECONDS);
    system.log().info("critic: {} from the journal: {} episodes (its tap held {})", stage, kept, tapped);
  }

  /** The critic's current weights measured on the episodes of {@code stage}. */
  Pipeline.CriticRound measure(String stage) {
    String name = stage.substring(runId.length() + 1);
    long t = System.nanoTime();
    if (critic == null) return Pipeline.CriticRound.failed(null, name, since(t), "this node runs no critic");
    try {
      var ev = AskPattern.<Critic.Command, Critic.Evaluation>askWithStatus(critic, r -> new Critic.Evaluate(List.of(stage), r),
          CRITIC_TIMEOUT, system.scheduler()).toCompletableFuture().get(CRITIC_TIMEOUT.toSeconds() + 10, TimeUnit.SECONDS);
      return new Pipeline.CriticRound(null, ev.version(), 0, 0, name, ev.episodes(), ev.accepted(), ev.auc(), since(t), null);
    } catch (Exception e) {
      var cause = e instanceof java.util.concurrent.ExecutionException && e.getCause() != null ? e.getCause() : e;
      return Pipeline.CriticRound.failed(null, name, since(t), String.valueOf(cause.getMessage()));
    }
  }

  /** A critic's training takes seconds; this bounds a stuck one. */
  private static final Duration CRITIC_TIMEOUT = Duration.ofMinutes(5);

  private static Duration since(long t) {
    return Duration.ofNanos(System.nanoTime() - t);
  }
}
