package dev.k2pekko.ops.cuda;

import dev.k2pekko.ops.FusedMuon;
import dev.k2pekko.ops.FusedNewtonSchulz;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import java.lang.ref.Reference;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * The CUDA backend of {@link TensorOps}: fp32 tensors in device memory (the master copy), matrix products
 * on the tensor cores through cuBLAS with bf16 operands and fp32 accumulation and output, and every other op
 * in a kernel of this package's CUDA C sources ({@code ops.cu}, {@code attention.cu}) compiled at run time by
 * NVRTC for the device's architecture. With bf16 activations (the default in the BF16 precision), the outputs
 * that a training step reads only as bf16 operands are stored only as bf16 (see {@link #bf16Activations}).
 * All work is queued on the device's one stream; only the ops that
 * return host values (sum, sumOfSquares, crossEntropy, toDoubles) and the first read of a step's attention
 * maxLogit (when no cross-entropy has read it already) wait for it.
 *
 * <p>Attention runs in 64x64 tiles on the bf16 tensor cores and never stores the T x T probabilities: the
 * {@code probs} tensor of its result is backend-private state, the (B*H*T, 1) row log-sum-exp, from which
 * {@link #attentionBackward} recomputes them; its {@code toDoubles()} returns those log-sum-exp values. The
 * per-head maximum logit comes out of the same kernel into a device slab shared by consecutive calls, read back
 * once (see {@link Attention#maxLogit()}).
 */
public final class CudaOps implements TensorOps, FusedNewtonSchulz, FusedMuon {
  /** Operand precision of matrix products: bf16 tensor cores (default) or plain fp32. Accumulation is fp32 in both. */
  public enum Precision { BF16, FP32 }

  private static final String OPS = "ops.cu", ATTENTION = "attention.cu";
  private static final int THREADS = 256;

  private final CudaDevice dev;
  private final Precision precision;
  private volatile boolean bf16Activations;

  public CudaOps() {
    this(CudaDevice.get(), Precision.BF16);
  }

  public CudaOps(CudaDevice device, Precision precision) {
    this.dev = device;
    this.precision = precision;
    this.bf16Activations = precision == Precision.BF16;
  }

  public CudaDevice device() {
    return dev;
  }

  public Precision precision() {
    return precision;
  }

  /**
   * Whether ops whose output a training step reads only as a bf16 operand store it only as bf16 (on by default
   * in the BF16 precision, where every GEMM and attention operand is bf16 anyway; ignored in FP32): RMSNorm's
   * output, GELU and its backward, attention's output and gradients, the cross-entropy gradient and
   * {@link #matmulLowPrecision}. Those tensors are then written once, at half the bytes, and never converted
   * before a GEMM; PolicyModel's step computes the same GEMMs as with this off (the GEMMs read bf16 copies of
   * the same values), except that GELU and attention read q, k, v and the MLP's hidden layer rounded to bf16,
   * as under PyTorch's autocast. Any fp32 op on such a tensor converts it once (see {@link CudaTensor}).
   * Off gives fp32 outputs everywhere (the fp32 op checks, and measuring what this saves).
   */
  public void bf16Activations(boolean on) {
    bf16Activations = on;
  }

  /** Whether outputs read only as bf16 operands are stored as bf16 now (see {@link #bf16Activations(boolean)}). */
  public boolean bf16Activations() {
    return bf16Activations && precision == Precision.BF16;
  }

  @Override
  public String name() {
    return "cuda-" + (precision == Precision.BF16 ? "bf16" : "fp32");
  }

  /** Waits until every queued op has finished (for timing). */
  public void synchronize() {
    dev.synchronize();
  }

  public String memoryStats() {
    return dev.memory.stats();
  }

  /**
   * Asks for a collection, takes back what it freed, and returns every cached free block to the driver: a fresh
   * pool for what comes next (the benchmarks call it between models of different shapes). Waits for the device.
   */
  public void trimPool() {
    dev.memory.collectAndTrim();
  }

  /** How many collections the memory pool has asked the JVM for so far, and the milliseconds they took. */
  public long poolCollections() {
    return dev.memory.collections();
  }

  public double poolCollectMs() {
    return dev.memory.collectMs();
  }

  // ---- helpers ----

  private CudaTensor c(Tensor t) {
    if (t instanceof CudaTensor ct) {
      if (ct.device != dev) throw new IllegalArgumentException("tensor of another device");
      return ct;
    }
    return (CudaTensor) tensor(t.rows(), t.cols(), t.toDoubles());
  }

  private CudaTensor alloc(int rows, int cols) {
    return scoped(new CudaTensor(dev, rows, cols));
  }

  /** A tensor stored only as bf16 (written through its bf16Ptr). */
  private CudaTensor allocBf16(int rows, int cols) {
    return scoped(CudaTensor.bf16Only(dev, rows, cols));
  }

  // ---- scopes: explicit free of temporaries ----

  private final ThreadLocal<ArrayDeque<CudaScope>> scopes = ThreadLocal.withInitial(ArrayDeque::new);

  private <T extends CudaTensor> T scoped(T t) {
    CudaScope s = scopes.get().peek();
    if (s != null) s.created.add(t);
    return t;
  }

  @Override
  public Scope scope() {
    var s = new CudaScope();
    scopes.get().push(s);
    return s;
  }

  /** The tensors created on one thread while it was open; frees those not kept when it closes. */
  private final class CudaScope implements Scope {
    final ArrayList<CudaTensor> created = new ArrayList<>();
    final Set<CudaTensor> kept = Collections.newSetFromMap(new IdentityHashMap<>());
    private boolean closed;

    @Override
    public void keep(Tensor t) {
      if (closed) throw new IllegalStateException("scope already closed");
      if (t instanceof CudaTensor ct) kept.add(ct);
    }

    @Override
    public void close() {
      if (closed) return;
      ArrayDeque<CudaScope> stack = scopes.get();
      if (stack.peek() != this) throw new IllegalStateException("scopes must close in reverse order, on the thread that opened them");
      closed = true;
      stack.pop();
      CudaScope outer = stack.peek();
      for (CudaTensor t : created) {
        if (!kept.contains(t)) t.free();
        else if (outer != null) outer.created.add(t);
      }
      created.clear();
    }
  }

  /** Frees t's device memory now (it goes back to the pool; work already queued on the stream still reads it first). */
  @Override
  public void release(Tensor t) {
    if (t instanceof CudaTensor ct && ct.device == dev) ct.free();
  }

  private static void sameShape(Tensor a, Tensor b) {
    if (a.rows() != b.rows() || a.cols() != b.cols()) {
      throw new IllegalArgumentException("shape " + a.shapeString() + " != " + b.shapeString());
    }
  }

  private long fn(String name) {
    return dev.function(OPS, List.of(), name);
  }

  private int blocks(long n) {
    return (int) Math.max(1, Math.min((n + THREADS - 1) / THREADS, dev.smCount * 16L));
  }

  private void launch1d(String kernel, long n, Object... args) {
    if (n == 0) return;
    dev.launch(fn(kernel), blocks(n), 1, 1, THREADS, 1, 1, 0, args);
  }

  /** Keeps inputs reachable until their kernels are queued, so the pool cannot hand their memory out early. */
  private static void keep(Object... xs) {
    Reference.reachabilityFence(xs);
  }

  private long bf16(CudaTensor t) {
    return t.bf16(dst -> launch1d("k_to_bf16", t.count(), dst, t.ptr(), t.count()));
  }

  private DeviceMemory.Block scratch(long bytes) {
    return dev.memory.take(bytes);
  }

  // ---- creation ----

  @Override
  public Tensor tensor(int rows, int cols, double[] data) {
    if (data.length != rows * cols) throw new IllegalArgumentException("data length " + data.length + " != " + rows + "*" + cols);
    float[] f = new float[data.length];
    for (int i = 0; i < f.length; i++) f[i] = (float) data[i];
    return tensor(rows, cols, f);
  }

  public Tensor tensor(int rows, int cols, float[] data) {
    CudaTensor t = alloc(rows, cols);
    dev.upload(t.ptr(), data);
    return t;
  }

  @Override
  public Tensor zeros(int rows, int cols) {
    CudaTensor t = alloc(rows, cols);
    dev.memsetAsync(t.ptr(), 0, 4L * t.count());
    return t;
  }

  // ---- matmul ----

  @Override
  public Tensor matmul(Tensor at, boolean transA, Tensor bt, boolean transB) {
    CudaTensor a = c(at), b = c(bt);
    int m = transA ? a.cols() : a.rows(), k = transA ? a.rows() : a.cols();
    int kb = transB ? b.cols() : b.rows(), n = transB ? b.rows() : b.cols();
    if (k != kb) throw new IllegalArgumentException("matmul inner dims " + a.shapeString() + (transA ? "^T" : "") + " . " + b.shapeString() + (transB ? "^T" : ""));
    CudaTensor out = alloc(m, n);
    if (m == 0 || n == 0) return out;
    if (k == 0) {
      dev.memsetAsync(out.ptr(), 0, 4L * out.count());
      return out;
    }
    if (precision == Precision.BF16) {
      dev.gemm(transA, transB, m, n, k, 1f, bf16(a), Cuda.CUDA_R_16BF, bf16(b), Cuda.CUDA_R_16BF, 0f, out.ptr(), Cuda.CUDA_R_32F);
    } else {
      dev.gemm(transA, transB, m, n, k, 1f, a.ptr(), Cuda.CUDA_R_32F, b.ptr(), Cuda.CUDA_R_32F, 0f, out.ptr(), Cuda.CUDA_R_32F);
    }
    keep(a, b);
    return out;
  }

  /**
   * matmul whose result is stored only as bf16 when {@link #bf16Activations()} (the GEMM writes bf16 from its fp32
   * accumulators; PolicyModel passes q, k, v to attention and the MLP's hidden layer to GELU this way), else
   * {@link #matmul}.
   */
  @Override
  public Tensor matmulLowPrecision(Tensor at, boolean transA, Tensor bt, boolean transB) {
    if (!bf16Activations()) return matmul(at, transA, bt, transB);
    CudaTensor a = c(at), b = c(bt);
    int m = transA ? a.cols() : a.rows(), k = transA ? a.rows() : a.cols();
    int kb = transB ? b.cols() : b.rows(), n = transB ? b.rows() : b.cols();
    if (k != kb) throw new IllegalArgumentException("matmul inner dims " + a.shapeString() + (transA ? "^T" : "") + " . " + b.shapeString() + (transB ? "^T" : ""));
    if (m == 0 || n == 0 || k == 0) return matmul(at, transA, bt, transB);
    CudaTensor out = allocBf16(m, n);
    dev.gemm(transA, transB, m, n, k, 1f, bf16(a), Cuda.CUDA_R_16BF, bf16(b), Cuda.CUDA_R_16BF, 0f, out.bf16Ptr(), Cuda.CUDA_R_16BF);
    keep(a, b);
    return out;
  }

  /**
   * One output for the whole sum: the first product's GEMM writes it (beta = 0), each further one adds to it
   * (beta = 1), so the sum costs no separate passes (PolicyModel: dq Wq + dk Wk + dv Wv). fp32 output.
   */
  @Override
  public Tensor matmulSum(List<? extends Tensor> as, boolean transA, List<? extends Tensor> bs, boolean transB) {
    if (as.isEmpty() || as.size() != bs.size()) throw new IllegalArgumentException("matmulSum: " + as.size() + " and " + bs.size() + " factors");
    int m = -1, n = -1;
    CudaTensor[] a = new CudaTensor[as.size()], b = new CudaTensor[as.size()];
    int[] ks = new int[as.size()];
    for (int i = 0; i < a.length; i++) {
      a[i] = c(as.get(i));
      b[i] = c(bs.get(i));
      int mi = transA ? a[i].cols() : a[i].rows(), k = transA ? a[i].rows() : a[i].cols();
      int kb = transB ? b[i].cols() : b[i].rows(), ni = transB ? b[i].rows() : b[i].cols();
      if (k != kb || (i > 0 && (mi != m || ni != n))) {
        throw new IllegalArgumentException("matmulSum term " + i + ": " + a[i].shapeString() + (transA ? "^T" : "") + " . " + b[i].shapeString() + (transB ? "^T" : ""));
      }
      m = mi;
      n = ni;
      ks[i] = k;
    }
    CudaTensor out = alloc(m, n);
    if (m == 0 || n == 0) return out;
    float beta = 0f;
    for (int i = 0; i < a.length; i++) {
      if (ks[i] == 0) continue;
      if (precision == Precision.BF16) {
        dev.gemm(transA, transB, m, n, ks[i], 1f, bf16(a[i]), Cuda.CUDA_R_16BF, bf16(b[i]), Cuda.CUDA_R_16BF, beta, out.ptr(), Cuda.CUDA_R_32F);
      } else {
        dev.gemm(transA, transB, m, n, ks[i], 1f, a[i].ptr(), Cuda.CUDA_R_32F, b[i].ptr(), Cuda.CUDA_R_32F, beta, out.ptr(), Cuda.CUDA_R_32F);
      }
      beta = 1f;
    }
    if (beta == 0f) dev.memsetAsync(out.ptr(), 0, 4L * out.count());
    keep((Object[]) a);
    keep((Object[]) b);
    return out;
  }

  // ---- elementwise ----

  @Override
  public Tensor linear(double alpha, Tensor at, double beta, Tensor bt) {
    sameShape(at, bt);
    CudaTensor a = c(at), b = c(bt), out = alloc(a.rows(), a.cols());
    launch1d("k_linear", out.count(), out.ptr(), a.ptr(), b.ptr(), (float) alpha, (float) beta, out.count());
    keep(a, b);
    return out;
  }

  @Override
  public Tensor scale(Tensor at, double s) {
    CudaTensor a = c(at), out = alloc(a.rows(), a.cols());
    launch1d("k_scale", out.count(), out.ptr(), a.ptr(), (float) s, out.count());
    keep(a);
    return out;
  }

  @Override
  public Tensor hadamard(Tensor at, Tensor bt) {
    sameShape(at, bt);
    CudaTensor a = c(at), b = c(bt), out = alloc(a.rows(), a.cols());
    launch1d("k_hadamard", out.count(), out.ptr(), a.ptr(), b.ptr(), out.count());
    keep(a, b);
    return out;
  }

  @Override
  public Tensor transpose(Tensor at) {
    CudaTensor a = c(at), out = alloc(a.cols(), a.rows());
    if (a.count() > 0) {
      dev.launch(fn("k_transpose"), (a.cols() + 31) / 32, (a.rows() + 31) / 32, 1, 32, 8, 1, 0, out.ptr(), a.ptr(), a.rows(), a.cols());
    }
    keep(a);
    return out;
  }

  @Override
  public Tensor scaleRows(Tensor at, int from, int to, double factor) {
    CudaTensor a = c(at), out = alloc(a.rows(), a.cols());
    launch1d("k_scale_rows", out.count(), out.ptr(), a.ptr(), a.cols(), from, to, (float) factor, out.count());
    keep(a);
    return out;
  }

  @Override
  public Tensor adamDirection(Tensor mt, Tensor vt, double bc1, double bc2, double eps) {
    sameShape(mt, vt);
    CudaTensor m = c(mt), v = c(vt), out = alloc(m.rows(), m.cols());
    launch1d("k_adam_dir", out.count(), out.ptr(), m.ptr(), v.ptr(), (float) bc1, (float) bc2, (float) eps, out.count());
    keep(m, v);
    return out;
  }

  /** The result of {@link #adamW}: new weight and moments. */
  public record AdamWStep(Tensor weight, Tensor m, Tensor v) {}

  /**
   * AdamW in one kernel, the same arithmetic as the optimizer's five ops (dev.k2pekko.optim.AdamW):
   * m1 = b1 m + (1-b1) g, v1 = b2 v + (1-b2) g^2, w1 = (1 - lr wd) w - lr (m1/bc1) / (sqrt(v1/bc2) + eps).
   */
  public AdamWStep adamW(Tensor wt, Tensor gt, Tensor mt, Tensor vt, double b1, double b2, double bc1, double bc2,
      double eps, double lr, double wd) {
    sameShape(wt, gt);
    CudaTensor w = c(wt), g = c(gt), m = c(mt), v = c(vt);
    CudaTensor w1 = alloc(w.rows(), w.cols()), m1 = alloc(w.rows(), w.cols()), v1 = alloc(w.rows(), w.cols());
    launch1d("k_adamw", w.count(), w1.ptr(), m1.ptr(), v1.ptr(), w.ptr(), g.ptr(), m.ptr(), v.ptr(), (float) b1, (float) b2,
        (float) bc1, (float) bc2, (float) eps, (float) lr, (float) wd, w.count());
    keep(w, g, m, v);
    return new AdamWStep(w1, m1, v1);
  }

  /**
   * The quintic Newton–Schulz iteration of Muon (dev.k2pekko.optim.NewtonSchulz) kept in bf16 on the device,
   * as PyTorch's reference Muon does: X = bf16(G / (||G||_F + eps)), transposed when G is tall, then
   * {@code steps} times A = X X^T, B = b A + c A A, X = a X + B X, each product one cublasGemmEx with bf16
   * operands and output and fp32 accumulation, the linear terms folded into the GEMM's beta. The norm never
   * leaves the device, so nothing waits. Returns fp32 (R,K).
   */
  @Override
  public Tensor newtonSchulz(Tensor gt, int steps, double a, double b, double c, double eps) {
    CudaTensor g = c(gt);
    boolean tall = g.rows() > g.cols();
    CudaTensor src = tall ? (CudaTensor) transpose(g) : g;
    int r = src.rows(), k = src.cols();
    long n = (long) r * k;
    DeviceMemory.Block acc = scratch(8), x = scratch(2 * n), xn = scratch(2 * n), am = scratch(2L * r * r), bm = scratch(2L * r * r);
    dev.memsetAsync(acc.ptr, 0, 8);
    launch1d("k_reduce", n, acc.ptr, src.ptr(), 1, n);
    launch1d("k_ns_init", n, x.ptr, src.ptr(), acc.ptr, (float) eps, n);
    long cur = x.ptr, next = xn.ptr;
    for (int i = 0; i < steps; i++) {
      dev.gemm(false, true, r, r, k, 1f, cur, Cuda.CUDA_R_16BF, cur, Cuda.CUDA_R_16BF, 0f, am.ptr, Cuda.CUDA_R_16BF);
      dev.copyAsync(bm.ptr, am.ptr, 2L * r * r, Cuda.D2D);
      dev.gemm(false, false, r, r, r, (float) c, am.ptr, Cuda.CUDA_R_16BF, am.ptr, Cuda.CUDA_R_16BF, (float) b, bm.ptr, Cuda.CUDA_R_16BF);
      dev.copyAsync(next, cur, 2 * n, Cuda.D2D);
      dev.gemm(false, false, r, k, r, 1f, bm.ptr, Cuda.CUDA_R_16BF, cur, Cuda.CUDA_R_16BF, (float) a, next, Cuda.CUDA_R_16BF);
      long t = cur;
      cur = next;
      next = t;
    }
    CudaTensor out = alloc(r, k);
    launch1d("k_bf16_to_f32", n, out.ptr(), cur, n);
    for (DeviceMemory.Block blk : new DeviceMemory.Block[] {acc, x, xn, am, bm}) dev.memory.release(blk);
    keep(g, src);
    return tall ? transpose(out) : out;
  }

  /** Most matrices one batched call runs together: the kernels put the matrix index in a grid dimension (65535 at most). */
  static final int NS_MAX_BATCH = 65535;

  /**
   * {@link #newtonSchulz} of every matrix of gs (all of one shape) at once: the per-matrix sums of squares in one
   * kernel (double accumulators, one per matrix), the scaled bf16 start of every matrix (transposed when tall) in
   * one kernel into one buffer (matrix i at i*R*K), then the same {@code steps} x 3 GEMMs as the single path, each
   * one cublasGemmStridedBatchedEx over the whole batch with the same operand types, the same linear terms in beta
   * and the same bf16 rounding points, and one kernel writing each fp32 result (transposed back when tall). The
   * results equal newtonSchulz's up to the GEMMs' and the norm's reduction order. Returns fp32 tensors, one per input.
   */
  @Override
  public List<Tensor> newtonSchulzBatch(List<? extends Tensor> gts, int steps, double a, double b, double c, double eps) {
    FusedNewtonSchulz.checkOneShape(gts);
    if (gts.size() > NS_MAX_BATCH) {
      var out = new ArrayList<Tensor>(gts.size());
      for (int i = 0; i < gts.size(); i += NS_MAX_BATCH) {
        out.addAll(newtonSchulzBatch(gts.subList(i, Math.min(gts.size(), i + NS_MAX_BATCH)), steps, a, b, c, eps));
      }
      return out;
    }
    int batch = gts.size();
    if (batch == 0) return List.of();
    int rows = gts.get(0).rows(), cols = gts.get(0).cols();
    CudaTensor[] g = new CudaTensor[batch], out = new CudaTensor[batch];
    for (int i = 0; i < batch; i++) g[i] = c(gts.get(i));
    for (int i = 0; i < batch; i++) out[i] = alloc(rows, cols);
    long n = (long) rows * cols;
    if (n == 0) return List.<Tensor>of(out);
    boolean tall = rows > cols;
    int r = tall ? cols : rows, k = tall ? rows : cols; // the iterate X is (r, k), r <= k
    long rr = (long) r * r;
    long[] src = new long[batch], dst = new long[batch];
    for (int i = 0; i < batch; i++) {
      src[i] = g[i].ptr();
      dst[i] = out[i].ptr();
    }
    DeviceMemory.Block srcs = scratch(8L * batch), dsts = scratch(8L * batch), acc = scratch(8L * batch);
    DeviceMemory.Block x = scratch(2 * n * batch), xn = scratch(2 * n * batch), am = scratch(2 * rr * batch), bm = scratch(2 * rr * batch);
    dev.upload(srcs.ptr, src);
    dev.upload(dsts.ptr, dst);
    dev.memsetAsync(acc.ptr, 0, 8L * batch);
    int perMatrix = (int) Math.max(1, Math.min((n + THREADS - 1) / THREADS, Math.max(1, dev.smCount * 16L / batch)));
    dev.launch(fn("k_sumsq_batch"), perMatrix, batch, 1, THREADS, 1, 1, 0, acc.ptr, srcs.ptr, n);
    dev.launch(fn("k_ns_init_batch"), (cols + 31) / 32, (rows + 31) / 32, batch, 32, 8, 1, 0, x.ptr, srcs.ptr, acc.ptr, (float) eps,
        rows, cols, tall ? 1 : 0);
    long cur = nsChain(x.ptr, xn.ptr, am.ptr, bm.ptr, r, k, batch, steps, a, b, c);
    dev.launch(fn("k_ns_unpack_batch"), (k + 31) / 32, (r + 31) / 32, batch, 32, 8, 1, 0, dsts.ptr, cur, r, k, tall ? 1 : 0);
    for (DeviceMemory.Block blk : new DeviceMemory.Block[] {srcs, dsts, acc, x, xn, am, bm}) dev.memory.release(blk);
    keep((Object[]) g);
    return List.<Tensor>of(out);
  }

  /**
   * The batched Newton–Schulz GEMM chain on {@code batch} bf16 iterates (r, k), r <= k, matrix i at i*r*k of x:
   * {@code steps} times A = X X^T, B = b A + c A A, X = a X + B X, each one cublasGemmStridedBatchedEx over the batch
   * with bf16 operands and output, fp32 accumulation and the linear terms in beta. xn (the size of x) holds the next
   * iterate, am and bm (batch*r*r bf16 each) A and B. Returns whichever of x and xn holds the result.
   */
  private long nsChain(long x, long xn, long am, long bm, int r, int k, int batch, int steps, double a, double b, double c) {
    long n = (long) r * k, rr = (long) r * r;
    long cur = x, next = xn;
    for (int i = 0; i < steps; i++) {
      dev.gemmStridedBatched(false, true, r, r, k, 1f, cur, Cuda.CUDA_R_16BF, n, cur, Cuda.CUDA_R_16BF, n, 0f, am, Cuda.CUDA_R_16BF,
          rr, batch);
      dev.copyAsync(bm, am, 2 * rr * batch, Cuda.D2D);
      dev.gemmStridedBatched(false, false, r, r, r, (float) c, am, Cuda.CUDA_R_16BF, rr, am, Cuda.CUDA_R_16BF, rr, (float) b,
          bm, Cuda.CUDA_R_16BF, rr, batch);
      dev.copyAsync(next, cur, 2 * n * batch, Cuda.D2D);
      dev.gemmStridedBatched(false, false, r, k, r, 1f, bm, Cuda.CUDA_R_16BF, rr, cur, Cuda.CUDA_R_16BF, n, (float) a, next,
          Cuda.CUDA_R_16BF, n, batch);
      long t = cur;
      cur = next;
      next = t;
    }
    return cur;
  }

  /** Matrices per launch of the fused Muon kernels: the size of the pointer tables they take by value (ops.cu's MUON_TABLE). */
  static final int MUON_TABLE = 64;

  /**
   * Muon's step of a group of same-shaped matrices in three kernels and the Newton–Schulz GEMM chain, with the
   * arithmetic of dev.k2pekko.optim.Muon.step's ops for each matrix (m1 = mu m + g; u = g + mu m1 with Nesterov, else
   * m1; u's bf16 Newton–Schulz as {@link #newtonSchulzBatch}; w1 = (1 - lr wd) w - lr (scale O)):
   * <ol>
   *   <li>{@code k_muon_momentum}: m1 and u of every matrix, u written fp32 into one buffer (matrix i at i*R*K) and
   *       the sum of u^2 of each matrix (double) accumulated in the same pass;</li>
   *   <li>{@code k_muon_ns_init}: the scaled bf16 start of every matrix from that buffer (transposed when tall), as
   *       newtonSchulzBatch's init;</li>
   *   <li>the same strided-batched GEMM chain as newtonSchulzBatch;</li>
   *   <li>{@code k_muon_decay}: every new weight from the chain's bf16 output (transposed back when tall), the scale and
   *       the decay in the same pass, so the result is never stored fp32.</li>
   * </ol>
   * The per-matrix pointers go to the kernels as parameters (tables of {@link #MUON_TABLE}, a launch per table), so
   * nothing is uploaded; all scratch space is one pooled block, served from the pool's free list from the second
   * step on; nothing waits for the device. Outputs are 2 tensors per matrix, the new weight and momentum.
   */
  @Override
  public GroupStep muonGroupStep(List<? extends Tensor> wts, List<? extends Tensor> gts, List<? extends Tensor> mts, double lr,
      double mu, boolean nesterov, double wd, double scale, int steps, double a, double b, double c, double eps) {
    FusedMuon.checkGroup(wts, gts, mts);
    if (wts.size() > NS_MAX_BATCH) { // grid z of k_muon_ns_init is the matrix index
      var w1 = new ArrayList<Tensor>(wts.size());
      var m1 = new ArrayList<Tensor>(wts.size());
      for (int i = 0; i < wts.size(); i += NS_MAX_BATCH) {
        int j = Math.min(wts.size(), i + NS_MAX_BATCH);
        GroupStep part = muonGroupStep(wts.subList(i, j), gts.subList(i, j), mts.subList(i, j), lr, mu, nesterov, wd, scale, steps, a, b, c, eps);
        w1.addAll(part.weights());
        m1.addAll(part.momenta());
      }
      return new GroupStep(w1, m1);
    }
    int batch = wts.size();
    if (batch == 0) return new GroupStep(List.of(), List.of());
    int rows = wts.get(0).rows(), cols = wts.get(0).cols();
    CudaTensor[] w = new CudaTensor[batch], g = new CudaTensor[batch], m = new CudaTensor[batch];
    CudaTensor[] w1 = new CudaTensor[batch], m1 = new CudaTensor[batch];
    for (int i = 0; i < batch; i++) {
      w[i] = c(wts.get(i));
      g[i] = c(gts.get(i));
      m[i] = c(mts.get(i));
    }
    for (int i = 0; i < batch; i++) {
      w1[i] = alloc(rows, cols);
      m1[i] = alloc(rows, cols);
    }
    long n = (long) rows * cols;
    if (n == 0) return new GroupStep(List.<Tensor>of(w1), List.<Tensor>of(m1));
    boolean tall = rows > cols;
    int r = tall ? cols : rows, k = tall ? rows : cols; // the iterate X is (r, k), r <= k
    long rr = (long) r * r;
    // one block: the sums of squares, u (fp32), the iterate and the next one (bf16), A and B (bf16)
    long accBytes = align256(8L * batch), uBytes = align256(4 * n * batch), xBytes = align256(2 * n * batch), aBytes = align256(2 * rr * batch);
    DeviceMemory.Block blk = scratch(accBytes + uBytes + 2 * xBytes + 2 * aBytes);
    long acc = blk.ptr, u = acc + accBytes, x = u + uBytes, xn = x + xBytes, am = xn + xBytes, bm = am + aBytes;
    dev.memsetAsync(acc, 0, 8L * batch);
    long perThread = (n + 3) / 4; // k_muon_momentum's vector loop: 4 elements a thread
    for (int m0 = 0; m0 < batch; m0 += MUON_TABLE) {
      int chunk = Math.min(MUON_TABLE, batch - m0);
      int perMatrix = (int) Math.max(1, Math.min((perThread + THREADS - 1) / THREADS, Math.max(1, dev.smCount * 16L / chunk)));
      dev.launch(fn("k_muon_momentum"), perMatrix, chunk, 1, THREADS, 1, 1, 0, u, acc, table(g, m0, chunk), table(m, m0, chunk),
          table(m1, m0, chunk), (float) mu, nesterov ? 1 : 0, m0, n);
    }
    dev.launch(fn("k_muon_ns_init"), (cols + 31) / 32, (rows + 31) / 32, batch, 32, 8, 1, 0, x, u, acc, (float) eps, rows, cols,
        tall ? 1 : 0);
    long out = nsChain(x, xn, am, bm, r, k, batch, steps, a, b, c);
    for (int m0 = 0; m0 < batch; m0 += MUON_TABLE) {
      int chunk = Math.min(MUON_TABLE, batch - m0);
      dev.launch(fn("k_muon_decay"), (k + 31) / 32, (r + 31) / 32, chunk, 32, 8, 1, 0, table(w, m0, chunk), table(w1, m0, chunk), out,
          (float) (1.0 - lr * wd), (float) -lr, (float) scale, m0, r, k, tall ? 1 : 0);
    }
    dev.memory.release(blk);
    keep((Object[]) w);
    keep((Object[]) g);
    keep((Object[]) m);
    return new GroupStep(List.<Tensor>of(w1), List.<Tensor>of(m1));
  }

  /** The fp32 pointers of ts[from .. from+count) in a table of MUON_TABLE words (the rest 0), a kernel parameter. */
  private static long[] table(CudaTensor[] ts, int from, int count) {
    long[] p = new long[MUON_TABLE];
    for (int i = 0; i < count; i++) p[i] = ts[from + i].ptr();
    return p;
  }

  private static long align256(long bytes) {
    return (bytes + 255) / 256 * 256;
  }

  // ---- reductions ----

  private double reduce(Tensor at, int mode) {
    CudaTensor a = c(at);
    DeviceMemory.Block acc = scratch(8);
    try {
      dev.memsetAsync(acc.ptr, 0, 8);
      launch1d("k_reduce", a.count(), acc.ptr, a.ptr(), mode, a.count());
      return dev.downloadDouble(acc.ptr);
    } finally {
      dev.memory.release(acc);
      keep(a);
    }
  }

  @Override
  public double sum(Tensor a) {
    return reduce(a, 0);
  }

  @Override
  public double sumOfSquares(Tensor a) {
    return reduce(a, 1);
  }

  @Override
  public Tensor sumRows(Tensor at) {
    CudaTensor a = c(at), out = alloc(1, a.cols());
    colSums(out.ptr(), a.ptr(), a.rows(), a.cols());
    keep(a);
    return out;
  }

  private void colSums(long out, long a, int rows, int cols) {
    dev.memsetAsync(out, 0, 4L * cols);
    if (rows == 0 || cols == 0) return;
    int rowsPerBlock = 256;
    dev.launch(fn("k_col_sums"), (cols + 31) / 32, (rows + rowsPerBlock - 1) / rowsPerBlock, 1, 32, 8, 1, 0, out, a, rows, cols,
        rowsPerBlock);
  }

  // ---- embedding ----

  private DeviceMemory.Block ints(int[] ids) {
    DeviceMemory.Block b = scratch(4L * ids.length);
    dev.upload(b.ptr, ids);
    return b;
  }

  @Override
  public Tensor embedding(Tensor tablet, int[] ids) {
    CudaTensor table = c(tablet), out = alloc(ids.length, table.cols());
    for (int id : ids) if (id < 0 || id >= table.rows()) throw new IndexOutOfBoundsException("id " + id + " of " + table.rows());
    DeviceMemory.Block idb = ints(ids);
    launch1d("k_embedding", out.count(), out.ptr(), table.ptr(), idb.ptr, table.cols(), out.count());
    dev.memory.release(idb);
    keep(table);
    return out;
  }

  @Override
  public Tensor embeddingBackward(Tensor doutt, int[] ids, int vocab) {
    CudaTensor dout = c(doutt), out = alloc(vocab, dout.cols());
    dev.memsetAsync(out.ptr(), 0, 4L * out.count());
    for (int id : ids) if (id < 0 || id >= vocab) throw new IndexOutOfBoundsException("id " + id + " of " + vocab);
    DeviceMemory.Block idb = ints(ids);
    launch1d("k_embedding_bwd", dout.count(), out.ptr(), dout.ptr(), idb.ptr, dout.cols(), dout.count());
    dev.memory.release(idb);
    keep(dout);
    return out;
  }

  // ---- RMSNorm ----

  @Override
  public Norm rmsnorm(Tensor xt, Tensor wt, double eps) {
    CudaTensor x = c(xt), w = c(wt);
    int n = x.rows(), cols = x.cols();
    boolean lowp = bf16Activations();
    CudaTensor out = lowp ? allocBf16(n, cols) : alloc(n, cols), rstd = alloc(n, 1);
    int rowsPerBlock = THREADS / 32; // a warp per row
    if (n > 0) {
      dev.launch(fn(lowp ? "k_rmsnorm_bf" : "k_rmsnorm"), (n + rowsPerBlock - 1) / rowsPerBlock, 1, 1, THREADS, 1, 1, 0,
          lowp ? out.bf16Ptr() : out.ptr(), rstd.ptr(), x.ptr(), w.ptr(), n, cols, (float) eps);
    }
    keep(x, w);
    return new Norm(out, rstd);
  }

  @Override
  public Grad2 rmsnormBackward(Tensor doutt, Tensor xt, Tensor wt, Tensor rstdt) {
    return rmsnormBwd(doutt, xt, wt, rstdt, null);
  }

  /** The residual add in the backward kernel's store: one pass fewer over (N, C) fp32 (read 2, write 1). */
  @Override
  public Grad2 rmsnormBackwardAdd(Tensor doutt, Tensor xt, Tensor wt, Tensor rstdt, Tensor residual) {
    sameShape(residual, xt);
    return rmsnormBwd(doutt, xt, wt, rstdt, c(residual));
  }

  private Grad2 rmsnormBwd(Tensor doutt, Tensor xt, Tensor wt, Tensor rstdt, CudaTensor res) {
    CudaTensor g = c(doutt), x = c(xt), w = c(wt), rstd = c(rstdt);
    int n = x.rows(), cols = x.cols();
    CudaTensor dx = alloc(n, cols), dw = alloc(1, cols);
    // a warp per row with per-warp dw slices in shared memory where they fit (widths up to 3072), else a block per row
    boolean warpRows = 4L * (THREADS / 32) * cols <= 96 * 1024;
    int rowsPerBlock = warpRows ? 64 : 32, nb = Math.max(1, (n + rowsPerBlock - 1) / rowsPerBlock);
    DeviceMemory.Block part = scratch(4L * nb * cols);
    long f = fn(warpRows ? "k_rmsnorm_bwd_w" : "k_rmsnorm_bwd");
    int smem = warpRows ? 4 * (THREADS / 32) * cols : 4 * cols;
    dev.allowSharedMemory(f, smem);
    if (n > 0) {
      dev.launch(f, nb, 1, 1, THREADS, 1, 1, smem, dx.ptr(), part.ptr, g.ptr(), x.ptr(), w.ptr(), rstd.ptr(), res == null ? 0L : res.ptr(),
          n, cols, rowsPerBlock);
      colSums(dw.ptr(), part.ptr, nb, cols);
    } else {
      dev.memsetAsync(dw.ptr(), 0, 4L * cols);
    }
    dev.memory.release(part);
    keep(g, x, w, rstd, res);
    return new Grad2(dx, dw);
  }

  // ---- GELU ----

  @Override
  public Tensor gelu(Tensor xt) {
    CudaTensor x = c(xt);
    if (bf16Activations()) {
      CudaTensor out = allocBf16(x.rows(), x.cols());
      if (x.isBf16Only()) launch1d("k_gelu_bb", x.count(), out.bf16Ptr(), x.bf16Ptr(), x.count());
      else launch1d("k_gelu_fb", x.count(), out.bf16Ptr(), x.ptr(), x.count());
      keep(x);
      return out;
    }
    CudaTensor out = alloc(x.rows(), x.cols());
    launch1d("k_gelu", x.count(), out.ptr(), x.ptr(), x.count());
    keep(x);
    return out;
  }

  @Override
  public Tensor geluBackward(Tensor doutt, Tensor xt) {
    sameShape(doutt, xt);
    CudaTensor g = c(doutt), x = c(xt);
    if (bf16Activations()) {
      CudaTensor out = allocBf16(x.rows(), x.cols());
      // a bf16 incoming gradient (matmulBackwardLowPrecision's dA) is read as it is stored
      boolean gb = g.isBf16Only(), xb = x.isBf16Only();
      launch1d("k_gelu_bwd_" + (gb ? "b" : "f") + (xb ? "b" : "f") + "b", x.count(), out.bf16Ptr(), gb ? g.bf16Ptr() : g.ptr(),
          xb ? x.bf16Ptr() : x.ptr(), x.count());
      keep(g, x);
      return out;
    }
    CudaTensor out = alloc(x.rows(), x.cols());
    launch1d("k_gelu_bwd", x.count(), out.ptr(), g.ptr(), x.ptr(), x.count());
    keep(g, x);
    return out;
  }

  // ---- softmax ----

  @Override
  public Tensor softmax(Tensor xt) {
    CudaTensor x = c(xt), out = alloc(x.rows(), x.cols());
    if (x.count() > 0) dev.launch(fn("k_softmax"), x.rows(), 1, 1, THREADS, 1, 1, 0, out.ptr(), x.ptr(), x.cols());
    keep(x);
    return out;
  }

  @Override
  public Tensor softmaxBackward(Tensor doutt, Tensor yt) {
    sameShape(doutt, yt);
    CudaTensor g = c(doutt), y = c(yt), out = alloc(y.rows(), y.cols());
    if (y.count() > 0) dev.launch(fn("k_softmax_bwd"), y.rows(), 1, 1, THREADS, 1, 1, 0, out.ptr(), g.ptr(), y.ptr(), y.cols());
    keep(g, y);
    return out;
  }

  // ---- attention ----

  /** The backend-private {@code probs} of {@link #attention}: row log-sum-exp (B*H*T, 1) plus the output it belongs to. */
  static final class AttentionState extends CudaTensor {
    final CudaTensor out;
    final int batch, seq, heads;

    AttentionState(CudaDevice d, CudaTensor out, int batch, int seq, int heads) {
      super(d, batch * heads * seq, 1);
      this.out = out;
      this.batch = batch;
      this.seq = seq;
      this.heads = heads;
    }
  }

  private static final int TILE = 64;

  /** Shared memory of the attention kernels' tiles: two stages of two bf16 tiles of 64 tokens x (p + 8). */
  private static int attnTileBytes(int p) {
    return 2 * 2 * TILE * (p + 8) * 2;
  }

  private static int hdp(int hd) {
    return (hd + 15) / 16 * 16;
  }

  private long attnFn(int hd, String name) {
    if (hd > 128) throw new UnsupportedOperationException("CUDA attention supports head dimensions up to 128, not " + hd);
    return dev.function(ATTENTION, List.of("HD=" + hd), name);
  }

  @Override
  public Attention attention(Tensor qt, Tensor kt, Tensor vt, int batch, int seq, int heads) {
    TensorOps.checkAttention(qt, batch, seq, heads);
    sameShape(qt, kt);
    sameShape(qt, vt);
    CudaTensor q = c(qt), k = c(kt), v = c(vt);
    int cols = q.cols(), hd = cols / heads, p = hdp(hd);
    boolean lowp = bf16Activations();
    CudaTensor out = lowp ? allocBf16(q.rows(), cols) : alloc(q.rows(), cols);
    AttentionState state = scoped(new AttentionState(dev, out, batch, seq, heads));
    MaxLogitSlab slab;
    int slot;
    synchronized (this) {
      if (maxLogits == null || maxLogits.read || maxLogits.used + heads > maxLogits.capacity) maxLogits = new MaxLogitSlab(heads);
      slab = maxLogits;
      slot = slab.used;
      slab.used += heads;
    }
    long f = attnFn(hd, "k_attn_fwd");
    int smem = attnTileBytes(p);
    dev.allowSharedMemory(f, smem);
    if (batch > 0 && seq > 0) {
      dev.launch(f, (seq + TILE - 1) / TILE, batch * heads, 1, 128, 1, 1, smem, lowp ? out.bf16Ptr() : out.ptr(), lowp ? 1 : 0, state.ptr(),
          slab.bits.ptr() + 4L * slot, bf16(q), bf16(k), bf16(v), seq, heads, cols, (float) (1.0 / Math.sqrt(hd)));
    }
    keep(q, k, v, slab);
    return new Attention(out, state, new MaxLogitReader(slab, slot, heads));
  }

  /**
   * Device slots for the per-head max logits of consecutive attention calls (a step's layers): the forward
   * kernels atomically raise their slots, and the first read copies every used slot back at once, after which
   * new calls take a fresh slab. {@link #crossEntropy} reads the current slab right after its own copy back
   * (the stream is idle then), so a training step waits for the device once, not once per layer.
   */
  private final class MaxLogitSlab {
    final CudaTensor bits;
    final int capacity;
    int used; // guarded by CudaOps.this
    volatile boolean read;
    private int[] host;

    MaxLogitSlab(int heads) {
      capacity = Math.max(1024, heads);
      bits = new CudaTensor(dev, 1, capacity); // not in any scope: later calls and reads may outlive it
      dev.memsetAsync(bits.ptr(), 0, 4L * capacity); // 0 encodes "nothing recorded", -infinity
    }

    int[] values() {
      synchronized (CudaOps.this) {
        if (host == null) {
          read = true;
          host = dev.downloadInts(bits.ptr(), used);
        }
        return host;
      }
    }
  }

  /** One attention call's slice of a slab, decoded once. */
  private static final class MaxLogitReader implements java.util.function.Supplier<double[]> {
    private final MaxLogitSlab slab;
    private final int slot, heads;
    private volatile double[] values;

    MaxLogitReader(MaxLogitSlab slab, int slot, int heads) {
      this.slab = slab;
      this.slot = slot;
      this.heads = heads;
    }

    @Override
    public double[] get() {
      double[] v = values;
      if (v == null) {
        int[] enc = slab.values();
        v = new double[heads];
        for (int h = 0; h < heads; h++) v[h] = decode(enc[slot + h]);
        values = v;
      }
      return v;
    }
  }

  /** The slab attention calls write into now (guarded by this), or null. */
  private MaxLogitSlab maxLogits;

  /** Copies the current slab's maxima back if it has any: called right after a sync, when the copy costs no wait. */
  private void readMaxLogitsNow() {
    MaxLogitSlab s;
    synchronized (this) {
      s = maxLogits;
      if (s == null || s.read || s.used == 0) return;
    }
    s.values();
  }

  /** Inverse of the kernel's order-preserving float encoding; 0 (nothing recorded) is -infinity. */
  static double decode(int enc) {
    if (enc == 0) return Double.NEGATIVE_INFINITY;
    int bits = (enc & 0x80000000) != 0 ? enc & 0x7fffffff : ~enc;
    return Float.intBitsToFloat(bits);
  }

  @Override
  public Grad3 attentionBackward(Tensor doutt, Tensor qt, Tensor kt, Tensor vt, Tensor probs, int batch, int seq, int heads) {
    if (!(probs instanceof AttentionState st) || st.batch != batch || st.seq != seq || st.heads != heads) {
      throw new IllegalArgumentException("CUDA attentionBackward needs the probs state of this backend's attention for B="
          + batch + " T=" + seq + " H=" + heads + ", got " + probs);
    }
    CudaTensor g = c(doutt), q = c(qt), k = c(kt), v = c(vt);
    int cols = q.cols(), hd = cols / heads, p = hdp(hd), bt = batch * seq;
    if (bt == 0) return new Grad3(alloc(q.rows(), cols), alloc(q.rows(), cols), alloc(q.rows(), cols));
    boolean lowp = bf16Activations();
    CudaTensor dq = lowp ? allocBf16(q.rows(), cols) : alloc(q.rows(), cols);
    CudaTensor dk = lowp ? allocBf16(q.rows(), cols) : alloc(q.rows(), cols);
    CudaTensor dv = lowp ? allocBf16(q.rows(), cols) : alloc(q.rows(), cols);
    long dqp = lowp ? dq.bf16Ptr() : dq.ptr(), dkp = lowp ? dk.bf16Ptr() : dk.ptr(), dvp = lowp ? dv.bf16Ptr() : dv.ptr();
    int obf = lowp ? 1 : 0;
    DeviceMemory.Block d = scratch(4L * bt * heads);
    long nd = (long) bt * heads;
    dev.launch(attnFn(hd, "k_attn_D"), (int) ((nd + THREADS - 1) / THREADS), 1, 1, THREADS, 1, 1, 0, d.ptr, bf16(g), bf16(st.out),
        seq, heads, cols, bt);
    float scale = (float) (1.0 / Math.sqrt(hd));
    int tiles = (seq + TILE - 1) / TILE;
    long fkv = attnFn(hd, "k_attn_bwd_dkdv");
    int smemKv = attnTileBytes(p) + 2 * 2 * TILE * 4;
    dev.allowSharedMemory(fkv, smemKv);
    dev.launch(fkv, tiles, batch * heads, 1, 128, 1, 1, smemKv, dkp, dvp, obf, bf16(q), bf16(k), bf16(v), bf16(g), st.ptr(), d.ptr,
        seq, heads, cols, scale);
    long fq = attnFn(hd, "k_attn_bwd_dq");
    int smemQ = attnTileBytes(p);
    dev.allowSharedMemory(fq, smemQ);
    dev.launch(fq, tiles, batch * heads, 1, 128, 1, 1, smemQ, dqp, obf, bf16(q), bf16(k), bf16(v), bf16(g), st.ptr(), d.ptr, seq, heads,
        cols, scale);
    dev.memory.release(d);
    keep(g, q, k, v, st);
    return new Grad3(dq, dk, dv);
  }

  // ---- cross-entropy ----

  private DeviceMemory.Block floats(double[] x) {
    float[] f = new float[x.length];
    for (int i = 0; i < f.length; i++) f[i] = (float) x[i];
    DeviceMemory.Block b = scratch(4L * f.length);
    dev.upload(b.ptr, f);
    return b;
  }

  private static void checkTargets(int[] targets, int n, int vocab) {
    if (targets.length != n) throw new IllegalArgumentException("targets " + targets.length + " for " + n + " rows");
    for (int t : targets) if (t < 0 || t >= vocab) throw new IndexOutOfBoundsException("target " + t + " of " + vocab);
  }

  @Override
  public double[] crossEntropy(Tensor logitst, int[] targets, double[] mask) {
    CudaTensor x = c(logitst);
    int n = x.rows(), vocab = x.cols();
    checkTargets(targets, n, vocab);
    if (n == 0) return new double[0];
    DeviceMemory.Block tb = ints(targets), mb = floats(mask), nll = scratch(4L * n);
    CudaTensor lse = alloc(n, 1);
    dev.launch(fn("k_xent"), n, 1, 1, THREADS, 1, 1, 0, nll.ptr, lse.ptr(), x.ptr(), tb.ptr, mb.ptr, vocab);
    x.lse = lse;
    float[] f = dev.downloadFloats(nll.ptr, n);
    readMaxLogitsNow(); // the forward's attention maxima, while the stream is idle
    dev.memory.release(tb);
    dev.memory.release(mb);
    dev.memory.release(nll);
    keep(x);
    double[] out = new double[n];
    for (int i = 0; i < n; i++) out[i] = f[i];
    return out;
  }

  @Override
  public Tensor crossEntropyBackward(Tensor logitst, int[] targets, double[] dnll) {
    CudaTensor x = c(logitst);
    int n = x.rows(), vocab = x.cols();
    checkTargets(targets, n, vocab);
    if (n == 0) return alloc(n, vocab);
    boolean lowp = bf16Activations(); // the gradient is read only by the head's GEMMs
    CudaTensor out = lowp ? allocBf16(n, vocab) : alloc(n, vocab);
    DeviceMemory.Block tb = ints(targets), db = floats(dnll);
    CudaTensor lse = x.lse;
    if (lse != null && lse.isFreed()) lse = null; // freed by a scope: the kernel recomputes it
    dev.launch(fn(lowp ? "k_xent_bwd_bf" : "k_xent_bwd"), n, 1, 1, THREADS, 1, 1, 0, lowp ? out.bf16Ptr() : out.ptr(), x.ptr(), tb.ptr,
        db.ptr, lse == null ? 0L : lse.ptr(), vocab);
    dev.memory.release(tb);
    dev.memory.release(db);
    keep(x, lse);
    return out;
  }
}
