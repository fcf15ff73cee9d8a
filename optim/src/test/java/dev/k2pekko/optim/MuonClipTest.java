package dev.k2pekko.optim;

import static org.junit.jupiter.api.Assertions.*;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.ParamSpec;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.ops.FusedMuon;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
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

  /**
   * ReferenceOps that frees as CudaOps does, on paper: a scope's close marks what ops created in it and were not kept as
   * dead, release marks its tensor dead, and any op reading a dead tensor fails. With {@code fused} it also offers
   * {@link FusedMuon} (the group step composed as in MuonTest), so Muon.steps takes its fused branch.
   */
  static final class Freeing {
    final Set<Tensor> dead = Collections.newSetFromMap(new IdentityHashMap<>());
    final ArrayDeque<List<Tensor>> created = new ArrayDeque<>();
    int released;
    final TensorOps ops;

    Freeing(boolean fused) {
      var composed = new MuonTest.ComposedFusedMuon();
      Class<?>[] types = fused ? new Class<?>[] {TensorOps.class, FusedMuon.class} : new Class<?>[] {TensorOps.class};
      ops = (TensorOps) Proxy.newProxyInstance(getClass().getClassLoader(), types, (proxy, method, args) -> {
        Object[] a = args == null ? new Object[0] : args;
        for (Object x : a) {
          if (x == null) continue;
          for (Object t : x instanceof List<?> l ? l : List.of(x)) {
            if (t instanceof Tensor tt && dead.contains(tt)) throw new AssertionError(method.getName() + " read a freed tensor " + tt.shapeString());
          }
        }
        switch (method.getName()) {
          case "scope" -> {
            var mine = new ArrayList<Tensor>();
            var kept = Collections.newSetFromMap(new IdentityHashMap<Tensor, Boolean>());
            created.push(mine);
            return new TensorOps.Scope() {
              @Override
              public void keep(Tensor t) {
                kept.add(t);
              }

              @Override
              public void close() {
                assertSame(mine, created.pop(), "scopes close in reverse order");
                for (Tensor t : mine) {
                  if (!kept.contains(t)) dead.add(t);
                  else if (!created.isEmpty()) created.peek().add(t);
                }
              }
            };
          }
          case "release" -> {
            dead.add((Tensor) a[0]);
            released++;
            return null;
          }
          default -> {
            Object r;
            try {
              r = method.getName().equals("muonGroupStep") ? method.invoke(composed, a) : method.invoke(ReferenceOps.INSTANCE, a);
            } catch (InvocationTargetException e) {
              throw e.getCause();
            }
            if (!created.isEmpty()) {
              List<Tensor> mine = created.peek();
              switch (r) {
                case Tensor t -> mine.add(t);
                case TensorOps.Grad2 g -> mine.addAll(List.of(g.first(), g.second()));
                case TensorOps.Grad3 g -> mine.addAll(List.of(g.first(), g.second(), g.third()));
                case TensorOps.Norm n -> mine.addAll(List.of(n.out(), n.rstd()));
                case TensorOps.Attention at -> mine.addAll(List.of(at.out(), at.probs()));
                case FusedMuon.GroupStep gs -> {
                  mine.addAll(gs.weights());
                  mine.addAll(gs.momenta());
                }
                case null, default -> {}
              }
            }
            return r;
          }
        }
      });
    }
  }

  /**
   * MuonClip.step frees its temporaries through a scope and releases the optimizer state it replaces: on a backend that
   * frees (Freeing), three steps, then a forward pass and a fourth step use nothing freed, on the op-by-op and the fused
   * Muon path, and the weights equal those of ReferenceOps, which frees nothing.
   */
  @Test
  void stepReadsNothingItFreedOrReleased() {
    var cfg = new ModelConfig(16, 8, 2, 2, 8, 2, 1e-5);
    var plain = new PolicyModel(cfg, ops, 5);
    var plainOpt = new MuonClip(MuonClip.Config.defaults().withClip(false, 100), plain);
    var grads = new ArrayList<Map<String, Tensor>>();
    for (int t = 0; t < 4; t++) {
      var g = new HashMap<String, Tensor>();
      for (ParamSpec s : plain.specs()) g.put(s.name(), NewtonSchulzTest.gaussian(300 + 50L * t + g.size(), s.rows(), s.cols()));
      grads.add(g);
      plainOpt.step(plain, g, new double[cfg.layers()][cfg.heads()], 0.01);
    }
    for (boolean fused : new boolean[] {false, true}) {
      var f = new Freeing(fused);
      var model = new PolicyModel(cfg, f.ops, 5);
      var opt = new MuonClip(MuonClip.Config.defaults().withClip(false, 100), model);
      for (int t = 0; t < 3; t++) opt.step(model, grads.get(t), new double[cfg.layers()][cfg.heads()], 0.01);
      model.forward(new int[] {1, 2, 3, 4}, 1, 4);
      opt.step(model, grads.get(3), new double[cfg.layers()][cfg.heads()], 0.01);
      // from step 2 on, every step releases each parameter's replaced state: m for all, v for the AdamW ones
      long adam = model.specs().stream().filter(s -> MuonClip.route(s.kind()) == MuonClip.Rule.ADAMW).count();
      assertEquals(3 * (model.specs().size() + adam), f.released, "released states" + (fused ? " (fused)" : ""));
      for (ParamSpec s : model.specs()) {
        assertFalse(f.dead.contains(model.parameter(s.name())), s.name() + " freed");
        assertArrayEquals(plain.parameter(s.name()).toDoubles(), model.parameter(s.name()).toDoubles(), 0.0, s.name() + (fused ? " (fused)" : ""));
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
