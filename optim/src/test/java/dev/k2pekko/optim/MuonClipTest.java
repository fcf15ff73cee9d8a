package dev.k2pekko.optim;

import static org.junit.jupiter.api.Assertions.*;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.ParamSpec;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class MuonClipTest {
  final ReferenceOps ops = ReferenceOps.INSTANCE;

  /** The optimizer's step (Muon matrices together) gives every parameter exactly what MuonClip.update gives it alone. */
  @Test
  void stepEqualsUpdateOfEachParameter() {
    var cfg = new ModelConfig(16, 8, 2, 2, 8, 2, 1e-5);
    var model = new PolicyModel(cfg, ops, 3);
    var copy = new PolicyModel(cfg, ops, model.parameters());
    var opt = new MuonClip(MuonClip.Config.defaults().withClip(false, 100), model);
    Map<String, Tensor> m = new HashMap<>(), v = new HashMap<>();
    long seed = 100;
    for (int t = 1; t <= 3; t++) {
      var grads = new HashMap<String, Tensor>();
      for (ParamSpec s : model.specs()) grads.put(s.name(), NewtonSchulzTest.gaussian(seed++, s.rows(), s.cols()));
      opt.step(model, grads, new double[cfg.layers()][cfg.heads()], 0.01);
      for (ParamSpec s : copy.specs()) {
        var r = MuonClip.update(ops, s.kind(), copy.parameter(s.name()), grads.get(s.name()),
            m.getOrDefault(s.name(), ops.zeros(s.rows(), s.cols())), v.getOrDefault(s.name(), ops.zeros(s.rows(), s.cols())), t, 0.01,
            opt.config());
        copy.setParameter(s.name(), r.weight());
        m.put(s.name(), r.m());
        if (r.v() != null) v.put(s.name(), r.v());
      }
      for (ParamSpec s : model.specs()) {
        assertArrayEquals(copy.parameter(s.name()).toDoubles(), model.parameter(s.name()).toDoubles(), 0.0, s.name() + " after step " + t);
      }
    }
  }

  @Test
  void aMissingGradientIsRefusedBeforeAnythingMoves() {
    var cfg = new ModelConfig(16, 8, 1, 2, 8, 2, 1e-5);
    var model = new PolicyModel(cfg, ops, 4);
    var before = new HashMap<String, double[]>();
    var grads = new HashMap<String, Tensor>();
    for (ParamSpec s : model.specs()) {
      before.put(s.name(), model.parameter(s.name()).toDoubles());
      grads.put(s.name(), NewtonSchulzTest.gaussian(s.name().hashCode(), s.rows(), s.cols()));
    }
    grads.remove(PolicyModel.keyWeight(0));
    var opt = new MuonClip(MuonClip.Config.defaults(), model);
    var e = assertThrows(IllegalArgumentException.class, () -> opt.step(model, grads, new double[1][2], 0.01));
    assertTrue(e.getMessage().contains(PolicyModel.keyWeight(0)), e.getMessage());
    for (ParamSpec s : model.specs()) assertArrayEquals(before.get(s.name()), model.parameter(s.name()).toDoubles(), 0.0, s.name());
  }
}
