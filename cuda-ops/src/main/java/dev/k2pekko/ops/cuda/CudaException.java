package dev.k2pekko.ops.cuda;

/** A failed CUDA, cuBLAS or NVRTC call, or CUDA missing on this machine. */
public final class CudaException extends RuntimeException {
  public CudaException(String message) {
    super(message);
  }
}
