package dev.k2pekko.ops.cuda;

import dev.k2pekko.ops.HostTensor;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The CUDA backend's op checks against the fp64 oracle ({@link ReferenceOps}), shared by the JUnit test
 * (CudaOpsTest) and by {@link CudaSelfTest}, the command that runs them on a GPU host without Maven.
 *
 * <p>Each check compares norm-wise relative error ||gpu - ref|| / max(||gpu||, ||ref||) on fresh Gaussian
 * inputs rounded to fp32. Tolerances:
 * <ul>
 *   <li>{@link #FP32} = 2e-5 for every op computed in fp32 (elementwise, reductions, RMSNorm, GELU, softmax,
 *       cross-entropy, embedding, and matmul in the FP32 precision mode);</li>
 *   <li>{@link #BF16_GEMM} = 1e-2 for matmuls with bf16 operands (each operand rounded to 8 significant bits,
 *       unit round-off 2^-9 = 2e-3, accumulated in fp32);</li>
 *   <li>{@link #BF16_ATTENTION} = 2e-2 for attention's output and max logit and {@link #BF16_ATTENTION_GRAD} = 4e-2
 *       for its gradients (q, k, v and the probabilities all pass through bf16 on the tensor cores);</li>
 *   <li>{@link #BF16_OUT} = 5e-3 for an fp32 computation whose output is stored as bf16 (bf16 activations: one
 *       rounding to 8 significant bits, at most 2^-9 = 2e-3 of each element, about 1.1e-3 norm-wise).</li>
 *   <li>{@link #NS_FP64} = 5e-2 for the bf16 Newton–Schulz iteration (five steps of three GEMMs, every iterate rounded
 *       to bf16) against the same iteration in fp64, and {@link #NS_BATCH} = 2e-2 for its batched form against it one
 *       matrix at a time (the same roundings; a different GEMM reduction order flips some bf16 roundings, which the
 *       iteration carries on). An emulation in numpy (bf16 rounding of every iterate, fp32 products;
 *       bench/ns_bf16_emulation.py) gave 1.1e-2 to 1.5e-2 and, with relative noise of 1e-7 to 1e-6 on the products,
 *       up to 7.7e-3.</li>
 * </ul>
 * The op checks run with bf16 activations off (fp32 outputs); {@link #bf16Activations()} checks the ops that store
 * bf16 outputs when it is on, and fp32 ops reading such tensors.
 * dq and dk are measured against max(||ref||, ||gpu||, ||ref dv||): where they vanish in exact arithmetic
 * (one token: the softmax is constant) bf16 leaves rounding noise of the gradients' own scale, which ||dv||
 * measures. NaN fails every check.
 */
public final class CudaChecks {
  public static final double FP32 = 2e-5, BF16_GEMM = 1e-2, BF16_ATTENTION = 2e-2, BF16_ATTENTION_GRAD = 4e-2, BF16_OUT = 5e-3;
  public static final double NS_FP64 = 5e-2, NS_BATCH = 2e-2;

  public record Result(String name, double error, double tolerance) {
    public boolean passed() {
      return error <= tolerance; // false for NaN
    }

    @Override
    public String toString() {
      return String.format(java.util.Locale.ROOT, "%-4s %-44s rel.err %.2e  (tol %.0e)", passed() ? "ok" : "FAIL", name, error, tolerance);
    }
  }

  private final CudaOps gpu;
  private final CudaOps gpu32;
  /** BF16 precision with bf16 activations (the training default). */
  private final CudaOps gpuMix;
  private final ReferenceOps ref = ReferenceOps.INSTANCE;
  private final Random rnd;
  private final List<Result> results = new ArrayList<>();

  public CudaChecks(CudaDevice device, long seed) {
    this.gpu = new CudaOps(device, CudaOps.Precision.BF16);
    this.gpu.bf16Activations(false);
    this.gpu32 = new CudaOps(device, CudaOps.Precision.FP32);
    this.gpuMix = new CudaOps(device, CudaOps.Precision.BF16);
    this.gpuMix.bf16Activations(true);
    this.rnd = new Random(seed);
  }

  /** Runs every check; the results in order. */
  public List<Result> runAll() {
    matmul();
    elementwise();
    normGeluSoftmaxEmbedding();
    crossEntropy();
    attention();
    scopes();
    bf16Activations();
    try {
      newtonSchulz();
    } catch (RuntimeException e) { // one failed check with the reason, and the other checks' results still reported
      results.add(new Result("newtonSchulz checks threw " + e, Double.NaN, NS_BATCH));
    }
    try {
      muonGroup();
    } catch (RuntimeException e) {
      results.add(new Result("muonGroupStep checks threw " + e, Double.NaN, NS_BATCH));
    }
    return results;
  }

  /** Muon's Newton–Schulz coefficients, steps and eps (dev.k2pekko.optim.NewtonSchulz, which this module cannot see). */
  private static final double NS_A = 3.4445, NS_B = -4.7750, NS_C = 2.0315, NS_EPS = 1e-7;
  private static final int NS_STEPS = 5;

  /**
   * The bf16 Newton–Schulz iteration: newtonSchulz against the fp64 iteration of the same formula on ReferenceOps
   * ({@link #NS_FP64}), and newtonSchulzBatch against newtonSchulz one by one ({@link #NS_BATCH}), in batches of 1 and
   * 4 of square, wide and tall shapes (tall ones run transposed), sizes that are not multiples of the kernels' 32x32
   * tiles, each matrix at its own scale (a norm applied to the wrong matrix, or a result in the wrong slot, is off by
   * O(1)), and one batch holding the same tensor twice.
   */
  void newtonSchulz() {
    int[][] shapes = {{64, 64}, {40, 96}, {96, 40}, {33, 70}, {200, 72}};
    for (int[] s : shapes) {
      for (int batch : new int[] {1, 4}) {
        var in = new ArrayList<Tensor>();
        for (int i = 0; i < batch; i++) in.add(rf(s[0], s[1], 0.5 + 3 * i));
        List<Tensor> batched = gpu.newtonSchulzBatch(in, NS_STEPS, NS_A, NS_B, NS_C, NS_EPS);
        if (batched.size() != batch) {
          results.add(new Result("newtonSchulzBatch: " + batched.size() + " results for " + batch + " inputs", Double.NaN, NS_BATCH));
          continue;
        }
        for (int i = 0; i < batch; i++) {
          Tensor one = gpu.newtonSchulz(in.get(i), NS_STEPS, NS_A, NS_B, NS_C, NS_EPS);
          String what = " batch " + batch + " #" + i;
          if (batch == 1) check("newtonSchulz bf16 vs fp64", NS_FP64, referenceNs(in.get(i)), one);
          check("newtonSchulzBatch vs one by one" + what, NS_BATCH, one, batched.get(i));
        }
      }
    }
    Tensor g = gpu.tensor(48, 80, rf(48, 80, 2).toDoubles()), h = gpu.tensor(48, 80, rf(48, 80, 1).toDoubles()); // on the device once
    List<Tensor> twice = gpu.newtonSchulzBatch(List.of(g, h, g), NS_STEPS, NS_A, NS_B, NS_C, NS_EPS);
    Tensor one = gpu.newtonSchulz(g, NS_STEPS, NS_A, NS_B, NS_C, NS_EPS);
    check("newtonSchulzBatch, a tensor twice: first", NS_BATCH, one, twice.get(0));
    check("newtonSchulzBatch, a tensor twice: second", NS_BATCH, one, twice.get(2));
    check("newtonSchulzBatch, a tensor twice: between", NS_BATCH, gpu.newtonSchulz(h, NS_STEPS, NS_A, NS_B, NS_C, NS_EPS), twice.get(1));
  }

  /**
   * The fused Muon group step ({@link CudaOps#muonGroupStep}) against the op-by-op composition that
   * dev.k2pekko.optim.Muon.steps runs without it (linear for m1, linear for u, newtonSchulzBatch, scale, linear for the
   * decay), on this backend and on ReferenceOps in fp64 (the fp64 iteration). Three quantities are checked apart, each
   * as the worst matrix of the group (named by its index): the momentum m1 (fp32 arithmetic: {@link #FP32}), the update
   * (w1 - (1 - lr wd) w) / lr, which holds the scaled orthogonalized term and would show a wrong decay factor
   * ({@link #NS_BATCH} against the same backend, whose GEMMs and roundings it shares; {@link #NS_FP64} against fp64),
   * and the inputs after the call (unchanged: error 0). Groups of 1 to 70 matrices (70: two pointer tables of 64, so
   * two launches of the momentum and decay kernels), square, wide and tall shapes (tall ones run transposed), sizes
   * that are not multiples of 32 or of 4 (the momentum kernel's vector loop), each matrix at its own scale, Nesterov on
   * and off, weight decay on and off, and one group holding the same tensors twice.
   */
  void muonGroup() {
    // rows, cols, batch, nesterov, weight decay
    Object[][] cases = {
        {64, 64, 1, true, 0.1}, {40, 96, 3, true, 0.1}, {96, 40, 3, false, 0.1}, {33, 70, 4, true, 0.0}, {70, 33, 70, true, 0.1},
        {200, 72, 2, false, 0.0}};
    for (Object[] k : cases) {
      int rows = (Integer) k[0], cols = (Integer) k[1], batch = (Integer) k[2];
      var ws = new ArrayList<HostTensor>();
      var gs = new ArrayList<HostTensor>();
      var ms = new ArrayList<HostTensor>();
      for (int i = 0; i < batch; i++) {
        ws.add(rf(rows, cols, 1));
        gs.add(rf(rows, cols, 0.5 + 3 * (i % 5)));
        ms.add(rf(rows, cols, 0.3 * (1 + i % 3)));
      }
      muonGroupCase(ws, gs, ms, (Boolean) k[3], (Double) k[4], "");
    }
    HostTensor w = rf(48, 80, 1), w2 = rf(48, 80, 1), g = rf(48, 80, 2), g2 = rf(48, 80, 1), m = rf(48, 80, 1), m2 = rf(48, 80, 0.5);
    muonGroupCase(List.of(w, w2, w), List.of(g, g2, g), List.of(m, m2, m), true, 0.1, ", a tensor twice");
    try {
      gpu.muonGroupStep(List.of(w, rf(80, 48, 1)), List.of(g, g2), List.of(m, m2), 0.05, 0.95, true, 0.1, 1, NS_STEPS, NS_A, NS_B, NS_C, NS_EPS);
      results.add(new Result("muonGroupStep rejects a group of two shapes (returned)", 1, 0));
    } catch (IllegalArgumentException e) {
      results.add(new Result("muonGroupStep rejects a group of two shapes", 0, 0));
    }
  }

  private void muonGroupCase(List<HostTensor> ws, List<HostTensor> gs, List<HostTensor> ms, boolean nesterov, double wd, String note) {
    double lr = 0.05, mu = 0.95;
    int batch = ws.size(), rows = ws.get(0).rows(), cols = ws.get(0).cols();
    double scale = 0.2 * Math.sqrt(Math.max(rows, cols));
    String what = " " + rows + "x" + cols + " batch " + batch + (nesterov ? " nesterov" : "") + " wd " + wd + note;
    // on the device once, so that the fused step and the composition read the same tensors (the same tensor twice where
    // the host list holds one twice)
    var dev = new java.util.IdentityHashMap<HostTensor, Tensor>();
    java.util.function.Function<List<HostTensor>, List<Tensor>> up = l -> {
      var out = new ArrayList<Tensor>();
      for (HostTensor h : l) out.add(dev.computeIfAbsent(h, t -> gpu.tensor(t.rows(), t.cols(), t.toDoubles())));
      return out;
    };
    List<Tensor> dw = up.apply(ws), dg = up.apply(gs), dm = up.apply(ms);
    var fused = gpu.muonGroupStep(dw, dg, dm, lr, mu, nesterov, wd, scale, NS_STEPS, NS_A, NS_B, NS_C, NS_EPS);
    if (fused.weights().size() != batch || fused.momenta().size() != batch) {
      results.add(new Result("muonGroupStep: " + fused.weights().size() + " weights, " + fused.momenta().size() + " momenta for " + batch
          + " matrices" + what, Double.NaN, NS_BATCH));
      return;
    }
    // the composition on this backend
    var cm = new ArrayList<Tensor>();
    var cu = new ArrayList<Tensor>();
    for (int i = 0; i < batch; i++) {
      Tensor m1 = gpu.linear(mu, dm.get(i), 1.0, dg.get(i));
      cm.add(m1);
      cu.add(nesterov ? gpu.linear(1.0, dg.get(i), mu, m1) : m1);
    }
    List<Tensor> co = gpu.newtonSchulzBatch(cu, NS_STEPS, NS_A, NS_B, NS_C, NS_EPS);
    // worst matrix of each comparison: {error, index}
    double[] momOps = {-1, -1}, momRef = {-1, -1}, updOps = {-1, -1}, updRef = {-1, -1};
    double changed = 0;
    for (int i = 0; i < batch; i++) {
      Tensor cw1 = gpu.linear(1.0 - lr * wd, dw.get(i), -lr, gpu.scale(co.get(i), scale));
      Tensor rm1 = ref.linear(mu, ms.get(i), 1.0, gs.get(i));
      Tensor ru = nesterov ? ref.linear(1.0, gs.get(i), mu, rm1) : rm1;
      Tensor rw1 = ref.linear(1.0 - lr * wd, ws.get(i), -lr, ref.scale(referenceNs(ru), scale));
      double[] fm = fused.momenta().get(i).toDoubles(), fw = fused.weights().get(i).toDoubles();
      boolean shaped = fused.weights().get(i).rows() == rows && fused.weights().get(i).cols() == cols && fused.momenta().get(i).rows() == rows
          && fused.momenta().get(i).cols() == cols;
      double[] w0 = ws.get(i).toDoubles();
      worst(momOps, shaped ? relError(cm.get(i).toDoubles(), fm) : Double.NaN, i);
      worst(momRef, shaped ? relError(rm1.toDoubles(), fm) : Double.NaN, i);
      worst(updOps, shaped ? relError(update(cw1.toDoubles(), w0, lr, wd), update(fw, w0, lr, wd)) : Double.NaN, i);
      worst(updRef, shaped ? relError(update(rw1.toDoubles(), w0, lr, wd), update(fw, w0, lr, wd)) : Double.NaN, i);
      changed = Math.max(changed, relError(w0, dw.get(i).toDoubles()) + relError(gs.get(i).toDoubles(), dg.get(i).toDoubles())
          + relError(ms.get(i).toDoubles(), dm.get(i).toDoubles()));
    }
    results.add(new Result("muonGroup momentum vs ops" + what + " worst #" + (int) momOps[1], momOps[0], FP32));
    results.add(new Result("muonGroup momentum vs fp64" + what + " worst #" + (int) momRef[1], momRef[0], FP32));
    results.add(new Result("muonGroup update vs ops" + what + " worst #" + (int) updOps[1], updOps[0], NS_BATCH));
    results.add(new Result("muonGroup update vs fp64" + what + " worst #" + (int) updRef[1], updRef[0], NS_FP64));
    results.add(new Result("muonGroup inputs unchanged" + what, changed, 0));
  }

  /** (w1 - (1 - lr wd) w) / lr: the step's scaled orthogonalized term, negated, with any error in the decay. */
  private static double[] update(double[] w1, double[] w, double lr, double wd) {
    double[] d = new double[w1.length];
    for (int i = 0; i < d.length; i++) d[i] = (w1[i] - (1 - lr * wd) * w[i]) / lr;
    return d;
  }

  /** Keeps in acc {error, index} the largest error so far; NaN wins. */
  private static void worst(double[] acc, double err, int i) {
    if (Double.isNaN(acc[0])) return;
    if (Double.isNaN(err) || err > acc[0]) {
      acc[0] = err;
      acc[1] = i;
    }
  }

  /** NewtonSchulz's generic loop in fp64. */
  private Tensor referenceNs(Tensor g) {
    Tensor x = ref.scale(g, 1.0 / (Math.sqrt(ref.sumOfSquares(g)) + NS_EPS));
    boolean tall = g.rows() > g.cols();
    if (tall) x = ref.transpose(x);
    for (int i = 0; i < NS_STEPS; i++) {
      Tensor a = ref.matmul(x, false, x, true);
      Tensor b = ref.linear(NS_B, a, NS_C, ref.matmul(a, false, a, false));
      x = ref.linear(NS_A, x, 1.0, ref.matmul(b, false, x, false));
    }
    return tall ? ref.transpose(x) : x;
  }

  /**
   * TensorOps.scope on the GPU: a nested scope's kept result survives into the outer scope and keeps its values
   * while the freed temporaries' memory is reused; every tensor not kept fails on use after the close.
   */
  void scopes() {
    HostTensor a = rf(64, 48, 1), b = rf(64, 48, 1);
    Tensor kept, inner, outerTemp;
    try (var outer = gpu.scope()) {
      outerTemp = gpu.scale(a, 2.0);
      try (var s = gpu.scope()) {
        inner = gpu.add(outerTemp, b);
        kept = gpu.hadamard(inner, inner);
        s.keep(kept);
      }
      for (int i = 0; i < 8; i++) gpu.scale(b, 3.0); // reuses the freed blocks
      outer.keep(kept);
    }
    Tensor expect = ref.hadamard(ref.add(ref.scale(a, 2.0), b), ref.add(ref.scale(a, 2.0), b));
    check("scope: kept result after reuse", FP32, expect, kept);
    checkFreed("scope", inner, outerTemp);
    // an explicit release: the block is reused at once and the released tensor fails on use
    Tensor gone = gpu.scale(a, 5.0), after;
    gpu.release(gone);
    after = gpu.scale(b, 0.5);
    check("release: a tensor made after it", FP32, ref.scale(b, 0.5), after);
    checkFreed("release", gone);
  }

  /**
   * bf16 activations: every op that then stores a bf16 output (RMSNorm, GELU from fp32 and from bf16 inputs and its
   * backward, matmulLowPrecision, the cross-entropy gradient, attention's output and gradients, including head
   * dimensions whose rows are not 4-byte aligned), fp32 ops and GEMMs reading such tensors, and a scope freeing them.
   */
  void bf16Activations() {
    for (int[] s : new int[][] {{dim(40), 1 + 2 * rnd.nextInt(150)}, {300, 1024}}) {
      int n = s[0], c = s[1];
      String shape = " (" + n + "," + c + ")";
      HostTensor x = rf(n, c, 2), w = rf(1, c, 1), g = rf(n, c, 1);
      var rn = ref.rmsnorm(x, w, 1e-5);
      var xn = gpuMix.rmsnorm(x, w, 1e-5);
      check("bf16 out: rmsnorm" + shape, BF16_OUT, rn.out().toDoubles(), xn.out().toDoubles());
      check("bf16 out: rmsnorm rstd" + shape, FP32, rn.rstd().toDoubles(), xn.rstd().toDoubles());
      check("bf16 out: gelu" + shape, BF16_OUT, ref.gelu(x).toDoubles(), gpuMix.gelu(x).toDoubles());
      check("bf16 out: gelu dx" + shape, BF16_OUT, ref.geluBackward(g, x).toDoubles(), gpuMix.geluBackward(g, x).toDoubles());
      // a bf16 tensor as GEMM operand, as GELU input (bf16 in, bf16 out) and as fp32 op input (converted once)
      int k = 1 + rnd.nextInt(64);
      HostTensor a = rf(n, k, 1), b = rf(c, k, 1);
      Tensor u = gpuMix.matmulLowPrecision(a, false, b, true);
      Tensor ru = ref.matmul(a, false, b, true);
      check("bf16 out: matmulLowPrecision" + shape, BF16_GEMM, ru.toDoubles(), u.toDoubles());
      check("bf16 out: gelu of bf16" + shape, BF16_GEMM, ref.gelu(ru).toDoubles(), gpuMix.gelu(u).toDoubles());
      check("bf16 out: gelu dx of bf16" + shape, BF16_GEMM, ref.geluBackward(g, ru).toDoubles(), gpuMix.geluBackward(g, u).toDoubles());
      // the incoming gradient as bf16 too (matmulBackwardLowPrecision's dA), with a bf16 and an fp32 input
      HostTensor a2 = rf(n, k, 1);
      Tensor gu = gpuMix.matmulLowPrecision(a2, false, b, true), rgu = ref.matmul(a2, false, b, true);
      check("bf16 out: gelu dx, bf16 dout, bf16 x" + shape, BF16_GEMM, ref.geluBackward(rgu, ru).toDoubles(),
          gpuMix.geluBackward(gu, u).toDoubles());
      check("bf16 out: gelu dx, bf16 dout, fp32 x" + shape, BF16_GEMM, ref.geluBackward(rgu, x).toDoubles(),
          gpuMix.geluBackward(gu, x).toDoubles());
      check("bf16 out: matmul of bf16 rmsnorm" + shape, BF16_GEMM, ref.matmul(rn.out(), true, g, false).toDoubles(),
          gpuMix.matmul(xn.out(), true, g, false).toDoubles());
      check("bf16 out: fp32 add of bf16" + shape, BF16_GEMM, ref.add(ru, g).toDoubles(), gpuMix.add(u, g).toDoubles());
      check("bf16 out: converted bf16 read" + shape, BF16_GEMM, ru.toDoubles(), u.toDoubles());
    }
    for (int[] s : new int[][] {{dim(40), 2 + rnd.nextInt(50)}, {257, 8192}}) {
      int n = s[0], vocab = s[1];
      HostTensor logits = rf(n, vocab, 3);
      int[] targets = rnd.ints(n, 0, vocab).toArray();
      double[] mask = new double[n], dnll = new double[n];
      for (int i = 0; i < n; i++) {
        mask[i] = rnd.nextInt(4) == 0 ? 0 : 1;
        dnll[i] = rnd.nextInt(5) == 0 ? 0 : rnd.nextGaussian();
      }
      Tensor gl = gpuMix.tensor(n, vocab, logits.data());
      gpuMix.crossEntropy(gl, targets, mask);
      Tensor expect = ref.crossEntropyBackward(logits, targets, dnll);
      check("bf16 out: crossEntropy dlogits (lse kept) (" + n + "," + vocab + ")", BF16_OUT, expect.toDoubles(),
          gpuMix.crossEntropyBackward(gl, targets, dnll).toDoubles());
      check("bf16 out: crossEntropy dlogits (fresh) (" + n + "," + vocab + ")", BF16_OUT, expect.toDoubles(),
          gpuMix.crossEntropyBackward(logits, targets, dnll).toDoubles());
    }
    // head dimensions up to 64 (dK/dV in half tiles) on the first four shapes, wider ones (whole tiles) on the last three
    int[][] shapes = {{1, 35, 1, 5}, {2, 130, 2, 24}, {2, 256, 2, 64}, {1 + rnd.nextInt(3), 1 + rnd.nextInt(200), 1 + rnd.nextInt(4), 1 + rnd.nextInt(64)},
        {2, 130, 2, 96}, {1, 256, 2, 128}, {1 + rnd.nextInt(3), 1 + rnd.nextInt(200), 1 + rnd.nextInt(4), 65 + rnd.nextInt(64)}};
    for (int i = 0; i < shapes.length; i++) {
      int[] s = shapes[i];
      int b = s[0], t = s[1], h = s[2], c = h * s[3];
      String shape = " B=" + b + " T=" + t + " H=" + h + " D=" + s[3];
      HostTensor q = rf(b * t, c, 1), k = rf(b * t, c, 1), v = rf(b * t, c, 1), g = rf(b * t, c, 1);
      var ra = ref.attention(q, k, v, b, t, h);
      var xa = gpuMix.attention(q, k, v, b, t, h);
      check("bf16 out: attention out" + shape, BF16_ATTENTION, ra.out().toDoubles(), xa.out().toDoubles());
      var rg = ref.attentionBackward(g, q, k, v, ra.probs(), b, t, h);
      var xg = gpuMix.attentionBackward(g, q, k, v, xa.probs(), b, t, h);
      double dvNorm = Math.sqrt(ref.sumOfSquares(rg.third()));
      checkScaled("bf16 out: attention dq" + shape, BF16_ATTENTION_GRAD, rg.first().toDoubles(), xg.first().toDoubles(), dvNorm);
      checkScaled("bf16 out: attention dk" + shape, BF16_ATTENTION_GRAD, rg.second().toDoubles(), xg.second().toDoubles(), dvNorm);
      check("bf16 out: attention dv" + shape, BF16_ATTENTION_GRAD, rg.third().toDoubles(), xg.third().toDoubles());
    }
    // a scope frees bf16 tensors, also one whose fp32 form was made; a kept one survives the reuse of their blocks
    HostTensor a = rf(64, 48, 1), b = rf(64, 48, 1);
    Tensor kept, inner, converted;
    try (var scope = gpuMix.scope()) {
      inner = gpuMix.gelu(a);
      converted = gpuMix.gelu(b);
      kept = gpuMix.add(converted, a);
      scope.keep(kept);
    }
    for (int i = 0; i < 4; i++) gpuMix.gelu(b);
    check("bf16 out: scope kept result", BF16_GEMM, ref.add(ref.gelu(b), a).toDoubles(), kept.toDoubles());
    checkFreed("bf16 out", inner, converted);
  }

  /** Tensors whose scope has closed must refuse to be read: one result, its error the count that did not. */
  private void checkFreed(String what, Tensor... freed) {
    int failed = 0;
    for (Tensor t : freed) {
      try {
        t.toDoubles();
      } catch (IllegalStateException e) {
        failed++;
      }
    }
    results.add(new Result(what + ": freed tensors fail on use (" + failed + " of " + freed.length + ")", freed.length - failed, 0));
  }

  static double relError(double[] a, double[] b) {
    double diff = 0, na = 0, nb = 0;
    for (int i = 0; i < a.length; i++) {
      diff += (a[i] - b[i]) * (a[i] - b[i]);
      na += a[i] * a[i];
      nb += b[i] * b[i];
    }
    if (a.length != b.length) return Double.NaN;
    return Math.sqrt(diff) / Math.max(Math.max(Math.sqrt(na), Math.sqrt(nb)), 1e-300);
  }

  private HostTensor rf(int rows, int cols, double scale) {
    double[] d = new double[rows * cols];
    for (int i = 0; i < d.length; i++) d[i] = (float) (rnd.nextGaussian() * scale);
    return new HostTensor(rows, cols, d);
  }

  private void check(String name, double tol, Tensor expected, Tensor actual) {
    boolean shape = expected.rows() == actual.rows() && expected.cols() == actual.cols();
    check(name + " " + expected.shapeString(), tol, expected.toDoubles(), shape ? actual.toDoubles() : new double[0]);
  }

  private void check(String name, double tol, double[] expected, double[] actual) {
    results.add(new Result(name, expected.length == actual.length ? relError(expected, actual) : Double.NaN, tol));
  }

  private void checkScaled(String name, double tol, double[] expected, double[] actual, double scale) {
    double diff = 0, ne = 0, na = 0;
    for (int i = 0; i < Math.min(expected.length, actual.length); i++) {
      diff += (expected[i] - actual[i]) * (expected[i] - actual[i]);
      ne += expected[i] * expected[i];
      na += actual[i] * actual[i];
    }
    double err = Math.sqrt(diff) / Math.max(Math.max(Math.sqrt(ne), Math.sqrt(na)), Math.max(scale, 1e-300));
    results.add(new Result(name, expected.length == actual.length ? err : Double.NaN, tol));
  }

  private int dim(int max) {
    return 1 + rnd.nextInt(max);
  }

  void matmul() {
    int[][] shapes = {{dim(60), dim(60), dim(60)}, {dim(60), dim(60), dim(60)}, {256, 512, 384}, {1000, 64, 777}};
    int trial = 0;
    for (int[] s : shapes) {
      for (int tr = 0; tr < 4; tr++, trial++) {
        int m = s[0], k = s[1], n = s[2];
        boolean ta = (tr & 1) != 0, tb = (tr & 2) != 0;
        HostTensor a = ta ? rf(k, m, 1) : rf(m, k, 1), b = tb ? rf(n, k, 1) : rf(k, n, 1);
        String what = "matmul" + (ta ? " A^T" : " A") + (tb ? " B^T" : " B");
        Tensor expected = ref.matmul(a, ta, b, tb);
        check(what + " bf16", BF16_GEMM, expected, gpu.matmul(a, ta, b, tb));
        check(what + " fp32", FP32, expected, gpu32.matmul(a, ta, b, tb));
        if (trial % 4 == 0) {
          HostTensor g = rf(m, n, 1);
          var r = ref.matmulBackward(g, a, ta, b, tb);
          var x = gpu.matmulBackward(g, a, ta, b, tb);
          check("matmul dA bf16", BF16_GEMM, r.first(), x.first());
          check("matmul dB bf16", BF16_GEMM, r.second(), x.second());
          // dA stored as bf16 (bf16 activations), dB as before
          var xl = gpuMix.matmulBackwardLowPrecision(g, a, ta, b, tb);
          check("bf16 out: matmul dA (low precision)", BF16_GEMM, r.first().toDoubles(), xl.first().toDoubles());
          check("matmul dB (beside low-precision dA)", BF16_GEMM, r.second(), xl.second());
          // a sum of three products of different inner dimensions in one output (GEMMs with beta = 1)
          int k2 = 1 + rnd.nextInt(40), k3 = k + 7;
          HostTensor a2 = ta ? rf(k2, m, 1) : rf(m, k2, 1), b2 = tb ? rf(n, k2, 1) : rf(k2, n, 1);
          HostTensor a3 = ta ? rf(k3, m, 1) : rf(m, k3, 1), b3 = tb ? rf(n, k3, 1) : rf(k3, n, 1);
          Tensor rs = ref.matmulSum(List.of(a, a2, a3), ta, List.of(b, b2, b3), tb);
          check("matmulSum of 3 bf16", BF16_GEMM, rs, gpu.matmulSum(List.of(a, a2, a3), ta, List.of(b, b2, b3), tb));
          check("matmulSum of 3 fp32", FP32, rs, gpu32.matmulSum(List.of(a, a2, a3), ta, List.of(b, b2, b3), tb));
        }
      }
    }
  }

  void elementwise() {
    for (int[] s : new int[][] {{dim(40), dim(40)}, {513, 1031}}) {
      int r = s[0], c = s[1];
      HostTensor a = rf(r, c, 1), b = rf(r, c, 1), v = rf(r, c, 1);
      Tensor ga = gpu.tensor(r, c, a.data());
      check("tensor round trip", FP32, a, ga);
      check("zeros", FP32, ref.zeros(r, c).toDoubles(), gpu.zeros(r, c).toDoubles());
      check("linear", FP32, ref.linear(0.3, a, -2, b), gpu.linear(0.3, a, -2, b));
      check("scale", FP32, ref.scale(a, -1.7), gpu.scale(a, -1.7));
      check("hadamard", FP32, ref.hadamard(a, b), gpu.hadamard(a, b));
      check("transpose", FP32, ref.transpose(a), gpu.transpose(a));
      check("scaleRows", FP32, ref.scaleRows(a, r / 3, r / 3 + r / 2, 0.25), gpu.scaleRows(a, r / 3, r / 3 + r / 2, 0.25));
      HostTensor vv = (HostTensor) ref.hadamard(v, v);
      check("adamDirection", FP32, ref.adamDirection(a, vv, 0.9, 0.99, 1e-8), gpu.adamDirection(a, vv, 0.9, 0.99, 1e-8));
      var fused = gpu.adamW(b, a, v, vv, 0.9, 0.95, 1 - 0.9 * 0.9, 1 - 0.95 * 0.95, 1e-8, 0.01, 0.1);
      Tensor m1 = ref.linear(0.9, v, 0.1, a), v1 = ref.linear(0.95, vv, 0.05, ref.hadamard(a, a));
      Tensor w1 = ref.linear(1 - 0.01 * 0.1, b, -0.01, ref.adamDirection(m1, v1, 1 - 0.81, 1 - 0.95 * 0.95, 1e-8));
      check("adamW fused: w", FP32, w1, fused.weight());
      check("adamW fused: m", FP32, m1, fused.m());
      check("adamW fused: v", FP32, v1, fused.v());
      check("sumRows", FP32, ref.sumRows(a), gpu.sumRows(a));
      check("sum", FP32, new double[] {ref.sum(a)}, new double[] {gpu.sum(a)});
      check("sumOfSquares", FP32, new double[] {ref.sumOfSquares(a)}, new double[] {gpu.sumOfSquares(a)});
    }
  }

  void normGeluSoftmaxEmbedding() {
    // (7, 3500): wider than the warp-per-row RMSNorm backward's shared memory holds, so the block-per-row kernel
    for (int[] s : new int[][] {{dim(40), dim(40)}, {dim(40), dim(300)}, {300, 1024}, {7, 3500}}) {
      int n = s[0], c = s[1];
      HostTensor x = rf(n, c, 2), w = rf(1, c, 1), g = rf(n, c, 1);
      var rn = ref.rmsnorm(x, w, 1e-5);
      var xn = gpu.rmsnorm(x, w, 1e-5);
      check("rmsnorm", FP32, rn.out(), xn.out());
      check("rmsnorm rstd", FP32, rn.rstd(), xn.rstd());
      var rb = ref.rmsnormBackward(g, x, w, rn.rstd());
      var xb = gpu.rmsnormBackward(g, x, w, xn.rstd());
      check("rmsnorm dx", FP32, rb.first(), xb.first());
      check("rmsnorm dw", FP32, rb.second(), xb.second());
      HostTensor res = rf(n, c, 1);
      var rr = ref.rmsnormBackwardAdd(g, x, w, rn.rstd(), res);
      var xr = gpu.rmsnormBackwardAdd(g, x, w, xn.rstd(), res);
      check("rmsnorm dx + residual", FP32, rr.first(), xr.first());
      check("rmsnorm dw (residual add)", FP32, rr.second(), xr.second());
      check("gelu", FP32, ref.gelu(x), gpu.gelu(x));
      check("gelu dx", FP32, ref.geluBackward(g, x), gpu.geluBackward(g, x));
      check("softmax", FP32, ref.softmax(x), gpu.softmax(x));
      check("softmax dx", FP32, ref.softmaxBackward(g, ref.softmax(x)), gpu.softmaxBackward(g, gpu.softmax(x)));
      int vocab = 1 + rnd.nextInt(50);
      int[] ids = rnd.ints(n, 0, vocab).toArray();
      HostTensor table = rf(vocab, c, 1);
      check("embedding", FP32, ref.embedding(table, ids), gpu.embedding(table, ids));
      check("embedding dtable", FP32, ref.embeddingBackward(g, ids, vocab), gpu.embeddingBackward(g, ids, vocab));
    }
  }

  void crossEntropy() {
    for (int[] s : new int[][] {{dim(40), 2 + rnd.nextInt(50)}, {257, 8192}}) {
      int n = s[0], vocab = s[1];
      HostTensor logits = rf(n, vocab, 3);
      int[] targets = rnd.ints(n, 0, vocab).toArray();
      double[] mask = new double[n], dnll = new double[n];
      for (int i = 0; i < n; i++) {
        mask[i] = rnd.nextInt(4) == 0 ? 0 : 1;
        dnll[i] = rnd.nextInt(5) == 0 ? 0 : rnd.nextGaussian(); // also rows the forward did not compute
      }
      Tensor gl = gpu.tensor(n, vocab, logits.data());
      check("crossEntropy nll V=" + vocab, FP32, ref.crossEntropy(logits, targets, mask), gpu.crossEntropy(gl, targets, mask));
      check("crossEntropy dlogits (lse kept)", FP32, ref.crossEntropyBackward(logits, targets, dnll), gpu.crossEntropyBackward(gl, targets, dnll));
      check("crossEntropy dlogits (fresh)", FP32, ref.crossEntropyBackward(logits, targets, dnll), gpu.crossEntropyBackward(logits, targets, dnll));
    }
  }

  void attention() {
    // {B, T, H, D}: ragged tails, head dims that are not multiples of 16, several tiles, and the benchmark's D=64
    int[][] shapes = {{1, 1, 1, 4}, {2, 7, 3, 8}, {1 + rnd.nextInt(3), 1 + rnd.nextInt(100), 1 + rnd.nextInt(4), 1 + rnd.nextInt(40)},
        {2, 130, 2, 24}, {2, 256, 2, 64}, {1, 200, 4, 16}, {1, 128, 1, 128}};
    for (int[] s : shapes) {
      int b = s[0], t = s[1], h = s[2], c = h * s[3];
      String shape = " B=" + b + " T=" + t + " H=" + h + " D=" + s[3];
      HostTensor q = rf(b * t, c, 1), k = rf(b * t, c, 1), v = rf(b * t, c, 1), g = rf(b * t, c, 1);
      var ra = ref.attention(q, k, v, b, t, h);
      var xa = gpu.attention(q, k, v, b, t, h);
      check("attention out" + shape, BF16_ATTENTION, ra.out().toDoubles(), xa.out().toDoubles());
      check("attention maxLogit" + shape, BF16_ATTENTION, ra.maxLogit(), xa.maxLogit());
      var rg = ref.attentionBackward(g, q, k, v, ra.probs(), b, t, h);
      var xg = gpu.attentionBackward(g, q, k, v, xa.probs(), b, t, h);
      double dvNorm = Math.sqrt(ref.sumOfSquares(rg.third()));
      checkScaled("attention dq" + shape, BF16_ATTENTION_GRAD, rg.first().toDoubles(), xg.first().toDoubles(), dvNorm);
      checkScaled("attention dk" + shape, BF16_ATTENTION_GRAD, rg.second().toDoubles(), xg.second().toDoubles(), dvNorm);
      check("attention dv" + shape, BF16_ATTENTION_GRAD, rg.third().toDoubles(), xg.third().toDoubles());
    }
    // large logits: max-logit tracking must see the signed maximum, including negative ones
    int b = 2, t = 70, h = 2, c = 2 * 32;
    HostTensor q = rf(b * t, c, 3), k = rf(b * t, c, 3), v = rf(b * t, c, 1);
    check("attention maxLogit, logits ~ 9 sigma", BF16_ATTENTION, ref.attention(q, k, v, b, t, h).maxLogit(), gpu.attention(q, k, v, b, t, h).maxLogit());
    // a step's layers: several calls share one device slab of maxima, read back once; here three calls, then a
    // cross-entropy (whose sync reads the slab), then a fourth call (a new slab), read in reverse order
    int[] heads = {2, 3, 1, 2};
    var refMax = new ArrayList<double[]>();
    var gpuAtt = new ArrayList<TensorOps.Attention>();
    for (int i = 0; i < heads.length; i++) {
      if (i == 3) {
        HostTensor logits = rf(5, 11, 1);
        gpu.crossEntropy(logits, new int[] {0, 1, 2, 3, 4}, new double[] {1, 1, 1, 1, 1});
      }
      HostTensor qi = rf(2 * 40, heads[i] * 16, 2), ki = rf(2 * 40, heads[i] * 16, 2), vi = rf(2 * 40, heads[i] * 16, 1);
      refMax.add(ref.attention(qi, ki, vi, 2, 40, heads[i]).maxLogit());
      gpuAtt.add(gpu.attention(qi, ki, vi, 2, 40, heads[i]));
    }
    double[] r = new double[8], x = new double[8];
    for (int i = heads.length - 1, at = 8; i >= 0; i--) {
      at -= heads[i];
      System.arraycopy(gpuAtt.get(i).maxLogit(), 0, x, at, heads[i]);
      System.arraycopy(refMax.get(i), 0, r, at, heads[i]);
    }
    check("attention maxLogit, 4 calls read back late", BF16_ATTENTION, r, x);
  }
}
