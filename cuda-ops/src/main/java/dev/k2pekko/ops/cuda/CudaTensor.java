package dev.k2pekko.ops.cuda;

import dev.k2pekko.ops.Tensor;
import java.util.List;

/**
 * A row-major matrix in device memory, immutable once its producing op has been queued. Most tensors are fp32
 * (the master copy); because a tensor never changes, its bf16 copy (the GEMM operand) is made at most once and
 * kept with it, and the cross-entropy forward can leave its row log-sum-exp beside the logits for the backward.
 *
 * <p>A <em>bf16</em> tensor ({@link #bf16Only}) is stored only as bf16: the output of an op whose result is read
 * as a bf16 operand anyway (CudaOps with bf16 activations: RMSNorm, GELU, attention, the cross-entropy gradient,
 * {@code matmulLowPrecision}). Its fp32 form is made on first use by an fp32 op (one conversion, kept), and
 * {@link #toDoubles} converts on the host; its values are those of the bf16 copy. Its blocks return to the pool
 * when the tensor is unreachable.
 */
public class CudaTensor implements Tensor {
  final CudaDevice device;
  private final int rows, cols;
  /** fp32 storage; null for a bf16 tensor until an fp32 op needs it. */
  private volatile DeviceMemory.Block block;
  private DeviceMemory.Block bf16;
  /** Row log-sum-exp from crossEntropy (NaN on masked rows), or null. */
  volatile CudaTensor lse;
  /** Set once the tensor's memory went back to the pool early (a closed scope); any later use fails. */
  private volatile boolean freed;

  CudaTensor(CudaDevice device, int rows, int cols) {
    this.device = device;
    this.rows = rows;
    this.cols = cols;
    this.block = device.memory.allocate(4L * rows * cols, this);
  }

  private CudaTensor(CudaDevice device, int rows, int cols, boolean bf16Only) {
    this.device = device;
    this.rows = rows;
    this.cols = cols;
    this.bf16 = device.memory.allocate(2L * rows * cols, this);
  }

  /** A tensor stored only as bf16, to be written through {@link #bf16Ptr()}. */
  static CudaTensor bf16Only(CudaDevice device, int rows, int cols) {
    return new CudaTensor(device, rows, cols, true);
  }

  /** The fp32 data; for a bf16 tensor, converted on first use (queued on the stream) and kept. */
  long ptr() {
    if (freed) throw new IllegalStateException("CudaTensor" + shapeString() + " used after its scope freed it");
    DeviceMemory.Block b = block;
    return b != null ? b.ptr : materialize();
  }

  private synchronized long materialize() {
    if (freed) throw new IllegalStateException("CudaTensor" + shapeString() + " used after its scope freed it");
    if (block == null) {
      long n = count();
      DeviceMemory.Block b = device.memory.take(4L * n);
      if (n > 0) {
        long f = device.function("ops.cu", List.of(), "k_bf16_to_f32");
        int blocks = (int) Math.max(1, Math.min((n + 255) / 256, device.smCount * 16L));
        device.launch(f, blocks, 1, 1, 256, 1, 1, 0, b.ptr, bf16.ptr, n);
      }
      device.memory.attach(this, b);
      block = b;
    }
    return block.ptr;
  }

  /** Whether this tensor is stored only as bf16 (no fp32 form made yet). */
  boolean isBf16Only() {
    return block == null;
  }

  /** The bf16 storage of a tensor made by {@link #bf16Only}, or its bf16 copy if one was made. */
  synchronized long bf16Ptr() {
    if (freed) throw new IllegalStateException("CudaTensor" + shapeString() + " used after its scope freed it");
    if (bf16 == null) throw new IllegalStateException("CudaTensor" + shapeString() + " has no bf16 form");
    return bf16.ptr;
  }

  boolean isFreed() {
    return freed;
  }

  /** Returns this tensor's blocks (fp32 and bf16) to the pool now; it must not be used again. */
  synchronized void free() {
    if (freed) return;
    freed = true;
    if (block != null) device.memory.free(block);
    if (bf16 != null) device.memory.free(bf16);
  }

  long count() {
    return (long) rows * cols;
  }

  /** The bf16 copy, made on first use by the given conversion (a bf16 tensor's own storage). */
  synchronized long bf16(java.util.function.LongConsumer convertInto) {
    if (freed) throw new IllegalStateException("CudaTensor" + shapeString() + " used after its scope freed it");
    if (bf16 == null) {
      DeviceMemory.Block b = device.memory.take(2L * rows * cols);
      convertInto.accept(b.ptr);
      device.memory.attach(this, b);
      bf16 = b;
    }
    return bf16.ptr;
  }

  @Override
  public int rows() {
    return rows;
  }

  @Override
  public int cols() {
    return cols;
  }

  @Override
  public double[] toDoubles() {
    float[] f = toFloats();
    double[] d = new double[f.length];
    for (int i = 0; i < f.length; i++) d[i] = f[i];
    return d;
  }

  public float[] toFloats() {
    if (isBf16Only()) {
      short[] h = device.downloadShorts(bf16Ptr(), rows * cols);
      float[] f = new float[h.length];
      for (int i = 0; i < h.length; i++) f[i] = Float.intBitsToFloat((h[i] & 0xffff) << 16);
      return f;
    }
    return device.downloadFloats(ptr(), rows * cols);
  }

  @Override
  public String toString() {
    return "CudaTensor" + shapeString() + (isBf16Only() ? " bf16" : "");
  }
}
