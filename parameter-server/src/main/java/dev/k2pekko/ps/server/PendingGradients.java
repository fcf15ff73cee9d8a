package dev.k2pekko.ps.server;

import dev.k2pekko.protocol.PsProtocol;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The gradient shards a parameter group holds until a step takes them, keyed by the version each was computed at and
 * its learner, and the ones it refused (so that phase one of a step can name them). Kept for {@link #HORIZON}
 * versions: older gradients could not be admitted by any staleness bound in use.
 */
final class PendingGradients {
  /** How many versions back a gradient is kept. */
  static final int HORIZON = 64;

  /** gradient version -> learner -> grads (a learner's gradient is keyed by the version it was computed at). */
  private final Map<Long, Map<String, HashMap<String, float[]>>> pending = new HashMap<>();
  private final Set<PsProtocol.LearnerAt> rejected = new HashSet<>();

  void add(long version, String learner, HashMap<String, float[]> grads) {
    pending.computeIfAbsent(version, v -> new HashMap<>()).put(learner, grads);
  }

  void reject(long version, String learner) {
    rejected.add(new PsProtocol.LearnerAt(learner, version));
  }

  /** Drops gradients computed before {@code version} (new weights were loaded: they no longer apply). */
  void dropBefore(long version) {
    pending.keySet().removeIf(v -> v < version);
  }

  /** The shard of {@code learner} computed at {@code version}, or null when it has not arrived. */
  HashMap<String, float[]> get(String learner, long version) {
    var byLearner = pending.get(version);
    return byLearner == null ? null : byLearner.get(learner);
  }

  boolean rejected(String learner, long version) {
    return rejected.contains(new PsProtocol.LearnerAt(learner, version));
  }

  /** After step {@code version}: forgets what is past the horizon and the shards the step took. */
  void stepped(long version, List<String> contributors, List<Long> gradientVersions) {
    pending.keySet().removeIf(v -> v <= version - HORIZON); // gradients too old to be admitted by any bound in use
    rejected.removeIf(k -> k.version() <= version - HORIZON);
    for (int i = 0; i < contributors.size(); i++) {
      var byLearner = pending.get(gradientVersions.get(i));
      if (byLearner != null) byLearner.remove(contributors.get(i));
    }
  }

  /** The versions with gradients waiting (for tests). */
  List<Long> versions() {
    return List.copyOf(pending.keySet());
  }
}
