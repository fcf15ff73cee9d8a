package dev.k2pekko.ps.server;

import dev.k2pekko.protocol.PsProtocol.LearnerAt;
import dev.k2pekko.protocol.PsProtocol.Pushed;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which learners' pushes make up the next step, without actors (the coordinator owns one):
 * <ul>
 *   <li><b>admission</b>: synchronous mode admits only gradients computed at the current version and not for a step
 *   already under way; asynchronous mode admits those computed at versions {@code >= v - staleness};</li>
 *   <li><b>readiness</b>: a synchronous step is ready when the learners expected have registered and every registered
 *   one has pushed for v, passed (nothing to train on, having read every sealed part the pushes' learners have) or
 *   been rejected by a group, or when the sync timeout has passed with at least one push; an asynchronous step is
 *   ready as soon as anything is pending;</li>
 *   <li>a ready step splits into the pushes a group rejected (non-finite) and the good ones that are applied.</li>
 * </ul>
 */
final class StepAssembler {
  enum Admission { ADMITTED, STALE }

  /** A step's pushes: the good ones, those a group rejected, and whether a sync timeout cut learners out. */
  record Ready(List<Pushed> good, List<Pushed> rejected, boolean timedOutWithoutAll) {}

  private final PsSettings.Mode mode;
  private final int staleness;
  /** gradient version -> learner -> push, not yet in a step. */
  private final Map<Long, Map<String, Pushed>> pending = new HashMap<>();
  private final Set<LearnerAt> rejected = new HashSet<>();
  /** Learners with nothing to train on at the current version, with the last sealed part each had read. */
  private final Map<String, Long> passed = new HashMap<>();

  /** Learners a synchronous step expects registered (0: none in particular). */
  private final int expected;

  StepAssembler(PsSettings.Mode mode, int staleness) {
    this(mode, staleness, 0);
  }

  StepAssembler(PsSettings.Mode mode, int staleness, int expected) {
    this.mode = mode;
    this.staleness = staleness;
    this.expected = expected;
  }

  /**
   * Whether a gradient computed at {@code pushVersion} may join a step at {@code version}; {@code stepInFlight} is the
   * version of the step under way (-1 for none). In synchronous mode a push for that step's version came too late for
   * it: refused, so its learner computes it again at the next version (kept, it would sit unapplied and its data be lost).
   */
  Admission admit(long version, long stepInFlight, long pushVersion) {
    boolean late = mode == PsSettings.Mode.SYNC && stepInFlight >= 0 && pushVersion == stepInFlight;
    if (late || pushVersion > version || (mode == PsSettings.Mode.SYNC && pushVersion < version)
        || (mode == PsSettings.Mode.ASYNC && pushVersion < version - staleness)) {
      return Admission.STALE;
    }
    return Admission.ADMITTED;
  }

  /** Adds an admitted push; true when nothing else was pending (a synchronous step's timeout starts then). */
  boolean add(Pushed p) {
    var byLearner = pending.computeIfAbsent(p.version(), v -> new HashMap<>());
    boolean first = pending.values().stream().mapToInt(Map::size).sum() == 0;
    byLearner.put(p.learnerId(), p);
    return first;
  }

  /** A group found a learner's gradient for that version non-finite. */
  void reject(LearnerAt l) {
    rejected.add(l);
  }

  /** A learner has nothing to train on at the current version, having read the parts sealed up to {@code sealed}. */
  void pass(String learnerId, long sealed) {
    passed.merge(learnerId, sealed, Math::max);
  }

  /** A learner stopped or started again: what it pushed and passed before is dropped (its new incarnation reads it again). */
  void drop(String learnerId) {
    for (var byLearner : pending.values()) byLearner.remove(learnerId);
    passed.remove(learnerId);
  }

  /** A step was applied: passes were for its version. */
  void stepApplied() {
    passed.clear();
  }

  boolean anyPending() {
    return !pending.isEmpty();
  }

  /**
   * The next step at {@code version} if it is ready (null if not), given the registered learners and whether the sync
   * timeout fired. Taking it clears what was pending and the rejections.
   */
  Ready take(long version, Set<String> learners, boolean timedOut) {
    var candidates = new ArrayList<Pushed>();
    boolean all = true;
    if (mode == PsSettings.Mode.SYNC) {
      var mine = pending.getOrDefault(version, Map.of());
      all = !mine.isEmpty() && learners.size() >= expected; // a learner not registered yet has not said it has nothing
      // a pass made before the pushes' latest sealed part was read does not count: that learner may hold some of it
      long sealed = mine.values().stream().mapToLong(Pushed::sealed).max().orElse(0);
      for (var id : learners) {
        boolean passes = passed.getOrDefault(id, -1L) >= sealed;
        if (!mine.containsKey(id) && !rejected.contains(new LearnerAt(id, version)) && !passes) all = false;
      }
      if (!(all || (timedOut && !mine.isEmpty()))) return null;
      // by learner id: the groups sum the gradients in this order, and a sum's rounding depends on its order
      mine.values().stream().sorted(java.util.Comparator.comparing(Pushed::learnerId)).forEach(candidates::add);
    } else {
      for (var e : pending.entrySet()) candidates.addAll(e.getValue().values());
      if (candidates.isEmpty()) return null;
    }
    pending.clear();
    var good = new ArrayList<Pushed>();
    var bad = new ArrayList<Pushed>();
    for (var p : candidates) (rejected.contains(new LearnerAt(p.learnerId(), p.version())) ? bad : good).add(p);
    rejected.clear();
    return new Ready(good, bad, !all);
  }

  /** For the watchdog's log line. */
  String describe() {
    return "pushed " + pending.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue().keySet()).toList() + ", passed " + passed.keySet();
  }
}
