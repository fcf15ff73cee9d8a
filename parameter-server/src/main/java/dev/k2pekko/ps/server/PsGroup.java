package dev.k2pekko.ps.server;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.ParamSpec;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import dev.k2pekko.protocol.KryoWire;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.optim.QkClip;
import dev.k2pekko.ps.server.PsProtocol.BadGradient;
import dev.k2pekko.ps.server.PsProtocol.GroupApplied;
import dev.k2pekko.ps.server.PsProtocol.GroupState;
import dev.k2pekko.ps.server.PsProtocol.PushGradient;
import dev.k2pekko.ps.server.PsProtocol.RescaleQK;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.pattern.StatusReply;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * One shard of the parameter server: the fp32 master weights and optimizer state of one parameter group
 * ("embed", "layer0", ..., "head"), a Cluster Sharding entity on {@code ps} nodes. Learners push their gradient
 * shards here; the coordinator says which learners' gradients make up step v ({@link ApplyStep}). The group sums
 * them (mean over contributors), runs {@link MuonClip#update} per parameter (Muon or AdamW), then the QK rescales of
 * the step ({@link QkClip#rescaleHead}), and answers with its new weights. Master weights are kept as fp32 values: every update is
 * computed in fp64 and rounded back.
 */
public final class PsGroup extends AbstractBehavior<PsGroup.Command> {
  public static final EntityTypeKey<Command> KEY = EntityTypeKey.create(Command.class, "ps-group");

  /** What a group accepts: the coordinator's commands and the learners' gradient shards. */
  public sealed interface Command permits Init, ApplyStep, Prepare, Export, PsProtocol.PushGradient {}

  /** Load weights and optimizer state (fresh or from a checkpoint). Gradients pending for older versions are dropped. */
  public record Init(long version, ModelConfig config, MuonClip.Config optimizer, HashMap<String, float[]> weights,
                     HashMap<String, float[]> optimizerState, long steps, ActorRef<GroupState> replyTo) implements Command, KryoWire {}

  /**
   * Apply step {@code version}: the mean of the listed learners' gradients, at learning rate lr, then the rescales.
   * A group that lacks a contributor's shard (not arrived yet) changes nothing and answers with an error: ask again.
   */
  public record ApplyStep(long version, ArrayList<String> contributors, ArrayList<Long> gradientVersions, double lr,
                          ArrayList<RescaleQK> rescales, ActorRef<StatusReply<GroupApplied>> replyTo) implements Command, KryoWire {}

  /** Phase one of a step: does this group hold valid gradients of every contributor? Changes nothing. */
  public record Prepare(long version, ArrayList<String> contributors, ArrayList<Long> gradientVersions, ActorRef<Prepared> replyTo)
      implements Command, KryoWire {}

  /** Which contributors' gradients this group lacks (not arrived yet) and which it rejected (non-finite). */
  public record Prepared(String group, long version, ArrayList<String> missing, ArrayList<String> rejected) implements KryoWire {}

  /** Weights and optimizer state now (for a checkpoint). */
  public record Export(ActorRef<GroupState> replyTo) implements Command, KryoWire {}

  public static void init(ActorSystem<?> system) {
    ClusterSharding.get(system).init(Entity.of(KEY, ctx -> create(ctx.getEntityId())).withRole("ps"));
  }

  public static Behavior<Command> create(String group) {
    return Behaviors.setup(ctx -> new PsGroup(ctx, group));
  }

  private final String group;
  private final TensorOps ops = new ReferenceOps();
  private ModelConfig config;
  private MuonClip.Config opt;
  private final Map<String, ParamSpec> specs = new TreeMap<>();
  private final Map<String, Tensor> weights = new HashMap<>(), first = new HashMap<>(), second = new HashMap<>();
  private long steps;
  /** gradient version -> learner -> grads (a learner's gradient is keyed by the version it was computed at). */
  private final Map<Long, Map<String, HashMap<String, float[]>>> pending = new HashMap<>();
  private ActorRef<PsCoordinator.Command> coordinator;
  private final java.util.Set<PsProtocol.LearnerAt> rejected = new java.util.HashSet<>();

  private PsGroup(ActorContext<Command> ctx, String group) {
    super(ctx);
    this.group = group;
  }

  @Override public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Init.class, this::onInit)
        .onMessage(PushGradient.class, this::onPush)
        .onMessage(ApplyStep.class, this::onApply)
        .onMessage(Prepare.class, this::onPrepare)
        .onMessage(Export.class, this::onExport)
        .build();
  }

  private Behavior<Command> onInit(Init m) {
    config = m.config();
    opt = m.optimizer();
    specs.clear();
    weights.clear();
    first.clear();
    second.clear();
    for (var s : PolicyModel.specsOf(config)) {
      if (!PsProtocol.groupOf(s.name()).equals(group)) continue;
      specs.put(s.name(), s);
      float[] w = m.weights().get(s.name());
      if (w == null || w.length != s.size()) throw new IllegalArgumentException("group " + group + ": no weights for " + s.name());
      weights.put(s.name(), tensor(s, w));
      var mm = m.optimizerState().get(s.name() + "/m");
      if (mm != null) first.put(s.name(), tensor(s, mm));
      var vv = m.optimizerState().get(s.name() + "/v");
      if (vv != null) second.put(s.name(), tensor(s, vv));
    }
    steps = m.steps();
    pending.keySet().removeIf(v -> v < m.version());
    m.replyTo().tell(state());
    return this;
  }

  private Behavior<Command> onPush(PushGradient p) {
    String bad = null;
    for (var e : p.grads().entrySet()) {
      var s = specs.get(e.getKey());
      if (s == null || e.getValue().length != s.size()) {
        bad = "unexpected tensor " + e.getKey() + " for group " + group;
        break;
      }
      for (float f : e.getValue()) {
        if (!Float.isFinite(f)) {
          bad = "non-finite value in " + e.getKey();
          break;
        }
      }
      if (bad != null) break;
    }
    if (bad != null) {
      rejected.add(new PsProtocol.LearnerAt(p.learnerId(), p.version()));
      getContext().getLog().warn("group {}: gradient of {} at version {} refused: {}", group, p.learnerId(), p.version(), bad);
      coordinator().tell(new BadGradient(p.version(), p.learnerId(), group, bad));
      return this;
    }
    pending.computeIfAbsent(p.version(), v -> new HashMap<>()).put(p.learnerId(), p.grads());
    return this;
  }

  private Behavior<Command> onApply(ApplyStep a) {
    if (config == null) {
      a.replyTo().tell(StatusReply.error("group " + group + " has no weights yet"));
      return this;
    }
    var parts = new ArrayList<HashMap<String, float[]>>();
    for (int i = 0; i < a.contributors().size(); i++) {
      var byLearner = pending.get(a.gradientVersions().get(i));
      var g = byLearner == null ? null : byLearner.get(a.contributors().get(i));
      if (g == null) {
        a.replyTo().tell(StatusReply.error(
            "group " + group + " has no gradient from " + a.contributors().get(i) + " at version " + a.gradientVersions().get(i)));
        return this;
      }
      parts.add(g);
    }
    steps++;
    for (var s : specs.values()) {
      double[] sum = new double[s.size()];
      for (var p : parts) {
        float[] g = p.get(s.name());
        for (int i = 0; i < sum.length; i++) sum[i] += g[i];
      }
      for (int i = 0; i < sum.length; i++) sum[i] /= parts.size();
      // A parameter nobody has a gradient for (learners push zeros for a batch with nothing to learn, so that its
      // offsets advance) is left alone: no momentum-only drift, no normalised step of nothing.
      if (allZero(sum)) continue;
      boolean adam = MuonClip.route(s.kind()) == MuonClip.Rule.ADAMW;
      var r = MuonClip.update(ops, s.kind(), weights.get(s.name()), ops.tensor(s.rows(), s.cols(), sum), state(first, s),
          adam ? state(second, s) : null, (int) steps, a.lr(), opt);
      weights.put(s.name(), fp32(r.weight()));
      // the optimizer's state is fp32 like the weights: a checkpoint holds both as fp32, so a run that restores one
      // goes on bit for bit as the run that wrote it would have (a resumed SFT ends with the same weights)
      first.put(s.name(), fp32(r.m()));
      if (adam) second.put(s.name(), fp32(r.v()));
    }
    for (var r : a.rescales()) {
      String q = PolicyModel.queryWeight(r.layer()), k = PolicyModel.keyWeight(r.layer());
      if (!weights.containsKey(q)) continue; // another group's layer
      var scaled = QkClip.rescaleHead(ops, weights.get(q), weights.get(k), r.head(), config.headDim(), r.gamma(), opt.alpha());
      weights.put(q, fp32(scaled.wq()));
      weights.put(k, fp32(scaled.wk()));
    }
    pending.keySet().removeIf(v -> v <= a.version() - 64); // gradients too old to be admitted by any bound in use
    rejected.removeIf(k -> k.version() <= a.version() - 64);
    for (int i = 0; i < a.contributors().size(); i++) {
      var byLearner = pending.get(a.gradientVersions().get(i));
      if (byLearner != null) byLearner.remove(a.contributors().get(i));
    }
    a.replyTo().tell(StatusReply.success(new GroupApplied(group, a.version(), floats(weights))));
    return this;
  }

  private static boolean allZero(double[] a) {
    for (double x : a) if (x != 0) return false;
    return true;
  }

  private Behavior<Command> onPrepare(Prepare p) {
    var missing = new ArrayList<String>();
    var bad = new ArrayList<String>();
    for (int i = 0; i < p.contributors().size(); i++) {
      String learner = p.contributors().get(i);
      long v = p.gradientVersions().get(i);
      if (rejected.contains(new PsProtocol.LearnerAt(learner, v))) bad.add(learner);
      else if (pending.getOrDefault(v, Map.of()).get(learner) == null) missing.add(learner);
    }
    p.replyTo().tell(new Prepared(group, p.version(), missing, bad));
    return this;
  }

  private Behavior<Command> onExport(Export e) {
    e.replyTo().tell(state());
    return this;
  }

  private GroupState state() {
    var opt = new HashMap<String, float[]>();
    first.forEach((k, v) -> opt.put(k + "/m", dev.k2pekko.model.WeightsSnapshot.toFloats(v)));
    second.forEach((k, v) -> opt.put(k + "/v", dev.k2pekko.model.WeightsSnapshot.toFloats(v)));
    return new GroupState(group, floats(weights), opt, steps);
  }

  private ActorRef<PsCoordinator.Command> coordinator() {
    if (coordinator == null) coordinator = CoordinatorAddress.of(getContext().getSystem());
    return coordinator;
  }

  private Tensor state(Map<String, Tensor> states, ParamSpec s) {
    var x = states.get(s.name());
    return x != null ? x : ops.zeros(s.rows(), s.cols());
  }

  private Tensor tensor(ParamSpec s, float[] f) {
    double[] d = new double[f.length];
    for (int i = 0; i < f.length; i++) d[i] = f[i];
    return ops.tensor(s.rows(), s.cols(), d);
  }

  private Tensor fp32(Tensor t) {
    double[] d = t.toDoubles();
    for (int i = 0; i < d.length; i++) d[i] = (float) d[i];
    return ops.tensor(t.rows(), t.cols(), d);
  }

  private static HashMap<String, float[]> floats(Map<String, Tensor> m) {
    var out = new HashMap<String, float[]>();
    m.forEach((k, v) -> out.put(k, dev.k2pekko.model.WeightsSnapshot.toFloats(v)));
    return out;
  }

  /** Lets tests see what is pending. */
  List<Long> pendingVersions() { return List.copyOf(pending.keySet()); }
}
