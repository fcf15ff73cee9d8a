package dev.k2pekko.ps.server;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.ParamSpec;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.protocol.KryoWire;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorRef;

/** Messages between learners, the parameter-server groups, its coordinator and the clip-monitor. */
public final class PsProtocol {
  private PsProtocol() {}

  /** The parameter group a weight belongs to: "embed", "layer&lt;l&gt;" or "head". Groups are the PS's shards. */
  public static String groupOf(String param) {
    if (param.startsWith("layer")) return param.substring(0, param.indexOf('.'));
    if (param.equals("tok_emb") || param.equals("pos_emb")) return "embed";
    return "head";
  }

  /** Every group of a model, in spec order. */
  public static List<String> groups(ModelConfig cfg) {
    var out = new ArrayList<String>();
    for (ParamSpec s : PolicyModel.specsOf(cfg)) if (!out.contains(groupOf(s.name()))) out.add(groupOf(s.name()));
    return out;
  }

  /** Splits a full map of tensors by group. */
  public static Map<String, HashMap<String, float[]>> byGroup(Map<String, float[]> all) {
    var out = new LinkedHashMap<String, HashMap<String, float[]>>();
    all.forEach((k, v) -> out.computeIfAbsent(groupOf(k), g -> new HashMap<>()).put(k, v));
    return out;
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
  public record PushGradient(long version, String learnerId, HashMap<String, float[]> grads)
      implements PsGroup.Command, KryoWire {}

  // ---- learner -> coordinator

  /**
   * A learner (re)starts: it gets the durable offsets to read from ({@link Offsets}, answered only while no step is
   * in flight, so a step of an earlier incarnation is either applied and in the offsets or dropped) and then every
   * published version on {@code weights}.
   */
  public record RegisterLearner(String learnerId, ActorRef<WeightsSnapshot> weights, ActorRef<Offsets> offsets)
      implements PsCoordinator.Command, KryoWire {}

  /** Where every tag's stream stands for the run, durably (the offsets of the last applied step). */
  public record Offsets(HashMap<String, TagOffset> offsets, long version) implements KryoWire {}

  /**
   * A learner has pushed its gradient shards for {@code version} to every group: the trajectories it consumed for
   * them and where its tags stand after them. Applied, the offsets become durable; refused, nothing advances.
   * {@code reward} is the batch's mean RL reward (NaN for SFT).
   */
  public record Pushed(long version, String learnerId, ArrayList<String> trajectoryIds, HashMap<String, TagOffset> offsets,
                       double loss, long tokens, StageKind kind, double reward, ActorRef<PushOutcome> replyTo, long sealed)
      implements PsCoordinator.Command, KryoWire {
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
  public record Pass(long version, String learnerId, long sealed) implements PsCoordinator.Command, KryoWire {
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

  public record BadGradient(long version, String learnerId, String group, String detail) implements PsCoordinator.Command, KryoWire {}

  /** A group applied step {@code version}: its new weights (the reply's success; a group that lacks a shard answers with an error). */
  public record GroupApplied(String group, long version, HashMap<String, float[]> weights) implements KryoWire {}

  public record GroupState(String group, HashMap<String, float[]> weights, HashMap<String, float[]> optimizer, long steps) implements KryoWire {}
}
