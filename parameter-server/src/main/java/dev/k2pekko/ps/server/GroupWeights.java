package dev.k2pekko.ps.server;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.ParamSpec;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.optim.QkClip;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.protocol.PsProtocol.RescaleQK;
import dev.k2pekko.ps.server.PsGroup.GroupState;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A parameter group's master weights and optimizer state, and the step on them: the mean of the contributors'
 * gradients through {@link MuonClip#update} per parameter (Muon or AdamW), then the step's QK rescales through
 * {@link QkClip#rescaleHead}. Master weights and optimizer state are kept as fp32 values: every update is computed in
 * fp64 and rounded back. Owned by one {@link PsGroup} actor; no arithmetic of its own beyond the mean.
 */
final class GroupWeights {
  private final String group;
  private final TensorOps ops = new ReferenceOps();
  private ModelConfig config;
  private MuonClip.Config opt;
  private final Map<String, ParamSpec> specs = new TreeMap<>();
  private final Map<String, Tensor> weights = new HashMap<>(), first = new HashMap<>(), second = new HashMap<>();
  private long steps;

  GroupWeights(String group) {
    this.group = group;
  }

  /** Replaces everything with the given weights and optimizer state (fresh or from a checkpoint). */
  void load(ModelConfig config, MuonClip.Config optimizer, Map<String, float[]> initial, Map<String, float[]> optimizerState, long steps) {
    this.config = config;
    this.opt = optimizer;
    specs.clear();
    weights.clear();
    first.clear();
    second.clear();
    for (var s : PolicyModel.specsOf(config)) {
      if (!PsProtocol.groupOf(s.name()).equals(group)) continue;
      specs.put(s.name(), s);
      float[] w = initial.get(s.name());
      if (w == null || w.length != s.size()) throw new IllegalArgumentException("group " + group + ": no weights for " + s.name());
      weights.put(s.name(), tensor(s, w));
      var mm = optimizerState.get(s.name() + "/m");
      if (mm != null) first.put(s.name(), tensor(s, mm));
      var vv = optimizerState.get(s.name() + "/v");
      if (vv != null) second.put(s.name(), tensor(s, vv));
    }
    this.steps = steps;
  }

  /** False until the coordinator has sent the group its weights. */
  boolean loaded() {
    return config != null;
  }

  /** Why a learner's gradient shard does not fit this group (a tensor of another group or shape, a non-finite value), or null. */
  String refusal(Map<String, float[]> grads) {
    for (var e : grads.entrySet()) {
      var s = specs.get(e.getKey());
      if (s == null || e.getValue().length != s.size()) return "unexpected tensor " + e.getKey() + " for group " + group;
      for (float f : e.getValue()) {
        if (!Float.isFinite(f)) return "non-finite value in " + e.getKey();
      }
    }
    return null;
  }

  /** One optimizer step at learning rate {@code lr} on the mean of {@code parts} (one gradient shard per contributor). */
  void step(List<? extends Map<String, float[]>> parts, double lr) {
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
          adam ? state(second, s) : null, (int) steps, lr, opt);
      weights.put(s.name(), fp32(r.weight()));
      // the optimizer's state is fp32 like the weights: a checkpoint holds both as fp32, so a run that restores one
      // goes on bit for bit as the run that wrote it would have (a resumed SFT ends with the same weights)
      first.put(s.name(), fp32(r.m()));
      if (adam) second.put(s.name(), fp32(r.v()));
    }
  }

  /** The QK rescales of a step, those of this group's layers (the others are another group's). */
  void rescale(List<RescaleQK> rescales) {
    for (var r : rescales) {
      String q = PolicyModel.queryWeight(r.layer()), k = PolicyModel.keyWeight(r.layer());
      if (!weights.containsKey(q)) continue; // another group's layer
      var scaled = QkClip.rescaleHead(ops, weights.get(q), weights.get(k), r.head(), config.headDim(), r.gamma(), opt.alpha());
      weights.put(q, fp32(scaled.wq()));
      weights.put(k, fp32(scaled.wk()));
    }
  }

  /** The weights now, as the learners and inference servers take them. */
  HashMap<String, float[]> weights() {
    return floats(weights);
  }

  /** Weights and optimizer state now (for a checkpoint). */
  GroupState state() {
    var optimizer = new HashMap<String, float[]>();
    first.forEach((k, v) -> optimizer.put(k + "/m", WeightsSnapshot.toFloats(v)));
    second.forEach((k, v) -> optimizer.put(k + "/v", WeightsSnapshot.toFloats(v)));
    return new GroupState(group, floats(weights), optimizer, steps);
  }

  private static boolean allZero(double[] a) {
    for (double x : a) if (x != 0) return false;
    return true;
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
    m.forEach((k, v) -> out.put(k, WeightsSnapshot.toFloats(v)));
    return out;
  }
}
