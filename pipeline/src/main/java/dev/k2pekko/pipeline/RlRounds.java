package dev.k2pekko.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import dev.k2pekko.agents.Agent;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The RL rounds: per round, K rollouts per training task from the current policy, all persisted, consumed by the
 * learners with the K2 loss; then a checkpoint (a resume after the round starts from its weights), the critic's
 * hacking watch on the round's rollouts and its retraining on them. A round the journal holds only in part (a crash)
 * is completed at the restored weights with the same tasks; one it holds whole is not rolled out again.
 */
final class RlRounds {
  /**
   * Per round in order: the rollouts (all rounds together), the judge's acceptance of the verifiable tasks' rollouts,
   * the difficulty weights its tasks were drawn by (null: uniform; a list that may hold nulls), the critic's retrainings
   * and the hacking watch's rows, on the verifiable rollouts and on the open ones (empty without k2.open.rl-share).
   */
  record Done(long rollouts, double[] roundSuccess, List<double[]> mixes, List<Pipeline.CriticRound> critic, List<HackingFlag.Round> watched,
              List<HackingFlag.Round> openWatched) {}

  /** One round: its rollouts, the fraction accepted, the task mix it was drawn by and the one it leaves to the next round. */
  private record Round(long rollouts, double success, double[] mix, double[] nextMix) {
    static Round of(JsonNode rec) {
      return new Round(rec.get("rollouts").asLong(), rec.get("success").isNull() ? Double.NaN : rec.get("success").asDouble(), PipelineRecord.doubles(rec.get("mix")),
          PipelineRecord.doubles(rec.get("next-mix")));
    }

    JsonNode toJson() {
      var rec = PipelineRecord.object().put("rollouts", rollouts);
      if (Double.isNaN(success)) rec.putNull("success"); // a round of open tasks only
      else rec.put("success", success);
      rec.set("mix", PipelineRecord.array(mix));
      rec.set("next-mix", PipelineRecord.array(nextMix));
      return rec;
    }
  }

  private final Pipeline.Spec spec;
  private final RunLedger ledger;
  private final ClusterProbe probe;
  private final JournalStats journal;
  private final EpisodeRuns episodes;
  private final CriticSteps critics;
  private final int maxSteps;

  private final PolicyTasks tasks;

  RlRounds(Pipeline.Spec spec, RunLedger ledger, ClusterProbe probe, JournalStats journal, EpisodeRuns episodes, CriticSteps critics, int maxSteps,
           PolicyTasks tasks) {
    this.tasks = tasks;
    this.spec = spec;
    this.ledger = ledger;
    this.probe = probe;
    this.journal = journal;
    this.episodes = episodes;
    this.critics = critics;
    this.maxSteps = maxSteps;
  }

  /** Runs every round; {@code consumed}: the trajectories the learners have consumed before the first (the synthesis's). */
  Done run(long consumed) throws Exception {
    long target = consumed, rollouts = 0;
    double[] roundSuccess = new double[spec.rlRounds()];
    Arrays.fill(roundSuccess, Double.NaN);
    double[] weights = null;
    var mixes = new ArrayList<double[]>();
    var critic = new ArrayList<Pipeline.CriticRound>();
    var watched = new ArrayList<HackingFlag.Round>();
    var openWatched = new ArrayList<HackingFlag.Round>();
    for (int r = 1; r <= spec.rlRounds(); r++) {
      String key = "rl-" + r, stage = "rl " + r + "/" + spec.rlRounds(), name = spec.runId() + "-rl" + r;
      var recorded = ledger.done(key);
      Round round;
      if (recorded != null) {
        round = Round.of(recorded);
        ledger.note(String.format("rl %d: done before (%,d rollouts)", r, round.rollouts()));
      } else {
        round = rollOut(r, stage, name, weights);
      }
      roundSuccess[r - 1] = round.success();
      mixes.add(round.mix());
      weights = round.nextMix();
      rollouts += round.rollouts();
      target += round.rollouts();
      probe.awaitConsumed(target, stage);
      probe.awaitPublished();
      if (recorded == null) {
        probe.checkpoint(); // a resume after this round starts from its weights, not from an older checkpoint's
        ledger.save(key, round.toJson());
      }
      watched.add(critics.watch(name, "rl " + r, round.rollouts()));
      // the open rollouts: the critic's mean (it rewarded them) against the hidden rubric, before it retrains on the rest
      if (spec.open().rlShare() > 0) openWatched.add(critics.watchOpen(name, "rl " + r));
      critic.add(critics.retrain(name, "rl " + r, round.rollouts()));
    }
    return new Done(rollouts, roundSuccess, mixes, List.copyOf(critic), List.copyOf(watched), List.copyOf(openWatched));
  }

  /** Round {@code r}'s rollouts, drawn by the task mix {@code mix}: rolled out, or completed from what the journal holds of them. */
  private Round rollOut(int r, String stage, String name, double[] mix) throws Exception {
    int agents = Math.min(spec.rlTasks(), 1000);
    int tasksPerAgent = (spec.rlTasks() + agents - 1) / agents;
    long expected = (long) agents * tasksPerAgent * spec.rlRollouts();
    String prefix = name + "/";
    long before = ledger.again() ? journal.count(prefix) : 0;
    Map<String, Long> counters;
    if (before >= expected) {
      counters = journal.counters(prefix);
      ledger.note(String.format("rl %d: its %,d rollouts were all in the journal; not rolled out again", r, before));
    } else {
      var sum = episodes.run(name, agents, tasksPerAgent * spec.rlRollouts(),
          tasks.core() ? new Agent.EpisodeSpec(Agent.Tasks.TRAIN, "learned", spec.rlTemperature(), spec.rlRollouts(), mix, spec.open().rlShare())
              // kg tasks draw their difficulty from the seed: no prioritized mix, no open tasks
              : new Agent.EpisodeSpec(tasks.train(), "learned", spec.rlTemperature(), spec.rlRollouts()), Agent.PersistMode.ALL, stage);
      counters = before > 0 ? journal.counters(prefix) : sum.counters();
      if (before > 0) {
        ledger.note(String.format("rl %d: completed (%,d of its %,d rollouts were in the journal and kept; the rest sampled at the restored weights)",
            r, before, expected));
      } else if (ledger.again()) {
        ledger.note(String.format("rl %d: rolled out (none of its rollouts was in the journal)", r));
      }
    }
    long round = before > 0 ? counters.getOrDefault("episodes", 0L) : counters.getOrDefault("persisted", 0L);
    if (round != expected) throw new IllegalStateException(stage + ": the journal holds " + round + " of the round's " + expected + " rollouts");
    // the verifiable tasks' acceptance: an open rollout's verdict is its hidden rubric (in the open hacking watch instead)
    long open = counters.getOrDefault("category/open/episodes", 0L), openOk = counters.getOrDefault("category/open/accepted", 0L);
    long verifiable = counters.getOrDefault("episodes", 0L) - open;
    double success = verifiable == 0 ? Double.NaN : (double) (counters.getOrDefault("accepted", 0L) - openOk) / verifiable;
    return new Round(round, success, mix, spec.rlPrioritized() ? priorities(counters, maxSteps) : mix);
  }

  /**
   * Prioritized sampling of RL tasks (the K2 report's): half of a round's tasks are drawn uniformly over the
   * difficulties, half in proportion to the previous round's failure rate at each difficulty (its rollouts on
   * training tasks; held-out results never steer training). Null (uniform) without a previous round or without
   * failures.
   */
  static double[] priorities(Map<String, Long> previousRound, int maxSteps) {
    double[] fail = new double[maxSteps];
    double total = 0;
    for (int d = 1; d <= maxSteps; d++) {
      long n = previousRound.getOrDefault("difficulty/" + d + "/episodes", 0L), ok = previousRound.getOrDefault("difficulty/" + d + "/accepted", 0L);
      fail[d - 1] = n == 0 ? 0 : 1.0 - (double) ok / n;
      total += fail[d - 1];
    }
    if (!(total > 0)) return null;
    double[] w = new double[maxSteps];
    for (int d = 0; d < maxSteps; d++) w[d] = 0.5 / maxSteps + 0.5 * fail[d] / total;
    return w;
  }
}
