package dev.k2pekko.ps.server;

import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.protocol.PsProtocol.RegisterLearner;
import dev.k2pekko.protocol.PsProtocol.Weights;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.receptionist.Receptionist;

/**
 * Who receives the coordinator's versions: the registered learners (watched, so a stopped one leaves its step) and the
 * subscribers of {@link PsProtocol#WEIGHTS} (learners and inference servers, through the receptionist). A learner
 * that registers while a step is in flight is answered only after it, so its offsets never cover half a step.
 */
final class LearnerRegistry {
  /** A registered learner's actor stopped. */
  record LearnerGone(String learnerId, ActorRef<Weights> ref) implements PsCoordinator.Internal, NoSerializationVerificationNeeded {}

  /** The receptionist's list of {@link PsProtocol#WEIGHTS} subscribers changed. */
  record Subscribers(Receptionist.Listing listing) implements PsCoordinator.Internal, NoSerializationVerificationNeeded {}

  private final ActorContext<PsProtocol.ToCoordinator> ctx;
  /** learner id -> its weights subscription; null for a learner known only from a push (it registered elsewhere). */
  private final Map<String, ActorRef<Weights>> learners = new TreeMap<>();
  private Set<ActorRef<Weights>> subscribers = Set.of();
  private final List<RegisterLearner> deferred = new ArrayList<>();

  LearnerRegistry(ActorContext<PsProtocol.ToCoordinator> ctx) {
    this.ctx = ctx;
    ctx.getSystem().receptionist().tell(Receptionist.subscribe(PsProtocol.WEIGHTS,
        ctx.messageAdapter(Receptionist.Listing.class, Subscribers::new)));
  }

  /**
   * Registers (or re-registers) a learner; true when it is a new incarnation, whose pushes not yet in a step must be
   * dropped (it reads them again). The caller then sends it the offsets and the current version.
   */
  boolean register(RegisterLearner r) {
    var old = learners.get(r.learnerId());
    if (old != null && old.equals(r.weights())) return false;
    if (old != null) ctx.unwatch(old);
    learners.put(r.learnerId(), r.weights());
    ctx.watchWith(r.weights(), new LearnerGone(r.learnerId(), r.weights()));
    return true;
  }

  void defer(RegisterLearner r) {
    deferred.add(r);
  }

  /** The registrations that waited for a step to end, in arrival order; the list is emptied. */
  List<RegisterLearner> takeDeferred() {
    var all = new ArrayList<>(deferred);
    deferred.clear();
    return all;
  }

  /** A learner stopped: false when the message is about an older incarnation than the one registered now. */
  boolean gone(LearnerGone g) {
    if (learners.get(g.learnerId()) != null && !learners.get(g.learnerId()).equals(g.ref())) return false;
    learners.remove(g.learnerId());
    return true;
  }

  /** A learner pushed without having registered here (it registered with an earlier coordinator): it counts for sync steps. */
  void pushedBy(String learnerId) {
    if (!learners.containsKey(learnerId)) learners.put(learnerId, null);
  }

  /** New subscribers get {@code current} at once unless the coordinator is still starting (it sends it when ready). */
  void subscribersChanged(Subscribers l, Weights current, boolean starting) {
    var now = l.listing().getServiceInstances(PsProtocol.WEIGHTS);
    if (!starting) for (var ref : now) if (!subscribers.contains(ref)) ref.tell(current);
    subscribers = Set.copyOf(now);
  }

  /** A new version to every subscriber and every registered learner that is not one. */
  void publish(Weights current) {
    for (var ref : subscribers) ref.tell(current);
    for (var ref : learners.values()) if (ref != null && !subscribers.contains(ref)) ref.tell(current);
  }

  /** The first version after start: everyone gets it (the receptionist's listing may not include every learner yet). */
  void publishFirst(Weights current) {
    for (var ref : subscribers) ref.tell(current);
    for (var ref : learners.values()) if (ref != null) ref.tell(current);
  }

  Set<String> ids() {
    return learners.keySet();
  }

  int size() {
    return learners.size();
  }

  /** learner id -> the address of its node, for the status. */
  Map<String, String> nodes() {
    var nodes = new HashMap<String, String>();
    learners.forEach((id, ref) -> { if (ref != null) nodes.put(id, ref.path().address().toString()); });
    return nodes;
  }
}
