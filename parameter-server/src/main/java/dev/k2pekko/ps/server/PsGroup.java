package dev.k2pekko.ps.server;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.ParamSpec;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.protocol.KryoWire;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.protocol.PsProtocol.BadGradient;
import dev.k2pekko.protocol.PsProtocol.PushGradient;
import dev.k2pekko.protocol.PsProtocol.RescaleQK;
import dev.k2pekko.protocol.PsProtocol.ToCoordinator;
import dev.k2pekko.protocol.PsProtocol.ToGroup;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.pattern.StatusReply;

/**
 * One shard of the parameter server: the fp32 master weights and optimizer state of one parameter group
 * ("embed", "layer0", ..., "head"), a Cluster Sharding entity on {@code ps} nodes. Learners push their gradient
 * shards here; the coordinator says which learners' gradients make up step v ({@link ApplyStep}). The group takes
 * them from its {@link PendingGradients}, steps its {@link GroupWeights} (MuonClip: the mean gradient through
 * {@link MuonClip#update}, then the step's QK rescales) and answers with its new weights. This actor is the protocol
 * only: what arrives when, what to refuse, what to answer.
 */
public final class PsGroup extends AbstractBehavior<ToGroup> {
  /** The groups' entity type; learners make the same key from {@link PsProtocol}'s type and name. */
  public static final EntityTypeKey<ToGroup> KEY = EntityTypeKey.create(ToGroup.class, PsProtocol.GROUP_ENTITY_TYPE);

  /**
   * The coordinator's commands to a group; with the learners' gradient shards ({@link PushGradient}, in {@code protocol})
   * they are what a group accepts ({@link ToGroup}).
   */
  public sealed interface Internal extends ToGroup.Internal permits Init, ApplyStep, Prepare, Export {}

  /** Every group of a model, in spec order. */
  public static List<String> groups(ModelConfig cfg) {
    var out = new ArrayList<String>();
    for (ParamSpec s : PolicyModel.specsOf(cfg)) if (!out.contains(PsProtocol.groupOf(s.name()))) out.add(PsProtocol.groupOf(s.name()));
    return out;
  }

  /** Load weights and optimizer state (fresh or from a checkpoint). Gradients pending for older versions are dropped. */
  public record Init(long version, ModelConfig config, MuonClip.Config optimizer, HashMap<String, float[]> weights,
                     HashMap<String, float[]> optimizerState, long steps, ActorRef<GroupState> replyTo) implements Internal, KryoWire {}

  /**
   * Apply step {@code version}: the mean of the listed learners' gradients, at learning rate lr, then the rescales.
   * A group that lacks a contributor's shard (not arrived yet) changes nothing and answers with an error: ask again.
   */
  public record ApplyStep(long version, ArrayList<String> contributors, ArrayList<Long> gradientVersions, double lr,
                          ArrayList<RescaleQK> rescales, ActorRef<StatusReply<GroupApplied>> replyTo) implements Internal, KryoWire {}

  /** Phase one of a step: does this group hold valid gradients of every contributor? Changes nothing. */
  public record Prepare(long version, ArrayList<String> contributors, ArrayList<Long> gradientVersions, ActorRef<Prepared> replyTo)
      implements Internal, KryoWire {}

  /** Which contributors' gradients this group lacks (not arrived yet) and which it rejected (non-finite). */
  public record Prepared(String group, long version, ArrayList<String> missing, ArrayList<String> rejected) implements KryoWire {}

  /** Weights and optimizer state now (for a checkpoint). */
  public record Export(ActorRef<GroupState> replyTo) implements Internal, KryoWire {}

  /** A group applied step {@code version}: its new weights (the reply's success; a group that lacks a shard answers with an error). */
  public record GroupApplied(String group, long version, HashMap<String, float[]> weights) implements KryoWire {}

  /** A group's weights and optimizer state and its step count (the answer to {@link Init} and {@link Export}). */
  public record GroupState(String group, HashMap<String, float[]> weights, HashMap<String, float[]> optimizer, long steps) implements KryoWire {}

  public static void init(ActorSystem<?> system) {
    ClusterSharding.get(system).init(Entity.of(KEY, ctx -> create(ctx.getEntityId())).withRole("ps"));
  }

  public static Behavior<ToGroup> create(String group) {
    return Behaviors.setup(ctx -> new PsGroup(ctx, group));
  }

  private final String group;
  private final GroupWeights weights;
  private final PendingGradients pending = new PendingGradients();
  private ActorRef<ToCoordinator> coordinator;

  private PsGroup(ActorContext<ToGroup> ctx, String group) {
    super(ctx);
    this.group = group;
    this.weights = new GroupWeights(group);
  }

  @Override public Receive<ToGroup> createReceive() {
    return newReceiveBuilder()
        .onMessage(Init.class, this::onInit)
        .onMessage(PushGradient.class, this::onPush)
        .onMessage(ApplyStep.class, this::onApply)
        .onMessage(Prepare.class, this::onPrepare)
        .onMessage(Export.class, this::onExport)
        .build();
  }

  private Behavior<ToGroup> onInit(Init m) {
    weights.load(m.config(), m.optimizer(), m.weights(), m.optimizerState(), m.steps());
    pending.dropBefore(m.version());
    m.replyTo().tell(weights.state());
    return this;
  }

  private Behavior<ToGroup> onPush(PushGradient p) {
    String bad = weights.refusal(p.grads());
    if (bad != null) {
      pending.reject(p.version(), p.learnerId());
      getContext().getLog().warn("group {}: gradient of {} at version {} refused: {}", group, p.learnerId(), p.version(), bad);
      coordinator().tell(new BadGradient(p.version(), p.learnerId(), group, bad));
      return this;
    }
    pending.add(p.version(), p.learnerId(), p.grads());
    return this;
  }

  private Behavior<ToGroup> onApply(ApplyStep a) {
    if (!weights.loaded()) {
      a.replyTo().tell(StatusReply.error("group " + group + " has no weights yet"));
      return this;
    }
    var parts = new ArrayList<HashMap<String, float[]>>();
    for (int i = 0; i < a.contributors().size(); i++) {
      var g = pending.get(a.contributors().get(i), a.gradientVersions().get(i));
      if (g == null) {
        a.replyTo().tell(StatusReply.error(
            "group " + group + " has no gradient from " + a.contributors().get(i) + " at version " + a.gradientVersions().get(i)));
        return this;
      }
      parts.add(g);
    }
    weights.step(parts, a.lr());
    weights.rescale(a.rescales());
    pending.stepped(a.version(), a.contributors(), a.gradientVersions());
    a.replyTo().tell(StatusReply.success(new GroupApplied(group, a.version(), weights.weights())));
    return this;
  }

  private Behavior<ToGroup> onPrepare(Prepare p) {
    var missing = new ArrayList<String>();
    var bad = new ArrayList<String>();
    for (int i = 0; i < p.contributors().size(); i++) {
      String learner = p.contributors().get(i);
      long v = p.gradientVersions().get(i);
      if (pending.rejected(learner, v)) bad.add(learner);
      else if (pending.get(learner, v) == null) missing.add(learner);
    }
    p.replyTo().tell(new Prepared(group, p.version(), missing, bad));
    return this;
  }

  private Behavior<ToGroup> onExport(Export e) {
    e.replyTo().tell(weights.state());
    return this;
  }

  private ActorRef<ToCoordinator> coordinator() {
    if (coordinator == null) coordinator = CoordinatorAddress.of(getContext().getSystem());
    return coordinator;
  }

  /** Lets tests see what is pending. */
  List<Long> pendingVersions() { return pending.versions(); }
}
