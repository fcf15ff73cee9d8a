package dev.k2pekko.ops.cuda;

import dev.k2pekko.ops.Tensor;

/**
 * An fp32 row-major matrix in device memory, immutable once its producing op has been queued. Because it
 * never changes, its bf16 copy (the GEMM operand) is made at most once and kept with it, and the
 * cross-entropy forward can leave its row log-sum-exp beside the logits for the backward. Its blocks
 * return to the pool when the tensor is unreachable.
 */
public class CudaTensor implements Tensor {
  final CudaDevice device;
  private final int rows, cols;
  final DeviceMemory.Block block;
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

  long ptr() {
    if (freed) throw new IllegalStateException("CudaTensor" + shapeString() + " used after its scope freed it");
    return block.ptr;
  }

  boolean isFreed() {
    return freed;
  }

  /** Returns this tensor's blocks (and its bf16 copy's) to the pool now; it must not be used again. */
  synchronized void free() {
    if (freed) return;
    freed = true;
    device.memory.free(block);
    if (bf16 != null) device.memory.free(bf16);
  }

  long count() {
    return (long) rows * cols;
  }

  /** The bf16 copy, made on first use by the given conversion. */
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
    float[] f = device.downloadFloats(ptr(), rows * cols);
    double[] d = new double[f.length];
    for (int i = 0; i < f.length; i++) d[i] = f[i];
    return d;
  }

  public float[] toFloats() {
    return device.downloadFloats(ptr(), rows * cols);
  }

  @Override
  public String toString() {
    return "CudaTensor" + shapeString();
  }
}
