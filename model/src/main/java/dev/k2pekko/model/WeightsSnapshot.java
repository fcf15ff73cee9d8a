package dev.k2pekko.model;

import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One published version of the policy's weights, as fp32 arrays in spec order, with the SHA-256 of their
 * little-endian bytes (names and shapes included). Receivers call {@link #verify()} before they swap: a weight
 * sync that arrives damaged is refused, never used.
 */
public record WeightsSnapshot(long version, ModelConfig config, List<String> names, List<float[]> data, String sha256) {

  /** The snapshot of a model's current weights (rounded to fp32) as {@code version}. */
  public static WeightsSnapshot of(long version, PolicyModel model) {
    var names = new ArrayList<String>();
    var data = new ArrayList<float[]>();
    for (var e : model.parameters().entrySet()) {
      names.add(e.getKey());
      data.add(toFloats(e.getValue()));
    }
    return of(version, model.config(), names, data);
  }

  public static WeightsSnapshot of(long version, ModelConfig config, List<String> names, List<float[]> data) {
    return new WeightsSnapshot(version, config, List.copyOf(names), List.copyOf(data), digest(version, config, names, data));
  }

  public static float[] toFloats(Tensor t) {
    double[] d = t.toDoubles();
    float[] f = new float[d.length];
    for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
    return f;
  }

  /** Throws if the checksum does not match the contents, or a tensor has the wrong size for the config. */
  public WeightsSnapshot verify() {
    var specs = PolicyModel.specsOf(config);
    if (specs.size() != names.size()) throw new CorruptWeightsException("version " + version + ": " + names.size() + " tensors, config needs " + specs.size());
    for (int i = 0; i < specs.size(); i++) {
      if (!specs.get(i).name().equals(names.get(i)) || specs.get(i).size() != data.get(i).length) {
        throw new CorruptWeightsException("version " + version + ": tensor " + i + " is " + names.get(i) + "[" + data.get(i).length + "], expected "
            + specs.get(i).name() + "[" + specs.get(i).size() + "]");
      }
    }
    String got = digest(version, config, names, data);
    if (!got.equals(sha256)) throw new CorruptWeightsException("version " + version + ": checksum " + got + " != published " + sha256);
    return this;
  }

  /** A model with these weights on {@code ops} (after {@link #verify()}). */
  public PolicyModel toModel(TensorOps ops) {
    var weights = new LinkedHashMap<String, Tensor>();
    var specs = PolicyModel.specsOf(config);
    for (int i = 0; i < names.size(); i++) {
      float[] f = data.get(i);
      double[] d = new double[f.length];
      for (int j = 0; j < f.length; j++) d[j] = f[j];
      weights.put(names.get(i), ops.tensor(specs.get(i).rows(), specs.get(i).cols(), d));
    }
    return new PolicyModel(config, ops, weights);
  }

  public Map<String, float[]> asMap() {
    var m = new LinkedHashMap<String, float[]>();
    for (int i = 0; i < names.size(); i++) m.put(names.get(i), data.get(i));
    return m;
  }

  static String digest(long version, ModelConfig config, List<String> names, List<float[]> data) {
    try {
      var md = MessageDigest.getInstance("SHA-256");
      md.update((version + "|" + config + "|").getBytes(java.nio.charset.StandardCharsets.UTF_8));
      for (int i = 0; i < names.size(); i++) {
        md.update((names.get(i) + ":" + data.get(i).length + "|").getBytes(java.nio.charset.StandardCharsets.UTF_8));
        var buf = ByteBuffer.allocate(data.get(i).length * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(data.get(i));
        md.update(buf.array());
      }
      return HexFormat.of().formatHex(md.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A weights message whose contents do not match its checksum or its config. */
  public static final class CorruptWeightsException extends RuntimeException {
    public CorruptWeightsException(String message) { super(message); }
  }
}
