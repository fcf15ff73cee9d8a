package dev.k2pekko.trainer;

import dev.k2pekko.protocol.PartSealed;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.protocol.PsProtocol.StageKind;
import dev.k2pekko.protocol.PsProtocol.TagOffset;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * The pipeline's synthesis parts a learner holds until they are sealed, then trains on in a canonical order, so that
 * the same trajectories give the same SFT steps whatever order the judges wrote them in (docs/DESIGN.md, "Reproducible
 * runs"). Plain state of the learner actor, touched only from it.
 *
 * <p>A part ({@code RUN-synth}, {@code RUN-synth-2}, ...: a trajectory id up to its first '/') is held from its first
 * trajectory until its {@link PartSealed} event has been read on every tag of this learner; the seal follows all of
 * the part's trajectories in each tag's stream. Then the learner's trajectories of the part, sorted by id, are cut into
 * batches of {@code batch-size}. Consumed out of stream order, they cannot move a tag's durable offset past the first
 * one not yet trained; instead each push records, per part and tag, how many of the tag's sorted trajectories are
 * trained ({@link #key}). A learner that starts again reads the part from its start, skips that many per tag, and
 * continues with the same batches. The part's last push moves every tag's offset past the part and its seal.
 */
final class SealedParts {
  private final String runId;
  private final Set<String> tags;
  private final Map<String, Part> parts = new TreeMap<>();
  /** Sorted trajectories already trained per {@link #key}, from the durable offsets this learner started from. */
  private final Map<String, Integer> trainedBefore = new HashMap<>();
  /** Parts this incarnation finished: a seal read again (a resumed run seals again) is ignored. */
  private final Set<String> finished = new HashSet<>();
  /** Seals of parts with nothing left here: their positions ride along with every push. */
  private final Map<String, TagOffset> advance = new HashMap<>();
  private long sealed;

  private static final class Part {
    final Map<String, List<LearnerBuffer.Item>> byTag = new HashMap<>();
    final Map<String, TagOffset> sealAt = new HashMap<>();
    /** After the seal: what remains to train, in order; null before. */
    ArrayDeque<LearnerBuffer.Item> order;
    final Map<String, Integer> taken = new HashMap<>();
  }

  /** {@code tags}: the journal tags this learner reads. */
  SealedParts(String runId, Set<String> tags) {
    this.runId = runId;
    this.tags = Set.copyOf(tags);
  }

  /**
   * The durable offsets' key of the trained count of {@code part}'s trajectories in {@code tag}: its TagOffset holds
   * the count, and 1 as consumedInEvent once the part is done.
   */
  static String key(String part, String tag) {
    return "sealed|" + part + "|" + tag;
  }

  /** The part of a trajectory id: up to its first '/'. */
  static String partOf(String trajectoryId) {
    int slash = trajectoryId.indexOf('/');
    return slash < 0 ? trajectoryId : trajectoryId.substring(0, slash);
  }

  /** Whether {@code part} is one of this run's synthesis parts, which the pipeline seals. */
  boolean sealable(String part) {
    String base = runId + "-synth";
    return part.equals(base) || (part.startsWith(base + "-") && part.length() > base.length() + 1
        && part.substring(base.length() + 1).chars().allMatch(Character::isDigit));
  }

  /**
   * Takes up the durable offsets this learner starts from: how far each part was trained, the last part sealed. A
   * part trained partly on one of this learner's tags is held from the start, before its stream has delivered
   * anything of it, so that the learner does not pass steps it has data for (a resumed run's first step would go
   * without it).
   */
  void restore(Map<String, TagOffset> offsets) {
    offsets.forEach((k, o) -> {
      if (!k.startsWith("sealed|")) return;
      trainedBefore.put(k, (int) o.eventOffset());
      int bar = k.lastIndexOf('|');
      String part = k.substring("sealed|".length(), bar), tag = k.substring(bar + 1);
      if (o.consumedInEvent() == 0 && tags.contains(tag) && sealable(part)) parts.computeIfAbsent(part, x -> new Part());
    });
    var s = offsets.get(PsProtocol.SEALED_KEY);
    if (s != null) sealed = Math.max(sealed, s.eventOffset());
  }

  /** The ordinal of the last part sealed that this learner has read (or started from). */
  long sealed() {
    return sealed;
  }

  /** Holds {@code it} if it is an SFT trajectory of a synthesis part not yet sealed; false: it goes the usual way. */
  boolean offer(LearnerBuffer.Item it) {
    if (it.use() == null || it.group() != StageKind.SFT) return false;
    String part = partOf(it.use().trajectoryId());
    if (!sealable(part) || finished.contains(part)) return false;
    var p = parts.computeIfAbsent(part, x -> new Part());
    if (p.order != null) return false; // after its seal (a redone episode): trained as it comes
    p.byTag.computeIfAbsent(it.tag(), t -> new ArrayList<>()).add(it);
    return true;
  }

  /** A seal read on {@code tag} at {@code eventOffset}. */
  void sealRead(String tag, PartSealed seal, long eventOffset) {
    if (!sealable(seal.part())) return;
    sealed = Math.max(sealed, seal.ordinal());
    if (finished.contains(seal.part())) return;
    var p = parts.computeIfAbsent(seal.part(), x -> new Part());
    if (p.order != null) return;
    p.sealAt.putIfAbsent(tag, new TagOffset(eventOffset, 0));
    if (!p.sealAt.keySet().containsAll(tags)) return;
    var all = new ArrayList<LearnerBuffer.Item>();
    for (var e : p.byTag.entrySet()) {
      var sorted = new ArrayList<>(e.getValue());
      sorted.sort(BY_ID);
      int before = Math.min(sorted.size(), trainedBefore.getOrDefault(key(seal.part(), e.getKey()), 0));
      p.taken.put(e.getKey(), before);
      all.addAll(sorted.subList(before, sorted.size()));
    }
    all.sort(BY_ID);
    p.order = new ArrayDeque<>(all);
    if (p.order.isEmpty()) {
      // nothing of it left to train here: its tags move past it with the next push
      advance.putAll(maxPositions(p));
      parts.remove(seal.part());
      finished.add(seal.part());
    }
  }

  private static final Comparator<LearnerBuffer.Item> BY_ID = Comparator.comparing(i -> i.use().trajectoryId());

  /** Whether a part is held: not sealed yet, or sealed with trajectories left. A learner that holds one does not pass. */
  boolean holding() {
    return !parts.isEmpty();
  }

  /** The next batch of the first sealed part with trajectories left, taken out of it; null if there is none. */
  LearnerBuffer.Batch next(int batchSize) {
    for (var e : parts.entrySet()) {
      var p = e.getValue();
      if (p.order == null || p.order.isEmpty()) continue;
      var items = new ArrayList<LearnerBuffer.Item>();
      while (items.size() < batchSize && !p.order.isEmpty()) {
        var it = p.order.poll();
        items.add(it);
        p.taken.merge(it.tag(), 1, Integer::sum);
      }
      return new LearnerBuffer.Batch(items, StageKind.SFT, e.getKey());
    }
    return null;
  }

  /** A sealed part's batch not trained after all: back to the front of its part, in order. */
  void putBack(LearnerBuffer.Batch batch) {
    var p = parts.get(batch.part());
    var its = batch.items();
    for (int i = its.size() - 1; i >= 0; i--) {
      p.order.addFirst(its.get(i));
      p.taken.merge(its.get(i).tag(), -1, Integer::sum);
    }
  }

  /** A push was applied: a part whose last batch it was is done. */
  void applied(LearnerBuffer.Batch batch) {
    if (batch.part() == null) return;
    var p = parts.get(batch.part());
    if (p != null && p.order.isEmpty()) {
      parts.remove(batch.part());
      finished.add(batch.part());
    }
  }

  /**
   * The offsets a push of {@code batch} carries: {@code base} (where the batch's items move their tags) for a batch of
   * the usual kind; for a sealed part's batch the trained counts per tag, and, with its last batch, every tag past the
   * part. No tag moves past a trajectory still held here, nor past {@code floor(tag)}, the first one the learner's
   * other buffer holds (null: none).
   */
  java.util.HashMap<String, TagOffset> offsets(LearnerBuffer.Batch batch, Map<String, TagOffset> base, Function<String, TagOffset> floor) {
    var out = new java.util.HashMap<String, TagOffset>();
    advance.forEach((t, o) -> out.merge(t, o, TagOffset::later));
    if (batch.part() == null) {
      base.forEach((t, o) -> out.merge(t, o, TagOffset::later));
    } else {
      var p = parts.get(batch.part());
      // consumedInEvent 1 marks the part done on that tag: a learner starting again does not wait for it
      int done = p.order.isEmpty() ? 1 : 0;
      p.taken.forEach((t, n) -> out.put(key(batch.part(), t), new TagOffset(n, done)));
      if (p.order.isEmpty()) {
        maxPositions(p).forEach((t, o) -> {
          var f = floor.apply(t);
          out.merge(t, f == null ? o : earlier(o, f), TagOffset::later);
        });
      }
    }
    // held trajectories cap their tags: the offset stops just before the first one (consumedInEvent = items before it)
    for (var p : parts.values()) {
      // held: all of a part not sealed yet, what remains of a sealed one
      for (var it : p.order == null ? p.byTag.values().stream().flatMap(List::stream).toList() : p.order) {
        out.computeIfPresent(it.tag(), (t, at) -> earlier(at, new TagOffset(it.eventOffset(), it.index() - 1)));
      }
    }
    out.put(PsProtocol.SEALED_KEY, new TagOffset(sealed, 0));
    return out;
  }

  private static TagOffset earlier(TagOffset a, TagOffset b) {
    return TagOffset.later(a, b) == a ? b : a;
  }

  /** Per tag, the furthest position of the part: its last trajectory or its seal. */
  private static Map<String, TagOffset> maxPositions(Part p) {
    var out = new HashMap<String, TagOffset>(p.sealAt);
    p.byTag.forEach((t, its) -> {
      for (var it : its) out.merge(t, new TagOffset(it.eventOffset(), it.index()), TagOffset::later);
    });
    return out;
  }
}
