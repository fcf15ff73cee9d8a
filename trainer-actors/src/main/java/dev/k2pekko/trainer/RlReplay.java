package dev.k2pekko.trainer;

import dev.k2pekko.protocol.PsProtocol.StageKind;
import dev.k2pekko.protocol.Trajectory;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * Replay of earlier RL groups (docs/LOOP.md, "RL: replay"): the task groups a learner trained on whose rollouts were
 * both accepted and rejected (the ones the {@code filtered} objective learns from: its successes stay valid
 * demonstrations) go into a bounded reservoir, oldest out first; each RL step applied makes {@code steps} replayed
 * steps due, of {@code rl-groups} groups of the reservoir each, taken in turn, which go before the learner's next fresh
 * RL step (so that a round ends with its own last rollouts, not with replays). A replayed step consumes nothing from
 * the journal (no trajectory ids, no offsets). Plain state of the learner actor, touched only from it.
 */
public final class RlReplay {
  /** {@code steps}: replayed steps after each RL step (0: off); {@code groups}: the reservoir's bound, in groups. */
  public record Settings(int steps, int groups) {
    public static final Settings OFF = new Settings(0, 0);

    public Settings {
      if (steps < 0 || groups < 0) throw new IllegalArgumentException("k2.learner.rl-replay steps and groups must be >= 0");
    }
  }

  private final Settings s;
  private final int groupsPerStep;
  private final ArrayDeque<List<LearnerBuffer.Item>> reservoir = new ArrayDeque<>();
  private int due;

  RlReplay(Settings s, int groupsPerStep) {
    this.s = s;
    this.groupsPerStep = groupsPerStep;
  }

  /** An RL batch was applied: its groups with a success and a failure join the reservoir, and replayed steps fall due. */
  void applied(LearnerBuffer.Batch batch) {
    if (s.steps() == 0 || batch.kind() != StageKind.RL || batch.replayed()) return;
    var groups = new LinkedHashMap<String, List<LearnerBuffer.Item>>();
    for (var it : batch.items()) {
      if (it.use() != null && it.group() == StageKind.RL) groups.computeIfAbsent(LearnerBuffer.groupOf(it.use()), g -> new ArrayList<>()).add(it);
    }
    for (var g : groups.values()) {
      boolean ok = false, failed = false;
      for (var it : g) {
        if (accepted(it.use())) ok = true;
        else failed = true;
      }
      if (!(ok && failed)) continue;
      reservoir.addLast(g);
      while (reservoir.size() > s.groups()) reservoir.pollFirst();
    }
    if (!reservoir.isEmpty()) due = s.steps(); // not cumulative: at most steps replays between two fresh steps
  }

  private static boolean accepted(Trajectory t) {
    return t.verdict() != null && t.verdict().accepted();
  }

  /** The next replayed batch if one is due: the reservoir's {@code rl-groups} oldest groups, which go to its end. */
  LearnerBuffer.Batch next() {
    if (due == 0 || reservoir.isEmpty()) return null;
    due--;
    var items = new ArrayList<LearnerBuffer.Item>();
    for (int i = 0; i < Math.min(groupsPerStep, reservoir.size()); i++) {
      var g = reservoir.pollFirst();
      items.addAll(g);
      reservoir.addLast(g);
    }
    return new LearnerBuffer.Batch(items, StageKind.RL, null, true);
  }

  int size() {
    return reservoir.size();
  }
}
