package dev.k2pekko.protocol;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/**
 * The parameter server's protocol as the learners (and inference servers) see it: what they send to its coordinator
 * ({@link ToCoordinator}) and to its groups ({@link ToGroup}), what they get back, and the published weights
 * ({@link Weights}, under {@link #WEIGHTS}). The coordinator's and the groups' own messages (status, checkpoints, the
 * steps' phases, which carry {@code model} and {@code optim} types) are declared next to their behaviours in
 * {@code parameter-server}, as the {@code Internal} of each.
 */
public final class PsProtocol {
  private PsProtocol() {}

  /** What the parameter server's coordinator accepts. */
  public sealed interface ToCoordinator permits RegisterLearner, Pushed, Pass, BadGradient, ToCoordinator.Internal {
    /** The coordinator's own messages (status, checkpoints, its parts' and timers' messages), declared next to it. */
    non-sealed interface Internal extends ToCoordinator {}
  }

  /** What a parameter-server group (a Cluster Sharding entity of type {@link #GROUP_ENTITY_TYPE}) accepts. */
  public sealed interface ToGroup permits PushGradient, ToGroup.Internal {
    /** The coordinator's commands to a group (init, prepare, apply, export), declared next to the group. */
    non-sealed interface Internal extends ToGroup {}
  }

  /**
   * The entity type name of the groups, by parameter group (see {@link #groupOf}): {@code EntityTypeKey.create(
   * ToGroup.class, GROUP_ENTITY_TYPE)} on both sides. A name, not the key: the key is a cluster-sharding type, and this
   * module depends on nothing but Pekko's actors and its serializers.
   */
  public static final String GROUP_ENTITY_TYPE = "ps-group";

  /** Learners and inference servers register here to receive every published version. */
  public static final ServiceKey<Weights> WEIGHTS = ServiceKey.create(Weights.class, "k2-weights");

  /** The parameter group a weight belongs to: "embed", "layer&lt;l&gt;" or "head". Groups are the PS's shards. */
  public static String groupOf(String param) {
    if (param.startsWith("layer")) return param.substring(0, param.indexOf('.'));
    if (param.equals("tok_emb") || param.equals("pos_emb")) return "embed";
    return "head";
  }

  /** Splits a full map of tensors by group. */
  public static Map<String, HashMap<String, float[]>> byGroup(Map<String, float[]> all) {
    var out = new LinkedHashMap<String, HashMap<String, float[]>>();
    all.forEach((k, v) -> out.computeIfAbsent(groupOf(k), g -> new HashMap<>()).put(k, v));
    return out;
  }

  /**
   * One published version of the policy's weights on the wire: fp32 arrays in spec order, the SHA-256 the parameter
   * server computed over them, and the model's shape as plain numbers. {@code dev.k2pekko.model.WeightsSnapshot} is
   * what a receiver makes of it (and verifies) before it uses the weights; this record only carries them.
   */
  public record Weights(long version, Shape shape, List<String> names, List<float[]> data, String sha256) implements KryoWire {
    /** The fields of {@code dev.k2pekko.model.ModelConfig}, in its order. */
    public record Shape(int vocab, int dModel, int layers, int heads, int context, int mlpRatio, double normEps) implements KryoWire {}
  }

  /** Where a learner's stream of one journal tag stands: the event's offset and how many of its trajectories are done. */
  public record TagOffset(long eventOffset, int consumedInEvent) implements KryoWire {
    /** The further of two positions in the same tag's stream. */
    public static TagOffset later(TagOffset a, TagOffset b) {
      return b.eventOffset > a.eventOffset || (b.eventOffset == a.eventOffset && b.consumedInEvent > a.consumedInEvent) ? b : a;
    }
  }

  /** What a learner's batch trains: supervised fine-tuning on accepted teacher trajectories, or RL on sampled rollouts. */
  public enum StageKind { SFT, RL }

  /** A learner and the weights version its gradient was computed at. */
  public record LearnerAt(String learnerId, long version) {}

  /** One QK-Clip command: multiply head {@code head}'s W_q rows by gamma^alpha and W_k rows by gamma^(1-alpha). */
  public record RescaleQK(long version, int layer, int head, double gamma) implements KryoWire {}

  // ---- learner -> group

  /** A learner's gradient for the weights of one group, computed at {@code version}. */
  public record PushGradient(long version, String learnerId, HashMap<String, float[]> grads) implements ToGroup, KryoWire {}

  // ---- learner -> coordinator

  /**
   * A learner (re)starts: it gets the durable offsets to read from ({@link Offsets}, answered only while no step is
   * in flight, so a step of an earlier incarnation is either applied and in the offsets or dropped) and then every
   * published version on {@code weights}.
   */
  public record RegisterLearner(String learnerId, ActorRef<Weights> weights, ActorRef<Offsets> offsets) implements ToCoordinator, KryoWire {}

  /** Where every tag's stream stands for the run, durably (the offsets of the last applied step). */
  public record Offsets(HashMap<String, TagOffset> offsets, long version) implements KryoWire {}

  /**
   * A learner has pushed its gradient shards for {@code version} to every group: the trajectories it consumed for
   * them and where its tags stand after them. Applied, the offsets become durable; refused, nothing advances.
   * {@code reward} is the batch's mean RL reward (NaN for SFT).
   */
  public record Pushed(long version, String learnerId, ArrayList<String> trajectoryIds, HashMap<String, TagOffset> offsets,
                       double loss, long tokens, StageKind kind, double reward, ActorRef<PushOutcome> replyTo, long sealed)
      implements ToCoordinator, KryoWire {
    /** A push of a learner that has seen no sealed part. */
    public Pushed(long version, String learnerId, ArrayList<String> trajectoryIds, HashMap<String, TagOffset> offsets,
                  double loss, long tokens, StageKind kind, double reward, ActorRef<PushOutcome> replyTo) {
      this(version, learnerId, trajectoryIds, offsets, loss, tokens, kind, reward, replyTo, 0);
    }
  }

  /**
   * A learner has nothing to train on at {@code version}: synchronous steps of that version do not wait for it.
   * {@code sealed} is the ordinal of the last sealed part it has read ({@link Pushed} carries it too): a pass counts only
   * for steps whose pushes come from learners that have read no later part, so a learner that passed before a part
   * was sealed is waited for until it has read the seal (docs/DESIGN.md, "Reproducible runs").
   */
  public record Pass(long version, String learnerId, long sealed) implements ToCoordinator, KryoWire {
    public Pass(long version, String learnerId) {
      this(version, learnerId, 0);
    }
  }

  /** The durable offsets' key under which learners keep the ordinal of the last part sealed. */
  public static final String SEALED_KEY = "sealed";

  /** What became of a learner's push. */
  public enum Outcome {
    /** Its step is done and its offsets durable. */
    APPLIED,
    /** Too old, or too late for its step: compute it again at newer weights. */
    STALE,
    /** Rejected (a non-finite gradient); its data counts as consumed. */
    NON_FINITE,
    /** The coordinator is not ready: push it again. */
    STARTING
  }

  /** What became of a learner's push for {@code version}. */
  public record PushOutcome(long version, String learnerId, Outcome outcome) implements KryoWire {}

  // ---- group -> coordinator

  /** A group refused a learner's gradient shard (a tensor of another group or shape, or a non-finite value): the learner's push is rejected. */
  public record BadGradient(long version, String learnerId, String group, String detail) implements ToCoordinator, KryoWire {}
}
