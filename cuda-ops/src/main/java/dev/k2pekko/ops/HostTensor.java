package dev.k2pekko.ops;

import java.util.Arrays;

/** A row-major fp64 matrix on the Java heap, the tensor of {@link ReferenceOps}. */
public record HostTensor(int rows, int cols, double[] data) implements Tensor {
  public HostTensor {
    if (data.length != rows * cols) {
      throw new IllegalArgumentException("data length " + data.length + " != " + rows + "*" + cols);
    }
  }

  public static HostTensor of(Tensor t) {
    return t instanceof HostTensor h ? h : new HostTensor(t.rows(), t.cols(), t.toDoubles());
  }

  public double get(int r, int c) {
    return data[r * cols + c];
  }

  @Override
  public double[] toDoubles() {
    return data.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof HostTensor h && h.rows == rows && h.cols == cols && Arrays.equals(h.data, data);
  }

  @Override
  public int hashCode() {
    return 31 * (31 * rows + cols) + Arrays.hashCode(data);
  }

  @Override
  public String toString() {
    return "HostTensor" + shapeString();
  }
}
