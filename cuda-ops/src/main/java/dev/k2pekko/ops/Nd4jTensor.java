package dev.k2pekko.ops;

import org.nd4j.linalg.api.ndarray.INDArray;

/** An fp32 ND4J matrix; only {@link Nd4jOps} sees the array inside. */
final class Nd4jTensor implements Tensor {
  private final INDArray array;

  Nd4jTensor(INDArray array) {
    if (array.rank() != 2) throw new IllegalArgumentException("rank " + array.rank());
    this.array = array;
  }

  INDArray array() {
    return array;
  }

  @Override
  public int rows() {
    return (int) array.rows();
  }

  @Override
  public int cols() {
    return (int) array.columns();
  }

  @Override
  public double[] toDoubles() {
    float[] f = array.dup('c').data().asFloat();
    double[] d = new double[f.length];
    for (int i = 0; i < f.length; i++) d[i] = f[i];
    return d;
  }

  @Override
  public String toString() {
    return "Nd4jTensor" + shapeString();
  }
}
