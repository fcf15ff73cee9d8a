package dev.k2pekko.trainer;

import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.model.Losses;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.Sequence;
import dev.k2pekko.model.TokenBatch;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.protocol.Trajectory;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The loss and gradients of one learner step, plain code without actors: SFT on the teacher's accepted trajectories,
 * or RL on whole task groups of rollouts with the objective the learner is set to ({@link Learner.RlObjective}).
 */
final class StepLoss {
  private StepLoss() {}

  /** A step's mean loss, gradients (empty: nothing to learn), per-head max logits, tokens trained and mean reward. */
  record Result(double loss, Map<String, float[]> grads, double[][] maxLogit, long tokens, double reward) {
    Result(double loss, Map<String, float[]> grads, double[][] maxLogit, long tokens) {
      this(loss, grads, maxLogit, tokens, Double.NaN);
    }
  }

  /** Next-token cross-entropy on every action of the trajectories (one example per action). */
  static Result sft(PolicyModel model, PolicyFormat format, List<Trajectory> trajectories) {
    var seqs = new ArrayList<Sequence>();
    for (var t : trajectories) for (var seq : format.examples(t)) if (seq.length() <= model.config().context() + 1) seqs.add(seq);
    if (seqs.isEmpty()) return new Result(0, Map.of(), zeros(model), 0);
    var tb = TokenBatch.of(seqs, 0);
    var r = Losses.nextToken(model, tb);
    return new Result(r.loss(), floats(r.grads()), r.maxLogit(), tb.ids().length);
  }

  /**
   * The RL loss over task groups, gradients averaged over the groups that carry a signal. A group carries one when it
   * has at least two rollouts that sampled something and their rewards differ: equal rewards give every advantage 0
   * and, on-policy, log pi - log pi_old is 0 up to rounding, so the K2 gradient would be rounding noise, which Muon's
   * orthogonalisation and Adam's normalisation turn into full-size steps; and under {@code FILTERED} a group that
   * all succeeded or all failed says nothing about which of the policy's choices made the difference.
   */
  static Result rl(PolicyModel model, PolicyFormat format, Collection<List<Trajectory>> groups, Learner.RlObjective objective, double tau, long version) {
    return rl(model, format, groups, objective, tau, version, Reward.Weights.DEFAULT, t -> Double.NaN);
  }

  /**
   * As above, with the reward mixed by {@code weights} ({@link Reward}); {@code critic} gives the critic's score of a
   * rollout (asked only where the reward reads it). Under {@code FILTERED} a group's successes ({@link Reward#success};
   * an open task's group: {@link Reward#openSuccesses}) are trained on, and of those only the ones whose cost and safety penalty is the group's lowest: with the default
   * weights every penalty is 0 and every accepted rollout is kept, as before the mix.
   */
  static Result rl(PolicyModel model, PolicyFormat format, Collection<List<Trajectory>> groups, Learner.RlObjective objective, double tau, long version,
                   Reward.Weights weights, java.util.function.ToDoubleFunction<Trajectory> critic) {
    return rl(model, format, groups, objective, tau, version, weights, critic, false);
  }

  /**
   * As above; {@code openFinishedOnly}: an open task's unfinished rollouts are never its successes ({@link
   * Reward#openSuccesses(double[], boolean[])}, {@code k2.reward.open-finished-only}).
   */
  static Result rl(PolicyModel model, PolicyFormat format, Collection<List<Trajectory>> groups, Learner.RlObjective objective, double tau, long version,
                   Reward.Weights weights, java.util.function.ToDoubleFunction<Trajectory> critic, boolean openFinishedOnly) {
    Map<String, double[]> sum = new LinkedHashMap<>();
    double[][] maxLogit = zeros(model);
    double loss = 0, rewardSum = 0;
    long tokens = 0;
    int used = 0, rewarded = 0;
    for (var g : groups) {
      var seqs = new ArrayList<Sequence>();
      var rows = new ArrayList<Integer>();
      var rewards = new ArrayList<Double>();
      var old = new ArrayList<Double>();
      var accepted = new ArrayList<Boolean>();
      var penalties = new ArrayList<Double>();
      var sampled = new ArrayList<Trajectory>();
      for (var t : g) {
        if (t.sampling() == null) continue; // nothing was sampled: no pi_old, no signal
        var ex = format.examples(t);
        if (ex.isEmpty() || ex.stream().anyMatch(x -> x.length() > model.config().context() + 1)) continue;
        for (var x : ex) {
          seqs.add(x);
          rows.add(rewards.size());
        }
        var terms = Reward.Terms.of(t, needsCritic(weights, t) ? critic.applyAsDouble(t) : Double.NaN);
        rewards.add(Reward.mix(weights, terms));
        rewardSum += rewards.getLast();
        rewarded++;
        old.add(t.sampling().logProb());
        accepted.add(Reward.success(weights, terms));
        penalties.add(Reward.penalty(weights, terms));
        sampled.add(t);
      }
      if (rewards.size() < 2) continue; // one sample has no baseline: no signal
      if (Reward.OPEN.equals(sampled.getFirst().category())) {
        // an open task's successes: the group's best by the critic (Reward.openSuccesses), its verdict unread
        double[] scores = new double[sampled.size()];
        boolean[] finished = new boolean[sampled.size()];
        for (int i = 0; i < scores.length; i++) {
          scores[i] = critic.applyAsDouble(sampled.get(i));
          finished[i] = !openFinishedOnly || Reward.finished(sampled.get(i));
        }
        boolean[] best = Reward.openSuccesses(scores, finished);
        for (int i = 0; i < best.length; i++) accepted.set(i, best[i]);
      }
      double r0 = rewards.getFirst();
      if (rewards.stream().allMatch(x -> Math.abs(x - r0) < 1e-9)) continue;
      Losses.Result res;
      if (objective == Learner.RlObjective.FILTERED) {
        double least = Double.POSITIVE_INFINITY;
        for (int i = 0; i < accepted.size(); i++) if (accepted.get(i)) least = Math.min(least, penalties.get(i));
        var kept = new ArrayList<Sequence>();
        for (int q = 0; q < seqs.size(); q++) {
          int i = rows.get(q);
          if (accepted.get(i) && penalties.get(i) <= least + 1e-12) kept.add(seqs.get(q));
        }
        if (kept.isEmpty()) continue; // rewards differ, but none was accepted
        var tb = TokenBatch.of(kept, 0);
        tokens += tb.ids().length;
        res = Losses.nextToken(model, tb);
      } else {
        var tb = TokenBatch.of(seqs, 0);
        tokens += tb.ids().length;
        if (PROBE) probe(model, tb, rows, rewards, old, sampled, version);
        res = Losses.k2Rl(model, tb, rows.stream().mapToInt(Integer::intValue).toArray(), rewards.stream().mapToDouble(Double::doubleValue).toArray(),
            old.stream().mapToDouble(Double::doubleValue).toArray(), tau);
      }
      loss += res.loss();
      used++;
      res.grads().forEach((k, v) -> {
        double[] d = v.toDoubles();
        sum.merge(k, d, (a, b) -> { for (int i = 0; i < a.length; i++) a[i] += b[i]; return a; });
      });
      for (int l = 0; l < maxLogit.length; l++) for (int h = 0; h < maxLogit[l].length; h++) maxLogit[l][h] = Math.max(maxLogit[l][h], res.maxLogit()[l][h]);
    }
    double meanReward = rewarded == 0 ? Double.NaN : rewardSum / rewarded;
    if (used == 0) return new Result(0, Map.of(), maxLogit, 0, meanReward);
    var grads = new LinkedHashMap<String, float[]>();
    for (var e : sum.entrySet()) {
      float[] f = new float[e.getValue().length];
      for (int i = 0; i < f.length; i++) f[i] = (float) (e.getValue()[i] / used);
      grads.put(e.getKey(), f);
    }
    return new Result(loss / used, grads, maxLogit, tokens, meanReward);
  }

  /** Whether the reward of {@code t} reads the critic's score: an open task, or a critic weight above 0. */
  static boolean needsCritic(Reward.Weights weights, Trajectory t) {
    return weights.usesCritic() || Reward.OPEN.equals(t.category());
  }

  /**
   * {@code K2_RL_PROBE=1}: log each rollout's log pi at the learner's version next to the sampler's log pi_old (they
   * agree to rounding when the versions are equal; docs/LOOP.md).
   */
  private static final boolean PROBE = System.getenv("K2_RL_PROBE") != null;
  private static final org.slf4j.Logger PROBE_LOG = org.slf4j.LoggerFactory.getLogger("dev.k2pekko.trainer.RlProbe");

  private static void probe(PolicyModel model, TokenBatch tb, List<Integer> rows, List<Double> rewards, List<Double> old, List<Trajectory> sampled, long version) {
    double[] rowLp = Losses.sequenceLogProbs(model, tb);
    double[] lp = new double[rewards.size()];
    for (int q = 0; q < rowLp.length; q++) lp[rows.get(q)] += rowLp[q];
    for (int i = 0; i < lp.length; i++) {
      PROBE_LOG.info(String.format("rl-probe learner v=%d sampled at v=%d log pi=%.5f log pi_old=%.5f diff=%.2e reward=%.3f", version,
          sampled.get(i).sampling().version(), lp[i], old.get(i), lp[i] - old.get(i), rewards.get(i)));
    }
  }

  private static double[][] zeros(PolicyModel m) {
    double[][] z = new double[m.config().layers()][m.config().heads()];
    for (double[] row : z) java.util.Arrays.fill(row, Double.NEGATIVE_INFINITY);
    return z;
  }

  private static Map<String, float[]> floats(Map<String, Tensor> grads) {
    var out = new LinkedHashMap<String, float[]>();
    grads.forEach((k, v) -> out.put(k, WeightsSnapshot.toFloats(v)));
    return out;
  }
}
