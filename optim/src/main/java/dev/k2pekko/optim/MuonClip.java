package dev.k2pekko.optim;

import dev.k2pekko.model.ParamKind;
import dev.k2pekko.model.ParamSpec;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * MuonClip over the policy's parameters: Muon for hidden 2-D matrices, AdamW for the rest (one lr,
 * one wd), then QK-Clip of every head whose max logit from the step's forward pass exceeds its
 * threshold. The optimizer state lives here; the weights live in the model.
 */
public final class MuonClip {
  /** Which update rule a parameter gets. */
  public enum Rule { MUON, ADAMW }

  /**
   * @param clip false runs vanilla Muon + AdamW (no QK-Clip)
   * @param tau the QK-Clip threshold on S_max = max q.k/sqrt(d)
   * @param alpha W_q rows get gamma^alpha, W_k rows gamma^(1-alpha)
   * @param adaptive per-head thresholds from running statistics (off by default)
   */
  public record Config(double weightDecay, double momentum, boolean nesterov, double beta1, double beta2, double eps,
      boolean clip, double tau, double alpha, boolean adaptive) {
    public static Config defaults() {
      var m = Muon.Config.defaults();
      var a = AdamW.Config.defaults();
      return new Config(m.weightDecay(), m.momentum(), m.nesterov(), a.beta1(), a.beta2(), a.eps(), true, 100.0,
          QkClip.DEFAULT_ALPHA, false);
    }

    public Config withClip(boolean on, double tau) {
      return new Config(weightDecay, momentum, nesterov, beta1, beta2, eps, on, tau, alpha, adaptive);
    }

    public Config withWeightDecay(double wd) {
      return new Config(wd, momentum, nesterov, beta1, beta2, eps, clip, tau, alpha, adaptive);
    }

    public Config withAdaptive(boolean on) {
      return new Config(weightDecay, momentum, nesterov, beta1, beta2, eps, clip, tau, alpha, on);
    }

    /** QK-Clip off, at tau for every head, or adaptive per head with tau as the cap. */
    public Config withClip(QkClip.Mode mode, double tau) {
      return withClip(mode != QkClip.Mode.OFF, tau).withAdaptive(mode == QkClip.Mode.ADAPTIVE);
    }

    public QkClip.Mode clipMode() {
      return !clip ? QkClip.Mode.OFF : adaptive ? QkClip.Mode.ADAPTIVE : QkClip.Mode.ON;
    }
  }

  /** gamma[layer][head] applied by QK-Clip this step (1 = untouched). */
  public record StepReport(double[][] gamma) {}

  /** The router: hidden matrices to Muon, embeddings, output head and norm gains to AdamW. */
  public static Rule route(ParamKind kind) {
    return switch (kind) {
      case HIDDEN_MATRIX -> Rule.MUON;
      case EMBEDDING, OUTPUT_HEAD, NORM_GAIN -> Rule.ADAMW;
    };
  }

  private final Config cfg;
  private final Map<String, Tensor> first = new HashMap<>(), second = new HashMap<>();
  private final AdaptiveThreshold adaptive;
  private final int layers, heads;
  private int t;

  public MuonClip(Config cfg, PolicyModel model) {
    this.cfg = cfg;
    var mc = model.config();
    this.layers = mc.layers();
    this.heads = mc.heads();
    this.adaptive = cfg.adaptive() ? new AdaptiveThreshold(AdaptiveThreshold.Config.defaults(cfg.tau()), mc.layers(), mc.heads()) : null;
  }

  public Config config() {
    return cfg;
  }

  /** A parameter after one update: its weight and optimizer state (v is null for Muon, which keeps momentum only). */
  public record Updated(Tensor weight, Tensor m, Tensor v) {}

  /**
   * One parameter's update as {@link #route} says: Muon (momentum m) for hidden matrices, AdamW (moments m, v at step t)
   * for the rest. The in-process optimizer ({@link #step}) and the parameter-server groups both call this.
   */
  public static Updated update(TensorOps ops, ParamKind kind, Tensor w, Tensor g, Tensor m, Tensor v, int t, double lr, Config cfg) {
    return switch (route(kind)) {
      case MUON -> {
        var r = Muon.step(ops, w, g, m, lr, muonConfig(cfg));
        yield new Updated(r.weight(), r.momentum(), null);
      }
      case ADAMW -> {
        var r = AdamW.step(ops, w, g, m, v, t, lr, new AdamW.Config(cfg.beta1(), cfg.beta2(), cfg.eps(), cfg.weightDecay()));
        yield new Updated(r.weight(), r.m(), r.v());
      }
    };
  }

  /**
   * One optimizer step on the model's weights from grads, then QK-Clip from the forward's maxLogit (layers, heads).
   * Each parameter gets what {@link #update} gives it; the Muon matrices go through {@link Muon#steps} together, so a
   * fused backend steps each group of same-shaped matrices (every layer's W_q, W_k, W_v, W_o; every W_1; every W_2) in
   * one call (CUDA: the fused group step, a few kernels and one batched Newton–Schulz chain per group).
   */
  public StepReport step(PolicyModel model, Map<String, Tensor> grads, double[][] maxLogit, double lr) {
    TensorOps ops = model.ops();
    for (ParamSpec s : model.specs()) {
      if (grads.get(s.name()) == null) throw new IllegalArgumentException("no gradient for " + s.name() + ": nothing updated");
    }
    t++;
    // the step's temporaries (AdamW's g^2 and direction, the op-by-op Muon's intermediates, a first step's zero state)
    // go back to a GPU backend's pool when the scope closes instead of at the next collection; what it keeps is what
    // the step creates without a scope: the new weights and optimizer state
    try (var scope = ops.scope()) {
      var muon = new ArrayList<ParamSpec>();
      var ws = new ArrayList<Tensor>();
      var gs = new ArrayList<Tensor>();
      var ms = new ArrayList<Tensor>();
      for (ParamSpec s : model.specs()) {
        if (route(s.kind()) == Rule.MUON) {
          muon.add(s);
          ws.add(model.parameter(s.name()));
          gs.add(grads.get(s.name()));
          ms.add(state(first, s, ops));
          continue;
        }
        var r = update(ops, s.kind(), model.parameter(s.name()), grads.get(s.name()), state(first, s, ops), state(second, s, ops), t, lr, cfg);
        scope.keep(r.weight());
        scope.keep(r.m());
        scope.keep(r.v());
        model.setParameter(s.name(), r.weight());
        release(ops, first.put(s.name(), r.m()));
        release(ops, second.put(s.name(), r.v()));
      }
      List<Muon.Step> steps = Muon.steps(ops, ws, gs, ms, lr, muonConfig(cfg));
      for (int i = 0; i < muon.size(); i++) {
        scope.keep(steps.get(i).weight());
        scope.keep(steps.get(i).momentum());
        model.setParameter(muon.get(i).name(), steps.get(i).weight());
        release(ops, first.put(muon.get(i).name(), steps.get(i).momentum()));
      }
    }
    return new StepReport(cfg.clip() ? clip(model, maxLogit) : ones(maxLogit));
  }

  /**
   * The replaced optimizer state goes back to a GPU backend's pool at once: only this object ever held it (the maps
   * are private), and the step's kernels that read it are already queued. Otherwise it would wait for a collection,
   * and the next step's state would come from cudaMalloc.
   */
  private static void release(TensorOps ops, Tensor old) {
    if (old != null) ops.release(old);
  }

  private static Muon.Config muonConfig(Config cfg) {
    return new Muon.Config(cfg.momentum(), cfg.nesterov(), cfg.weightDecay());
  }

  /** A parameter's optimizer state, zeros before its first step. */
  private static Tensor state(Map<String, Tensor> states, ParamSpec s, TensorOps ops) {
    var x = states.get(s.name());
    return x != null ? x : ops.zeros(s.rows(), s.cols());
  }

  /** QK-Clip alone: rescales each layer's W_q/W_k rows of the heads over threshold; returns gamma (layers, heads). */
  public double[][] clip(PolicyModel model, double[][] maxLogit) {
    double[][] tau = thresholds();
    if (adaptive != null) adaptive.observe(maxLogit);
    return clip(model, maxLogit, tau);
  }

  /** This step's per-head thresholds (layers, heads): tau everywhere, or the adaptive ones. */
  public double[][] thresholds() {
    if (adaptive != null) return adaptive.thresholds();
    double[][] tau = new double[layers][heads];
    for (double[] row : tau) java.util.Arrays.fill(row, cfg.tau());
    return tau;
  }

  private double[][] clip(PolicyModel model, double[][] maxLogit, double[][] tau) {
    double[][] gamma = new double[layers][];
    for (int l = 0; l < layers; l++) {
      String q = PolicyModel.queryWeight(l), k = PolicyModel.keyWeight(l);
      var r = QkClip.apply(model.ops(), model.parameter(q), model.parameter(k), maxLogit[l], tau[l], cfg.alpha());
      model.setParameter(q, r.wq());
      model.setParameter(k, r.wk());
      gamma[l] = r.gamma();
    }
    return gamma;
  }

  /** What {@link #enforce} found: the final forward's maxLogit (layers, heads) and how many extra clip passes ran. */
  public record Enforced(double[][] maxLogit, int passes) {}

  /**
   * Re-measures S_max on a batch with the current (already stepped) weights and clips until every head
   * is at or under its threshold on that batch. QK-Clip from the step's forward pass uses logits of the
   * weights before the update, so a large step can leave a head slightly over tau; this pass closes that
   * gap at the cost of one forward (plus one per extra pass). Clipping layer l rescales its logits exactly
   * but changes the inputs of the layers above, hence the loop (at most layers + 1 passes).
   */
  public Enforced enforce(PolicyModel model, int[] ids, int batch, int seq) {
    double[][] tau = thresholds();
    double[][] s = forwardMaxLogit(model, ids, batch, seq);
    int passes = 0;
    while (passes <= layers && over(s, tau)) {
      clip(model, s, tau);
      s = forwardMaxLogit(model, ids, batch, seq);
      passes++;
    }
    return new Enforced(s, passes);
  }

  private static double[][] forwardMaxLogit(PolicyModel model, int[] ids, int batch, int seq) {
    try (var scope = model.ops().scope()) {
      return model.forward(ids, batch, seq).maxLogit();
    }
  }

  private static boolean over(double[][] s, double[][] tau) {
    for (int l = 0; l < s.length; l++) for (int h = 0; h < s[l].length; h++) if (s[l][h] > tau[l][h] * (1 + 1e-12)) return true;
    return false;
  }

  private static double[][] ones(double[][] shape) {
    double[][] g = new double[shape.length][];
    for (int l = 0; l < g.length; l++) {
      g[l] = new double[shape[l].length];
      java.util.Arrays.fill(g[l], 1.0);
    }
    return g;
  }
}
