package dev.k2pekko.ps.server;

import dev.k2pekko.protocol.PsProtocol.Pushed;
import dev.k2pekko.protocol.PsProtocol.StageKind;
import dev.k2pekko.protocol.PsProtocol.TagOffset;
import dev.k2pekko.ps.server.PsCoordinator.Status;
import dev.k2pekko.ps.server.PsCoordinator.StepLoss;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * What the coordinator has done, for progress, reports, checkpoints and tests: named counters, the trajectories each
 * version consumed, one {@link StepLoss} per applied step, and the trajectory ids seen (a second sighting is counted as
 * a duplicate). It reports; it decides nothing.
 */
final class CoordinatorLedger {
  private final Map<String, Long> counters = new TreeMap<>();
  private final Map<Long, Integer> consumedPerVersion = new TreeMap<>();
  private final List<StepLoss> losses = new ArrayList<>();
  private final Set<String> seen = new HashSet<>();
  private final Set<Long> skippedVersions = new HashSet<>();
  private final dev.k2pekko.metrics.Metrics metrics;
  private final Map<String, dev.k2pekko.metrics.Meter.Counter> exported = new java.util.HashMap<>();
  private final dev.k2pekko.metrics.Meter.Series loss, reward;
  private final dev.k2pekko.metrics.Meter.Gauge versionGauge;

  CoordinatorLedger() {
    this(new dev.k2pekko.metrics.Metrics());
  }

  /** Every counter also goes to {@code metrics} as {@code k2_ps_<name>} (since this process started). */
  CoordinatorLedger(dev.k2pekko.metrics.Metrics metrics) {
    this.metrics = metrics;
    this.loss = metrics.series("k2_ps_loss", "the mean loss of each applied step's contributors, by version");
    this.reward = metrics.series("k2_ps_reward", "the mean RL reward of each applied RL step's contributors, by version");
    this.versionGauge = metrics.gauge("k2_ps_version", "the parameter server's weights version (applied steps, restored ones included)");
    for (var k : HELP.keySet()) exported(k); // at 0 from the start: a counter that never moved is a figure too
  }

  long get(String key) {
    return counters.getOrDefault(key, 0L);
  }

  void count(String key, long n) {
    counters.merge(key, n, Long::sum);
    exported(key).increment(n);
  }

  private dev.k2pekko.metrics.Meter.Counter exported(String key) {
    return exported.computeIfAbsent(key, k -> metrics.counter("k2_ps_" + k, HELP.getOrDefault(k, "the parameter server's " + k.replace('_', ' '))));
  }

  private static final Map<String, String> HELP = Map.of(
      "refused_stale", "gradients refused as stale (computed at a version older than the staleness bound allows)",
      "rejected_non_finite", "gradients rejected by a group for a NaN or infinite value",
      "heads_clipped", "QK-Clip rescales ordered (one per head over tau per step)",
      "steps", "optimizer steps applied",
      "rl_steps", "optimizer steps applied with RL gradients",
      "tokens", "tokens of the applied steps' batches",
      "trajectories", "trajectories consumed by applied steps",
      "duplicates", "trajectories consumed a second time (must stay 0)");

  /** The weights version now: set when restored and after every applied step. */
  void version(long v) {
    versionGauge.set(v);
  }

  /** Counts the skip of version v's step once, however many rounds of refusals led to it. */
  void skipped(long v) {
    if (skippedVersions.add(v)) count("steps_skipped", 1);
  }

  /** A checkpoint's counters carry on. */
  void restore(Map<String, Long> restored) {
    counters.putAll(restored);
  }

  /** The live counters, for a checkpoint writer that only reads them. */
  Map<String, Long> counters() {
    return counters;
  }

  /** Step {@code version} was applied with these contributors: its mean loss, tokens, mean reward, consumed trajectories. */
  void stepApplied(long version, List<Pushed> contributors) {
    int consumed = 0;
    double loss = 0, reward = 0;
    int rewarded = 0;
    long tokens = 0;
    for (var p : contributors) {
      if (!Double.isNaN(p.reward())) {
        reward += p.reward();
        rewarded++;
      }
      consumed += p.trajectoryIds().size();
      for (var id : p.trajectoryIds()) if (!seen.add(id)) count("duplicates", 1);
      loss += p.loss() / contributors.size();
      tokens += p.tokens();
    }
    consumedPerVersion.put(version, consumed);
    this.loss.add(version, loss);
    if (rewarded > 0) this.reward.add(version, reward / rewarded);
    boolean rl = contributors.stream().anyMatch(p -> p.kind() == StageKind.RL);
    losses.add(new StepLoss(version, loss, rl ? StageKind.RL : StageKind.SFT, tokens, rewarded == 0 ? Double.NaN : reward / rewarded));
    count("steps", 1);
    if (rl) count("rl_steps", 1); // checkpointed with the other counters: the RL rate's decay goes on after a resume
    count("trajectories", consumed);
    count("tokens", tokens);
  }

  Status status(String runId, long version, int learners, Map<String, TagOffset> offsets, long restoredFrom, Map<String, String> learnerNodes,
                String weights) {
    return new Status(runId, version, learners, Map.copyOf(counters), Map.copyOf(consumedPerVersion), List.copyOf(losses),
        Map.copyOf(offsets), restoredFrom, Map.copyOf(learnerNodes), weights);
  }
}
