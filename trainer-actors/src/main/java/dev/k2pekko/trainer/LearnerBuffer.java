package dev.k2pekko.trainer;

import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.protocol.PsProtocol.StageKind;
import dev.k2pekko.protocol.Trajectory;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What a learner has read from the journal and not yet trained on, in the order read, and where its next batch ends:
 * items of one kind, {@code batch-size} trajectories for SFT, for RL whole task groups (the judge persists a task's
 * rollouts together in one journal event, so a group in the buffer is complete). Plain state of the learner actor,
 * touched only from it.
 */
final class LearnerBuffer {
  /** One trajectory read from the journal and where it sits. {@code use} is null for one skipped (another run). */
  record Item(String tag, long eventOffset, int index, Trajectory use, StageKind group) {}

  /**
   * The items a step trains on, of one kind, with any skipped items read before them (their offsets advance with it).
   * {@code part}: the sealed synthesis part it is cut from ({@link SealedParts}), null for a batch of this buffer;
   * {@code replayed}: groups trained before, again ({@link RlReplay}): it consumes nothing from the journal.
   */
  record Batch(List<Item> items, StageKind kind, String part, boolean replayed) {
    Batch(List<Item> items, StageKind kind) {
      this(items, kind, null, false);
    }

    Batch(List<Item> items, StageKind kind, String part) {
      this(items, kind, part, false);
    }
  }

  /** Where the next batch ends: the first {@code taken} items of the buffer, of {@code kind}; {@code full} when no more may join. */
  record Cut(StageKind kind, int taken, boolean full) {}

  private final Learner.Settings s;
  private final ArrayDeque<Item> items = new ArrayDeque<>();
  /** Items read that nothing trains on (another run's data), waiting to ride along with the next batch. */
  private final List<Item> carried = new ArrayList<>();

  LearnerBuffer(Learner.Settings s) {
    this.s = s;
  }

  /**
   * SFT for the teacher's accepted core trajectories and its open ones that pass the public checks (their hidden rubric
   * is never read: docs/LOOP.md, "Open tasks"), RL for sampled rollouts, null for data not trained on.
   */
  static StageKind kind(Trajectory t) {
    // a rollout (even one whose policy failed before sampling anything) is RL data: read, counted, trained on if it can be
    if (t.sampling() != null || (t.policy() != null && t.policy().startsWith("learned"))) return StageKind.RL;
    if (t.verdict() == null) return null;
    // the learned policy's task families: the core tools', and the MCP servers' tasks (k2.policy.tasks = kg or fs; only
    // such a run synthesizes them under its own run id)
    if (("core".equals(t.category()) || dev.k2pekko.agents.tasks.KnowledgeGraphTasks.CATEGORY.equals(t.category())
        || dev.k2pekko.agents.tasks.FileTasks.CATEGORY.equals(t.category())) && t.verdict().accepted()) {
      return StageKind.SFT;
    }
    if (Reward.OPEN.equals(t.category()) && dev.k2pekko.agents.JudgeRubric.passesPublicChecks(t.verdict())) return StageKind.SFT;
    return null;
  }

  void add(Item it) {
    items.add(it);
  }

  boolean isEmpty() {
    return items.isEmpty();
  }

  int size() {
    return items.size();
  }

  /** Items something trains on. */
  long usable() {
    return items.stream().filter(i -> i.group() != null).count();
  }

  /**
   * Whether the journal streams should wait: room for a few SFT batches, or two RL batches of groups of up to 4 (with
   * rl-groups-count = signal, three silent groups riding along with each group that counts).
   */
  boolean full() {
    return usable() >= Math.max(4L * s.batchSize(), (s.rlGroupsCount() == Learner.GroupCount.SIGNAL ? 32L : 8L) * s.rlGroups());
  }

  /** Where {@code tag}'s offset must stop: just before the first item of the tag something trains on; null if none. */
  PsProtocol.TagOffset floor(String tag) {
    for (var it : items) if (it.group() != null && it.tag().equals(tag)) return new PsProtocol.TagOffset(it.eventOffset(), it.index() - 1);
    return null;
  }

  /** A batch not trained on after all (its push refused, its critic scores missing): back to the front, in order. */
  void putBack(Batch batch) {
    var its = batch.items();
    for (int i = its.size() - 1; i >= 0; i--) items.addFirst(its.get(i));
  }

  /** The next batch, taken out of the buffer: a full one, or once the streams are {@code idle} whatever is there; else null. */
  Batch take(boolean idle) {
    var c = cut(items, s.batchSize(), s.rlGroups(), s.rlGroupsCount() == Learner.GroupCount.SIGNAL ? silentGroups() : Set.of());
    if (c.kind() == null && items.isEmpty()) return null;
    if (!c.full() && !idle) return null;
    var taken = new ArrayList<Item>();
    for (int i = 0; i < c.taken(); i++) taken.add(items.poll());
    if (c.kind() == null) {
      // nothing to train on in this stretch (another run's data): its offsets advance with the next push
      carried.addAll(taken);
      return null;
    }
    var all = new ArrayList<>(carried);
    carried.clear();
    all.addAll(taken);
    return new Batch(all, c.kind());
  }

  /**
   * The next batch's extent in {@code buffer}: items of one kind, {@code batchSize} trajectories for SFT, for RL whole
   * task groups until {@code rlGroups} of them not in {@code silent} are in (a silent group rides along).
   */
  static Cut cut(Iterable<Item> buffer, int batchSize, int rlGroups, Set<String> silent) {
    StageKind kind = null;
    int n = 0, taken = 0, counted = 0;
    boolean full = false;
    var groupIds = new HashSet<String>();
    for (var it : buffer) {
      if (it.group() != null) {
        if (kind == null) kind = it.group();
        else if (kind != it.group()) { full = true; break; } // one kind per step; the other kind follows
        if (kind == StageKind.RL && !groupIds.contains(groupOf(it.use()))) {
          if (counted == rlGroups) { full = true; break; } // the first item of the next group
          groupIds.add(groupOf(it.use()));
          if (!silent.contains(groupOf(it.use()))) counted++;
        }
        n++;
      }
      taken++;
      if (kind == StageKind.SFT && n >= batchSize) { full = true; break; }
    }
    if (kind == StageKind.RL && counted >= rlGroups) full = true;
    return new Cut(kind, taken, full);
  }

  /**
   * The RL groups in the buffer whose rewards are all equal, so that no step can learn from them ({@link StepLoss#rl}).
   * A group whose reward reads the critic's score is never counted silent: its rewards are known only once scored.
   */
  private Set<String> silentGroups() {
    var rewards = new HashMap<String, Set<Double>>();
    var unknown = new HashSet<String>();
    for (var it : items) {
      if (it.group() != StageKind.RL) continue;
      String g = groupOf(it.use());
      if (StepLoss.needsCritic(s.reward(), it.use())) unknown.add(g);
      else rewards.computeIfAbsent(g, k -> new HashSet<>()).add(Reward.mix(s.reward(), Reward.Terms.of(it.use(), Double.NaN)));
    }
    var out = new HashSet<String>();
    rewards.forEach((g, r) -> { if (r.size() == 1 && !unknown.contains(g)) out.add(g); });
    return out;
  }

  static String groupOf(Trajectory t) {
    return dev.k2pekko.agents.TrajectoryCollector.groupOf(t.trajectoryId());
  }
}
