package dev.k2pekko.ops;

/**
 * A dense row-major matrix owned by one {@link TensorOps} backend. Every tensor is 2-D: a batch of
 * sequences (B,T,C) is the matrix (B*T, C), a vector of length n is (1, n). The interface names no
 * backend type, so a CUDA backend can hand out device tensors behind it.
 */
public interface Tensor {
  int rows();

  int cols();

  /** A copy of the contents as fp64, row-major. */
  double[] toDoubles();

  default int size() {
    return rows() * cols();
  }

  default String shapeString() {
    return "(" + rows() + "," + cols() + ")";
  }
}
