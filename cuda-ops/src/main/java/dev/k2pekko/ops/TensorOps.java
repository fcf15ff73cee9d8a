package dev.k2pekko.ops;

/**
 * The operations a decoder-only transformer and its optimizers need, forward and backward side by
 * side. Shapes are written as (rows, cols); N = B*T tokens, C = model width, V = vocabulary, H = heads.
 * Ops are pure: they never modify their inputs and always return new tensors.
 */
public interface TensorOps {
  String name();

  // ---- temporaries ----

  /**
   * Opens a scope for the calling thread: when it closes, the backend may free at once every tensor that ops
   * created on this thread while it was open, except those passed to {@link Scope#keep} (which then belong to
   * the enclosing scope, if any). Such a tensor must not be used after the close. Backends whose memory is the
   * JVM's (ReferenceOps, ND4J) do nothing; CudaOps returns the device memory to its pool without waiting for a
   * collection. Scopes nest and close in reverse order (try-with-resources).
   */
  default Scope scope() {
    return Scope.NONE;
  }

  /**
   * Declares that nobody uses t again: a backend whose memory is not the JVM's (CudaOps) returns it to its pool now,
   * not when t becomes unreachable (for state that one owner replaces every step, e.g. MuonClip's optimizer state);
   * the others do nothing. A released tensor fails on use, as one freed by a scope.
   */
  default void release(Tensor t) {}

  /** See {@link TensorOps#scope()}. */
  interface Scope extends AutoCloseable {
    Scope NONE = new Scope() {
      @Override
      public void keep(Tensor t) {}

      @Override
      public void close() {}
    };

    /** t survives this scope's close. */
    void keep(Tensor t);

    default void keepAll(Iterable<? extends Tensor> ts) {
      for (Tensor t : ts) keep(t);
    }

    @Override
    void close();
  }

  // ---- creation and transfer ----

  /** data (rows*cols) row-major, copied. */
  Tensor tensor(int rows, int cols, double[] data);

  Tensor zeros(int rows, int cols);

  // ---- matmul ----

  /** out (M,N) = op(a) (M,K) . op(b) (K,N), where op(x) = x^T when the flag is set. */
  Tensor matmul(Tensor a, boolean transA, Tensor b, boolean transB);

  /**
   * {@link #matmul} whose result the caller passes only to ops that read their inputs at the backend's operand
   * precision anyway (attention, GELU): a backend may store it at that precision (CudaOps with bf16 activations:
   * bf16, as PyTorch's autocast does). The default is matmul.
   */
  default Tensor matmulLowPrecision(Tensor a, boolean transA, Tensor b, boolean transB) {
    return matmul(a, transA, b, transB);
  }

  /** dout (M,N) -> dA with a's shape, dB with b's shape. */
  default Grad2 matmulBackward(Tensor dout, Tensor a, boolean transA, Tensor b, boolean transB) {
    // out = A.B: dA = dout.B^T, dB = A^T.dout; a transposed operand swaps the roles of the factors.
    Tensor da = transA ? matmul(b, transB, dout, true) : matmul(dout, false, b, !transB);
    Tensor db = transB ? matmul(dout, true, a, transA) : matmul(a, !transA, dout, false);
    return new Grad2(da, db);
  }

  /**
   * {@link #matmulBackward} whose dA the caller passes only to ops that read it at the backend's operand precision
   * (attention's backward, GELU's backward): a backend may store dA at that precision, as {@link #matmulLowPrecision}
   * does (CudaOps with bf16 activations: bf16, as PyTorch's autocast does). dB is as in matmulBackward.
   */
  default Grad2 matmulBackwardLowPrecision(Tensor dout, Tensor a, boolean transA, Tensor b, boolean transB) {
    Tensor da = transA ? matmulLowPrecision(b, transB, dout, true) : matmulLowPrecision(dout, false, b, !transB);
    Tensor db = transB ? matmul(dout, true, a, transA) : matmul(a, !transA, dout, false);
    return new Grad2(da, db);
  }

  /**
   * out (M,N) = sum over i of op(as[i]) (M,K_i) . op(bs[i]) (K_i,N): the input gradient of several projections of
   * one input (q, k and v). A backend may accumulate in one output (CudaOps: one GEMM per term with beta = 1). The
   * default adds the products left to right.
   */
  default Tensor matmulSum(java.util.List<? extends Tensor> as, boolean transA, java.util.List<? extends Tensor> bs, boolean transB) {
    if (as.isEmpty() || as.size() != bs.size()) throw new IllegalArgumentException("matmulSum: " + as.size() + " and " + bs.size() + " factors");
    Tensor out = matmul(as.get(0), transA, bs.get(0), transB);
    for (int i = 1; i < as.size(); i++) out = add(out, matmul(as.get(i), transA, bs.get(i), transB));
    return out;
  }

  // ---- elementwise, shapes equal ----

  /** out = alpha*a + beta*b, a and b (R,C). Residual add is linear(1, a, 1, b). */
  Tensor linear(double alpha, Tensor a, double beta, Tensor b);

  default Tensor add(Tensor a, Tensor b) {
    return linear(1.0, a, 1.0, b);
  }

  /** out = s*a. */
  Tensor scale(Tensor a, double s);

  /** out = a (R,C) * b (R,C) elementwise. */
  Tensor hadamard(Tensor a, Tensor b);

  /** out (C,R) = a^T, a (R,C). */
  Tensor transpose(Tensor a);

  /** a copy of a (R,C) whose rows [from, to) are multiplied by factor. */
  Tensor scaleRows(Tensor a, int from, int to, double factor);

  /** Adam's direction (m/bc1) / (sqrt(v/bc2) + eps), m and v (R,C). */
  Tensor adamDirection(Tensor m, Tensor v, double bc1, double bc2, double eps);

  // ---- reductions ----

  double sum(Tensor a);

  double sumOfSquares(Tensor a);

  /** out (1,C) = sum over rows of a (R,C). */
  Tensor sumRows(Tensor a);

  // ---- embedding ----

  /** out (N,C) = table[ids[n]], table (V,C), ids (N). */
  Tensor embedding(Tensor table, int[] ids);

  /** dtable (V,C) accumulates dout (N,C) rows at ids (N). */
  Tensor embeddingBackward(Tensor dout, int[] ids, int vocab);

  // ---- RMSNorm ----

  /** out (N,C) = x / rms(x) * w, x (N,C), w (1,C); also keeps rstd (N,1) = 1/sqrt(mean(x^2)+eps). */
  Norm rmsnorm(Tensor x, Tensor w, double eps);

  /** dout (N,C), x (N,C), w (1,C), rstd (N,1) -> dx (N,C), dw (1,C). */
  Grad2 rmsnormBackward(Tensor dout, Tensor x, Tensor w, Tensor rstd);

  /**
   * {@link #rmsnormBackward} with a residual gradient added to dx: dx = residual + dnorm (the pre-norm block's
   * x + f(norm(x))), dw as there. A backend may fuse the add (CudaOps: in the same kernel). The default adds.
   */
  default Grad2 rmsnormBackwardAdd(Tensor dout, Tensor x, Tensor w, Tensor rstd, Tensor residual) {
    Grad2 g = rmsnormBackward(dout, x, w, rstd);
    return new Grad2(add(residual, g.first()), g.second());
  }

  // ---- GELU (tanh approximation) ----

  /** out (R,C) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
  Tensor gelu(Tensor x);

  /** dout (R,C), x (R,C) -> dx (R,C). */
  Tensor geluBackward(Tensor dout, Tensor x);

  // ---- softmax over each row ----

  /** out (R,C) = softmax of each row of x (R,C). */
  Tensor softmax(Tensor x);

  /** dout (R,C), y = softmax(x) (R,C) -> dx (R,C). */
  Tensor softmaxBackward(Tensor dout, Tensor y);

  // ---- causal multi-head attention ----

  /** The shape check every backend's attention makes: q is (B*T, C) with C divisible by H. */
  static void checkAttention(Tensor q, int batch, int seq, int heads) {
    if (q.rows() != batch * seq || q.cols() % heads != 0) {
      throw new IllegalArgumentException("attention: q " + q.shapeString() + " for B=" + batch + " T=" + seq + " H=" + heads);
    }
  }

  /**
   * q, k, v (B*T, C) with C = H*D -> out (B*T, C), probs (B*H*T, T) (row (b,h,i) holds softmax over
   * j <= i, zeros above the diagonal), maxLogit (H) = max over b and causal (i, j <= i) of q_i.k_j/sqrt(D),
   * the signed maximum the K2 report uses for QK-Clip.
   */
  Attention attention(Tensor q, Tensor k, Tensor v, int batch, int seq, int heads);

  /** dout (B*T, C), q, k, v (B*T, C), probs (B*H*T, T) -> dq, dk, dv (B*T, C). */
  Grad3 attentionBackward(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor probs, int batch, int seq, int heads);

  // ---- cross-entropy ----

  /**
   * logits (N,V), targets (N), mask (N) -> nll (N) = -log softmax(logits[n])[targets[n]] where mask[n] != 0,
   * else 0 (masked rows are not computed). The caller combines rows into a loss.
   */
  double[] crossEntropy(Tensor logits, int[] targets, double[] mask);

  /** dnll (N) = dLoss/dnll[n] -> dlogits (N,V) = dnll[n] * (softmax(logits[n]) - onehot(targets[n])). */
  Tensor crossEntropyBackward(Tensor logits, int[] targets, double[] dnll);

  // ---- results ----

  record Grad2(Tensor first, Tensor second) {}

  record Grad3(Tensor first, Tensor second, Tensor third) {}

  record Norm(Tensor out, Tensor rstd) {}

  /**
   * The result of {@link #attention}. The per-head max logit is read through {@link #maxLogit()}, which a backend
   * may resolve lazily: CudaOps keeps the maxima of a step's layers on the device and reads them all back with
   * one copy (at the cross-entropy's sync, or at the first {@code maxLogit()} call, which then waits for the
   * device), so that a forward pass never waits for the GPU per layer. The CPU backends pass the array itself.
   */
  record Attention(Tensor out, Tensor probs, java.util.function.Supplier<double[]> maxLogitSource) {
    public Attention(Tensor out, Tensor probs, double[] maxLogit) {
      this(out, probs, () -> maxLogit);
    }

    /** maxLogit (H), as described at {@link TensorOps#attention}; the same array on every call. */
    public double[] maxLogit() {
      return maxLogitSource.get();
    }
  }
}
