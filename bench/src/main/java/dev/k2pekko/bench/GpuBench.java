package dev.k2pekko.bench;

import dev.k2pekko.model.Losses;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.ParamSpec;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.TokenBatch;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import dev.k2pekko.ops.cuda.CudaDevice;
import dev.k2pekko.ops.cuda.CudaOps;
import dev.k2pekko.optim.Muon;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.optim.NewtonSchulz;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * The GPU benchmarks of BENCHMARKS.md ("CUDA backend on an H200"), the Java side; bench/torch_bench.py is
 * the PyTorch side, run in the same session. Parts (first argument, comma-separated, default all):
 * <ul>
 *   <li>{@code ns}: Newton–Schulz 5 in bf16 on square and policy-shaped matrices, through the generic ops
 *       (NewtonSchulz.orthogonalize on CudaOps: fp32 tensors, bf16 GEMMs) and through CudaOps.newtonSchulz
 *       (bf16 throughout, the linear terms in the GEMMs' beta), timed with CUDA events; then, at every Muon shape of
 *       the step part's two models, each group of same-shaped matrices one by one (newtonSchulz per matrix) and in
 *       one CudaOps.newtonSchulzBatch call, and how far apart the two results are;</li>
 *   <li>{@code optim}: the whole optimizer step (Muon for the hidden matrices, AdamW for the rest, no QK-Clip) on
 *       the step part's two models with fixed random gradients: MuonClip.step (the Muon matrices grouped by shape,
 *       one fused group step each) against MuonClip.update on each parameter in turn (one Newton–Schulz chain per matrix), alternating,
 *       timed with CUDA events; then the Muon matrices alone, Muon.steps (CudaOps' fused group step) against
 *       Muon.composedSteps (op by op, batched Newton–Schulz);</li>
 *   <li>{@code step}: one learner step (forward, backward, optimizer) of PolicyModel at d=512/L=8/B=32 and
 *       d=1024/L=12/B=16, T=1024, V=8192: with fused AdamW on every parameter (PyTorch's optimizer in the
 *       comparison) and with the repository's MuonClip; AdamW again with bf16 activations off (every output
 *       fp32), and an A/B run in alternate steps of one model (bf16 activations on/off); first, the loss and
 *       gradients of one step with bf16 activations on and off;</li>
 *   <li>{@code ops}: single ops at the d=512/B=32/T=1024 step's shapes, with bf16 outputs and fp32 outputs;</li>
 *   <li>{@code agree}: the same seed trained on ReferenceOps (fp64, CPU) and CudaOps (bf16) with MuonClip,
 *       the loss of every step side by side.</li>
 * </ul>
 * Each figure line starts with "RESULT" and is one JSON object.
 */
public final class GpuBench {
  private GpuBench() {}

  static void result(String json) {
    System.out.println("RESULT " + json);
    System.out.flush();
  }

  public static void main(String[] args) {
    var parts = java.util.Set.of((args.length > 0 ? args[0] : "ns,step,agree").split(","));
    int agreeSteps = args.length > 1 ? Integer.parseInt(args[1]) : 200;
    var ops = new CudaOps();
    CudaDevice d = ops.device();
    System.out.println("device " + d.name() + " (" + d.arch() + "), " + d.versions());
    int failed = 0;
    if (parts.contains("ns")) {
      failed += part("ns", () -> newtonSchulz(ops));
      failed += part("ns models", () -> newtonSchulzModels(ops));
    }
    if (parts.contains("optim")) failed += part("optim", () -> optimizerStep(ops));
    if (parts.contains("ops")) failed += part("ops", () -> opTimes(ops));
    if (parts.contains("step")) {
      failed += part("step", () -> {
        for (int[] size : MODELS) {
          step(ops, size[0], size[1], size[2], "adamw", true);
          step(ops, size[0], size[1], size[2], "adamw", false);
          step(ops, size[0], size[1], size[2], "muonclip", true);
        }
      });
    }
    if (parts.contains("agree")) failed += part("agree", () -> agree(ops, agreeSteps));
    System.out.println("pool: " + ops.memoryStats() + "; NVRTC compile " + Math.round(d.compileMs()) + " ms");
    if (failed > 0) System.exit(1);
  }

  /** Runs one part; a part that throws is reported (stack trace on stderr) and the next parts still run. 1 if it threw. */
  static int part(String name, Runnable body) {
    try {
      body.run();
      return 0;
    } catch (RuntimeException e) {
      System.out.println("PART FAILED " + name + ": " + e);
      e.printStackTrace();
      return 1;
    }
  }

  // ---- Newton–Schulz ----

  static double nsFlops(int rows, int cols) {
    double r = Math.min(rows, cols), c = Math.max(rows, cols);
    return NewtonSchulz.STEPS * (4 * r * r * c + 2 * r * r * r);
  }

  /** Median ms over reps of task, each timed with CUDA events, after 3 warm-ups. */
  static double eventMs(CudaOps ops, Runnable task, int reps) {
    for (int i = 0; i < 3; i++) task.run();
    ops.synchronize();
    double[] ms = new double[reps];
    var timer = new EventTimer(ops.device());
    for (int i = 0; i < reps; i++) {
      timer.start();
      task.run();
      ms[i] = timer.stopMs();
    }
    java.util.Arrays.sort(ms);
    return ms[reps / 2];
  }

  /** NewtonSchulz.orthogonalize's op-by-op loop (which itself takes the fused path on CudaOps). */
  static Tensor genericNs(TensorOps ops, Tensor g) {
    Tensor x = ops.scale(g, 1.0 / (Math.sqrt(ops.sumOfSquares(g)) + NewtonSchulz.EPS));
    boolean tall = g.rows() > g.cols();
    if (tall) x = ops.transpose(x);
    for (int i = 0; i < NewtonSchulz.STEPS; i++) {
      Tensor a = ops.matmul(x, false, x, true);
      Tensor b = ops.linear(NewtonSchulz.B, a, NewtonSchulz.C, ops.matmul(a, false, a, false));
      x = ops.linear(NewtonSchulz.A, x, 1.0, ops.matmul(b, false, x, false));
    }
    return tall ? ops.transpose(x) : x;
  }

  static void newtonSchulz(CudaOps ops) {
    int[][] shapes = {{1024, 1024}, {4096, 4096}, {8192, 8192}, {512, 512}, {2048, 512}, {512, 2048}, {4096, 1024}, {1024, 4096}};
    var rnd = new Random(3);
    for (int[] s : shapes) {
      float[] g = new float[s[0] * s[1]];
      for (int i = 0; i < g.length; i++) g[i] = (float) rnd.nextGaussian();
      Tensor t = ops.tensor(s[0], s[1], g);
      int reps = s[0] * (long) s[1] >= 4096L * 4096 ? 10 : 30;
      double fused = eventMs(ops, () -> ops.newtonSchulz(t, NewtonSchulz.STEPS, NewtonSchulz.A, NewtonSchulz.B, NewtonSchulz.C,
          NewtonSchulz.EPS), reps);
      double generic = eventMs(ops, () -> genericNs(ops, t), reps);
      double f = nsFlops(s[0], s[1]);
      result(String.format(Locale.ROOT,
          "{\"bench\":\"ns5\",\"side\":\"java\",\"rows\":%d,\"cols\":%d,\"fused_ms\":%.4f,\"generic_ms\":%.4f,\"fused_tflops\":%.1f,\"generic_tflops\":%.1f}",
          s[0], s[1], fused, generic, f / fused / 1e9, f / generic / 1e9));
    }
  }

  /** The step part's models: d, layers, batch (T=1024, V=8192, heads of 64). */
  static final int[][] MODELS = {{512, 8, 32}, {1024, 12, 16}};

  static ModelConfig modelConfig(int dModel, int layers) {
    return new ModelConfig(8192, dModel, layers, dModel / 64, 1024, 4, 1e-5);
  }

  /** The Muon matrices' shapes of a model (rows, cols) with how many of each, in order of first appearance. */
  static Map<List<Integer>, Integer> muonShapes(ModelConfig cfg) {
    var shapes = new java.util.LinkedHashMap<List<Integer>, Integer>();
    for (ParamSpec s : PolicyModel.specsOf(cfg)) {
      if (MuonClip.route(s.kind()) == MuonClip.Rule.MUON) shapes.merge(List.of(s.rows(), s.cols()), 1, Integer::sum);
    }
    return shapes;
  }

  static Tensor randn(CudaOps ops, Random rnd, int rows, int cols) {
    float[] g = new float[rows * cols];
    for (int i = 0; i < g.length; i++) g[i] = (float) rnd.nextGaussian();
    return ops.tensor(rows, cols, g);
  }

  static List<Tensor> nsBatch(CudaOps ops, List<Tensor> gs) {
    return ops.newtonSchulzBatch(gs, NewtonSchulz.STEPS, NewtonSchulz.A, NewtonSchulz.B, NewtonSchulz.C, NewtonSchulz.EPS);
  }

  static Tensor nsOne(CudaOps ops, Tensor g) {
    return ops.newtonSchulz(g, NewtonSchulz.STEPS, NewtonSchulz.A, NewtonSchulz.B, NewtonSchulz.C, NewtonSchulz.EPS);
  }

  /**
   * Every Muon shape of both models: one matrix alone, the model's matrices of that shape one by one, and the same
   * in one batched call (each run in a scope, so the pool serves it from its free lists), CUDA-event medians of 20
   * after 3 warm-ups; the largest ||batched - one|| / ||one|| over the group; then the sums over the model's shapes.
   */
  static void newtonSchulzModels(CudaOps ops) {
    var rnd = new Random(5);
    for (int[] m : MODELS) {
      var cfg = modelConfig(m[0], m[1]);
      double oneTotal = 0, batchTotal = 0;
      int matrices = 0;
      for (var e : muonShapes(cfg).entrySet()) {
        int rows = e.getKey().get(0), cols = e.getKey().get(1), count = e.getValue();
        var gs = new ArrayList<Tensor>();
        for (int i = 0; i < count; i++) gs.add(randn(ops, rnd, rows, cols));
        int reps = 20;
        double single = eventMs(ops, () -> {
          try (var scope = ops.scope()) {
            nsOne(ops, gs.get(0));
          }
        }, reps);
        double one = eventMs(ops, () -> {
          try (var scope = ops.scope()) {
            for (Tensor g : gs) nsOne(ops, g);
          }
        }, reps);
        double batched = eventMs(ops, () -> {
          try (var scope = ops.scope()) {
            nsBatch(ops, gs);
          }
        }, reps);
        double diff = 0;
        try (var scope = ops.scope()) {
          List<Tensor> b = nsBatch(ops, gs);
          for (int i = 0; i < count; i++) {
            Tensor o = nsOne(ops, gs.get(i));
            diff = Math.max(diff, Math.sqrt(ops.sumOfSquares(ops.linear(1, b.get(i), -1, o)) / ops.sumOfSquares(o)));
          }
        }
        double f = nsFlops(rows, cols) * count;
        result(String.format(Locale.ROOT,
            "{\"bench\":\"ns5_model\",\"side\":\"java\",\"d\":%d,\"layers\":%d,\"rows\":%d,\"cols\":%d,\"count\":%d,\"single_ms\":%.4f,"
                + "\"one_by_one_ms\":%.4f,\"batched_ms\":%.4f,\"per_matrix_one_by_one_ms\":%.4f,\"per_matrix_batched_ms\":%.4f,"
                + "\"batched_tflops\":%.1f,\"speedup\":%.2f,\"batched_vs_one_rel_diff_max\":%.2e}",
            m[0], m[1], rows, cols, count, single, one, batched, one / count, batched / count, f / batched / 1e9, one / batched, diff));
        oneTotal += one;
        batchTotal += batched;
        matrices += count;
        gs.clear();
        ops.trimPool();
      }
      result(String.format(Locale.ROOT,
          "{\"bench\":\"ns5_model_total\",\"side\":\"java\",\"d\":%d,\"layers\":%d,\"matrices\":%d,\"one_by_one_ms\":%.4f,\"batched_ms\":%.4f,"
              + "\"speedup\":%.2f}",
          m[0], m[1], matrices, oneTotal, batchTotal, oneTotal / batchTotal));
    }
  }

  /** The optimizer step as MuonClip.step ran it before grouping: MuonClip.update on each parameter in turn. */
  static final class PerParameter {
    final Map<String, Tensor> m = new HashMap<>(), v = new HashMap<>();
    final MuonClip.Config cfg;
    int t;

    PerParameter(MuonClip.Config cfg) {
      this.cfg = cfg;
    }

    void step(CudaOps ops, PolicyModel model, Map<String, Tensor> grads, double lr) {
      t++;
      for (ParamSpec s : model.specs()) {
        boolean adam = MuonClip.route(s.kind()) == MuonClip.Rule.ADAMW;
        Tensor mm = m.computeIfAbsent(s.name(), k -> ops.zeros(s.rows(), s.cols()));
        Tensor vv = adam ? v.computeIfAbsent(s.name(), k -> ops.zeros(s.rows(), s.cols())) : null;
        var r = MuonClip.update(ops, s.kind(), model.parameter(s.name()), grads.get(s.name()), mm, vv, t, lr, cfg);
        model.setParameter(s.name(), r.weight());
        m.put(s.name(), r.m());
        if (adam) v.put(s.name(), r.v());
      }
    }
  }

  /**
   * The whole optimizer step of both models (Muon + AdamW, QK-Clip off, as torch.optim.Muon + AdamW on the PyTorch
   * side) on fixed random gradients: MuonClip.step (grouped: on CudaOps the fused Muon group step) and the per-parameter
   * loop, each with its own optimizer state on the same model, 3 warm-ups each, then 10 of each alternating; CUDA-event
   * medians and minima. Then {@link #muonPart} on the same model.
   */
  static void optimizerStep(CudaOps ops) {
    for (int[] size : MODELS) {
      ops.trimPool();
      var cfg = modelConfig(size[0], size[1]);
      var model = new PolicyModel(cfg, ops, 1);
      var rnd = new Random(6);
      var grads = new HashMap<String, Tensor>();
      for (ParamSpec s : model.specs()) grads.put(s.name(), ops.scale(randn(ops, rnd, s.rows(), s.cols()), 1e-3));
      var optCfg = MuonClip.Config.defaults().withClip(false, 100);
      var grouped = new MuonClip(optCfg, model);
      var perParam = new PerParameter(optCfg);
      double[][] noLogits = new double[cfg.layers()][cfg.heads()];
      Runnable g = () -> grouped.step(model, grads, noLogits, 1e-3);
      Runnable p = () -> perParam.step(ops, model, grads, 1e-3);
      for (int i = 0; i < 3; i++) {
        g.run();
        p.run();
      }
      ops.synchronize();
      int reps = 10;
      double[] gm = new double[reps], pm = new double[reps];
      var timer = new EventTimer(ops.device());
      for (int i = 0; i < reps; i++) {
        timer.start();
        g.run();
        gm[i] = timer.stopMs();
        timer.start();
        p.run();
        pm[i] = timer.stopMs();
      }
      java.util.Arrays.sort(gm);
      java.util.Arrays.sort(pm);
      int muon = muonShapes(cfg).values().stream().mapToInt(Integer::intValue).sum();
      result(String.format(Locale.ROOT,
          "{\"bench\":\"optim_step\",\"side\":\"java\",\"d\":%d,\"layers\":%d,\"params\":%d,\"muon_matrices\":%d,\"optimizer\":\"muon+adamw\","
              + "\"grouped_ms\":%.2f,\"grouped_ms_min\":%.2f,\"per_param_ms\":%.2f,\"per_param_ms_min\":%.2f,\"speedup\":%.2f}",
          size[0], size[1], model.parameterCount(), muon, gm[reps / 2], gm[0], pm[reps / 2], pm[0], pm[reps / 2] / gm[reps / 2]));
      muonPart(ops, model, grads, size);
    }
    ops.trimPool();
  }

  /**
   * The Muon matrices' part of the optimizer step alone: Muon.steps (on CudaOps the fused group step, one
   * muonGroupStep per shape) against Muon.composedSteps (the op-by-op step with the batched Newton–Schulz), each with
   * its own weights and momenta, 3 warm-ups each, then 10 of each alternating; CUDA-event medians and minima, and the
   * median host time of a fused call (until it returns, nothing waited for): close to the event time means the
   * device waits for the host.
   */
  static void muonPart(CudaOps ops, PolicyModel model, Map<String, Tensor> grads, int[] size) {
    var cfg = Muon.Config.defaults();
    var gs = new ArrayList<Tensor>();
    var fw = new ArrayList<Tensor>();
    var fm = new ArrayList<Tensor>();
    for (ParamSpec s : model.specs()) {
      if (MuonClip.route(s.kind()) != MuonClip.Rule.MUON) continue;
      gs.add(grads.get(s.name()));
      fw.add(model.parameter(s.name()));
      fm.add(ops.zeros(s.rows(), s.cols()));
    }
    var cw = new ArrayList<>(fw);
    var cm = new ArrayList<>(fm);
    Runnable fused = () -> apply(Muon.steps(ops, fw, gs, fm, 1e-3, cfg), fw, fm);
    Runnable composed = () -> apply(Muon.composedSteps(ops, cw, gs, cm, 1e-3, cfg), cw, cm);
    for (int i = 0; i < 3; i++) {
      fused.run();
      composed.run();
    }
    ops.synchronize();
    int reps = 10;
    double[] f = new double[reps], c = new double[reps], host = new double[reps];
    var timer = new EventTimer(ops.device());
    for (int i = 0; i < reps; i++) {
      timer.start();
      long t0 = System.nanoTime();
      fused.run();
      host[i] = (System.nanoTime() - t0) / 1e6;
      f[i] = timer.stopMs();
      timer.start();
      composed.run();
      c[i] = timer.stopMs();
    }
    java.util.Arrays.sort(f);
    java.util.Arrays.sort(c);
    java.util.Arrays.sort(host);
    result(String.format(Locale.ROOT,
        "{\"bench\":\"optim_muon_part\",\"side\":\"java\",\"d\":%d,\"layers\":%d,\"muon_matrices\":%d,\"fused_ms\":%.2f,"
            + "\"fused_ms_min\":%.2f,\"fused_host_ms\":%.2f,\"composed_ms\":%.2f,\"composed_ms_min\":%.2f,\"speedup\":%.2f}",
        size[0], size[1], gs.size(), f[reps / 2], f[0], host[reps / 2], c[reps / 2], c[0], c[reps / 2] / f[reps / 2]));
  }

  private static void apply(List<Muon.Step> steps, List<Tensor> ws, List<Tensor> ms) {
    for (int i = 0; i < steps.size(); i++) {
      ws.set(i, steps.get(i).weight());
      ms.set(i, steps.get(i).momentum());
    }
  }

  // ---- single ops at the d=512/B=32/T=1024 step's shapes ----

  static void opTimes(CudaOps ops) {
    int b = 32, t = 1024, h = 8, c = 512, n = b * t, v = 8192;
    var rnd = new Random(4);
    java.util.function.BiFunction<Integer, Integer, Tensor> randn = (r, k) -> {
      float[] f = new float[r * k];
      for (int i = 0; i < f.length; i++) f[i] = (float) rnd.nextGaussian();
      return ops.tensor(r, k, f);
    };
    Tensor q = randn.apply(n, c), k = randn.apply(n, c), vv = randn.apply(n, c), w1 = randn.apply(4 * c, c), logits = randn.apply(n, v);
    Tensor wn = randn.apply(1, c);
    int[] targets = rnd.ints(n, 0, v).toArray();
    double[] mask = new double[n];
    java.util.Arrays.fill(mask, 1.0);
    double attFlops = 4.0 * b * h * (t * (t + 1) / 2.0) * (c / h);
    java.util.Map<String, Double> flops = new java.util.LinkedHashMap<>();
    java.util.Map<String, Runnable> tasks = new java.util.LinkedHashMap<>();
    tasks.put("matmul 32768x512 . (2048x512)^T", () -> ops.matmul(q, false, w1, true));
    flops.put("matmul 32768x512 . (2048x512)^T", 2.0 * n * c * 4 * c);
    tasks.put("matmul fresh operands (incl. bf16 conversion)", () -> ops.matmul(ops.scale(q, 1.0), false, ops.scale(w1, 1.0), true));
    tasks.put("scale 32768x512 (fp32 elementwise)", () -> ops.scale(q, 1.0));
    tasks.put("rmsnormBackward 32768x512", () -> ops.rmsnormBackward(k, q, wn, ops.rmsnorm(q, wn, 1e-5).rstd()));
    tasks.put("crossEntropy 32768x8192 (+ copy back)", () -> ops.crossEntropy(logits, targets, mask));
    tasks.put("embeddingBackward 32768x512 -> 8192", () -> ops.embeddingBackward(q, targets, v));
    // the ops that store bf16 outputs with bf16 activations on (the default), and the same ops with it off
    Tensor u = ops.matmulLowPrecision(q, false, w1, true);
    Tensor u32 = ops.matmul(q, false, w1, true);
    var attMix = ops.attention(q, k, vv, b, t, h);
    for (boolean on : new boolean[] {true, false}) {
      String tag = on ? " [bf16 out]" : " [fp32 out]";
      java.util.function.Function<Runnable, Runnable> flagged = r -> () -> {
        boolean was = ops.bf16Activations();
        ops.bf16Activations(on);
        try {
          r.run();
        } finally {
          ops.bf16Activations(was);
        }
      };
      tasks.put("attention fwd" + tag, flagged.apply(() -> ops.attention(q, k, vv, b, t, h)));
      flops.put("attention fwd" + tag, attFlops);
      tasks.put("attention bwd" + tag, flagged.apply(() -> ops.attentionBackward(q, q, k, vv, attMix.probs(), b, t, h)));
      flops.put("attention bwd" + tag, 2.5 * attFlops);
      tasks.put("rmsnorm 32768x512" + tag, flagged.apply(() -> ops.rmsnorm(q, wn, 1e-5)));
      tasks.put("matmul 32768x512 . (2048x512)^T, low precision" + tag, flagged.apply(() -> ops.matmulLowPrecision(q, false, w1, true)));
      tasks.put("gelu 32768x2048 of matmulLowPrecision" + tag, flagged.apply(() -> ops.gelu(on ? u : u32)));
      tasks.put("geluBackward 32768x2048" + tag, flagged.apply(() -> ops.geluBackward(u32, on ? u : u32)));
      tasks.put("crossEntropyBackward 32768x8192" + tag, flagged.apply(() -> ops.crossEntropyBackward(logits, targets, mask)));
    }
    for (var e : tasks.entrySet()) {
      Runnable task = e.getValue();
      // each run's outputs are freed by a scope, so the pool serves every run from its free lists (no cudaMalloc
      // inside a timed region)
      double ms = eventMs(ops, () -> {
        try (var scope = ops.scope()) {
          task.run();
        }
      }, 20);
      Double f = flops.get(e.getKey());
      result(String.format(Locale.ROOT, "{\"bench\":\"op\",\"op\":\"%s\",\"ms\":%.3f%s}", e.getKey(), ms,
          f == null ? "" : String.format(Locale.ROOT, ",\"tflops\":%.1f", f / ms / 1e9)));
    }
  }

  // ---- learner step ----

  static TokenBatch randomBatch(int vocab, int batch, int seq, long seed) {
    var rnd = new Random(seed);
    int n = batch * seq;
    int[] ids = rnd.ints(n, 0, vocab).toArray(), targets = rnd.ints(n, 0, vocab).toArray();
    double[] mask = new double[n];
    java.util.Arrays.fill(mask, 1.0);
    return new TokenBatch(ids, targets, mask, batch, seq);
  }

  /** AdamW on every parameter with the fused kernel: the optimizer of the PyTorch reference. */
  static final class FusedAdamW {
    final Map<String, Tensor> m = new HashMap<>(), v = new HashMap<>();
    int t;

    void step(CudaOps ops, PolicyModel model, Map<String, Tensor> grads, double lr) {
      t++;
      double b1 = 0.9, b2 = 0.95;
      for (ParamSpec s : model.specs()) {
        Tensor w = model.parameter(s.name());
        Tensor mm = m.computeIfAbsent(s.name(), k -> ops.zeros(s.rows(), s.cols()));
        Tensor vv = v.computeIfAbsent(s.name(), k -> ops.zeros(s.rows(), s.cols()));
        var r = ops.adamW(w, grads.get(s.name()), mm, vv, b1, b2, 1 - Math.pow(b1, t), 1 - Math.pow(b2, t), 1e-8, lr, 0.1);
        model.setParameter(s.name(), r.weight());
        m.put(s.name(), r.m());
        v.put(s.name(), r.v());
      }
    }
  }

  static void step(CudaOps ops, int dModel, int layers, int batch, String optimizer, boolean bf16Act) {
    int seq = 1024, vocab = 8192;
    ops.trimPool(); // each configuration starts from an empty pool, as a learner with one model does
    var cfg = modelConfig(dModel, layers);
    var model = new PolicyModel(cfg, ops, 1);
    var data = randomBatch(vocab, batch, seq, 2);
    boolean first = optimizer.equals("adamw") && bf16Act;
    if (first) compareActivations(ops, model, data, dModel, layers, batch);
    ops.bf16Activations(bf16Act);
    var adam = new FusedAdamW();
    var muon = new MuonClip(MuonClip.Config.defaults(), model);
    Runnable fwdBwd = () -> Losses.nextToken(model, data);
    Runnable step = () -> {
      var r = Losses.nextToken(model, data);
      if (optimizer.equals("adamw")) adam.step(ops, model, r.grads(), 1e-3);
      else muon.step(model, r.grads(), r.maxLogit(), 1e-3);
    };
    int warm = 3, reps = 10;
    for (int i = 0; i < warm; i++) step.run();
    ops.synchronize();
    long coll0 = ops.poolCollections();
    double collMs0 = ops.poolCollectMs();
    double[] ms = new double[reps];
    for (int i = 0; i < reps; i++) {
      long t0 = System.nanoTime();
      step.run();
      ops.synchronize();
      ms[i] = (System.nanoTime() - t0) / 1e6;
    }
    long collections = ops.poolCollections() - coll0;
    double collectMs = ops.poolCollectMs() - collMs0;
    double[] fb = new double[reps];
    for (int i = 0; i < reps; i++) {
      long t0 = System.nanoTime();
      fwdBwd.run();
      ops.synchronize();
      fb[i] = (System.nanoTime() - t0) / 1e6;
    }
    java.util.Arrays.sort(fb);
    // bf16 activations on and off in alternate steps of the same model and pool
    if (first) {
      double[] aOn = new double[reps], aOff = new double[reps];
      for (int i = 0; i < 2 * reps; i++) {
        ops.bf16Activations(i % 2 == 0);
        long t0 = System.nanoTime();
        step.run();
        ops.synchronize();
        (i % 2 == 0 ? aOn : aOff)[i / 2] = (System.nanoTime() - t0) / 1e6;
      }
      ops.bf16Activations(true);
      java.util.Arrays.sort(aOn);
      java.util.Arrays.sort(aOff);
      result(String.format(Locale.ROOT,
          "{\"bench\":\"bf16_act_ab\",\"side\":\"java\",\"d\":%d,\"layers\":%d,\"batch\":%d,\"steps_each\":%d,\"on_ms_median\":%.2f,"
              + "\"off_ms_median\":%.2f,\"saved_pct\":%.2f}",
          dModel, layers, batch, reps, aOn[reps / 2], aOff[reps / 2], 100 * (1 - aOn[reps / 2] / aOff[reps / 2])));
    }
    // the last loss, as a sanity check that training moved
    double loss = Losses.nextTokenLoss(model, data);
    ops.bf16Activations(true);
    java.util.Arrays.sort(ms);
    double med = ms[reps / 2];
    System.out.println("  pool after this config: " + ops.memoryStats());
    result(String.format(Locale.ROOT,
        "{\"bench\":\"step\",\"side\":\"java\",\"d\":%d,\"layers\":%d,\"batch\":%d,\"seq\":%d,\"optimizer\":\"%s\","
            + "\"bf16_activations\":%b,\"params\":%d,\"fwd_bwd_ms\":%.2f,\"ms_median\":%.2f,\"ms_min\":%.2f,\"ms_max\":%.2f,\"tokens_per_s\":%.0f,"
            + "\"collections_in_%d_steps\":%d,\"collect_ms\":%.0f,\"loss_after\":%.4f}",
        dModel, layers, batch, seq, optimizer, bf16Act, model.parameterCount(), fb[reps / 2], med, ms[0], ms[reps - 1],
        batch * seq / (med / 1e3), reps, collections, collectMs, loss));
  }

  /**
   * One step's loss and gradients on the same model and batch with bf16 activations off and on: the relative loss
   * difference and, over the parameters, the largest and the median ||g_on - g_off|| / ||g_off||.
   */
  static void compareActivations(CudaOps ops, PolicyModel model, TokenBatch data, int dModel, int layers, int batch) {
    ops.bf16Activations(false);
    var off = Losses.nextToken(model, data);
    ops.bf16Activations(true);
    var on = Losses.nextToken(model, data);
    var rel = new ArrayList<Double>();
    String worst = "";
    double worstRel = -1;
    for (var e : off.grads().entrySet()) {
      Tensor a = e.getValue(), b2 = on.grads().get(e.getKey());
      double na = ops.sumOfSquares(a), diff = ops.sumOfSquares(ops.linear(1, b2, -1, a));
      double r = Math.sqrt(diff / Math.max(na, 1e-300));
      rel.add(r);
      if (r > worstRel) {
        worstRel = r;
        worst = e.getKey();
      }
    }
    java.util.Collections.sort(rel);
    result(String.format(Locale.ROOT,
        "{\"bench\":\"bf16_act_numerics\",\"d\":%d,\"layers\":%d,\"batch\":%d,\"loss_off\":%.6f,\"loss_on\":%.6f,\"loss_rel_diff\":%.2e,"
            + "\"grad_rel_diff_median\":%.2e,\"grad_rel_diff_max\":%.2e,\"worst\":\"%s\"}",
        dModel, layers, batch, off.loss(), on.loss(), Math.abs(on.loss() - off.loss()) / Math.abs(off.loss()), rel.get(rel.size() / 2),
        worstRel, worst));
  }

  // ---- CPU vs GPU agreement ----

  static void agree(CudaOps gpu, int steps) {
    int vocab = 512, seq = 64, batch = 8;
    var cfg = new ModelConfig(vocab, 64, 2, 4, seq, 4, 1e-5);
    var cpuModel = new PolicyModel(cfg, ReferenceOps.INSTANCE, 5);
    var gpuModel = new PolicyModel(cfg, gpu, cpuModel.parameters());
    var cpuOpt = new MuonClip(MuonClip.Config.defaults(), cpuModel);
    var gpuOpt = new MuonClip(MuonClip.Config.defaults(), gpuModel);
    double worst = 0, sumRel = 0;
    var rows = new ArrayList<String>();
    long deadline = System.nanoTime() + 240_000_000_000L;
    int done = 0;
    for (int s = 0; s < steps && System.nanoTime() < deadline; s++, done++) {
      var data = randomBatch(vocab, batch, seq, 100 + s % 16); // 16 batches cycled, so the loss can fall
      var rc = Losses.nextToken(cpuModel, data);
      cpuOpt.step(cpuModel, rc.grads(), rc.maxLogit(), 3e-3);
      var rg = Losses.nextToken(gpuModel, data);
      gpuOpt.step(gpuModel, rg.grads(), rg.maxLogit(), 3e-3);
      double rel = Math.abs(rc.loss() - rg.loss()) / Math.abs(rc.loss());
      worst = Math.max(worst, rel);
      sumRel += rel;
      if (s % 20 == 0 || s == steps - 1) rows.add(String.format(Locale.ROOT, "[%d,%.5f,%.5f]", s, rc.loss(), rg.loss()));
    }
    result(String.format(Locale.ROOT,
        "{\"bench\":\"agree\",\"steps\":%d,\"model\":\"d=64 L=2 H=4 T=%d V=%d B=%d\",\"optimizer\":\"muonclip lr 3e-3\",\"max_rel_diff\":%.5f,"
            + "\"mean_rel_diff\":%.5f,\"curve\":[%s]}",
        done, seq, vocab, batch, worst, sumRel / Math.max(1, done), String.join(",", rows)));
  }

  /** CUDA events on the backend's stream. */
  static final class EventTimer {
    private final CudaDevice d;
    private final long start, end;

    EventTimer(CudaDevice d) {
      this.d = d;
      this.start = d.event();
      this.end = d.event();
    }

    void start() {
      d.record(start);
    }

    double stopMs() {
      d.record(end);
      return d.elapsedMs(start, end);
    }
  }
}
