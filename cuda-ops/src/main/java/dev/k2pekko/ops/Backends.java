package dev.k2pekko.ops;

import dev.k2pekko.ops.cuda.CudaException;
import dev.k2pekko.ops.cuda.CudaOps;
import java.util.List;

/**
 * Picks a {@link TensorOps} backend by name, for {@code --backend}:
 * <ul>
 *   <li>{@code cuda}: {@link CudaOps} on GPU 0 (bf16 tensor-core matmuls, fp32 master tensors); fails with
 *       the reason when CUDA's libraries or a device are missing;</li>
 *   <li>{@code nd4j}: {@link Nd4jOps}, fp32 on the CPU through ND4J's native backend (needs its natives on the
 *       class path, which {@code k2 bundle} leaves out);</li>
 *   <li>{@code java}: {@link ReferenceOps}, the plain-Java fp64 oracle, with no native code at all;</li>
 *   <li>{@code auto}: {@code cuda} where a device is present and the libraries load, else {@code java}.
 *       Not {@code nd4j}: java needs no natives (so it also works in a bundle), and on small policies it is the
 *       faster CPU backend (docs/MODEL.md); ask for nd4j by name for large CPU matrices.</li>
 * </ul>
 * Backends are made on each call; {@link CudaOps} instances share the one device and its memory pool.
 */
public final class Backends {
  public static final List<String> NAMES = List.of("cuda", "nd4j", "java", "auto");

  private Backends() {}

  public static TensorOps select(String name) {
    String n = name == null ? "auto" : name.trim().toLowerCase(java.util.Locale.ROOT);
    return switch (n) {
      case "cuda" -> cuda();
      case "nd4j" -> new Nd4jOps();
      case "java" -> ReferenceOps.INSTANCE;
      case "auto" -> cudaAvailable() ? cuda() : ReferenceOps.INSTANCE;
      default -> throw new IllegalArgumentException("unknown backend '" + name + "': expected one of " + String.join(", ", NAMES));
    };
  }

  /** True when CUDA's libraries load and report at least one device. */
  public static boolean cudaAvailable() {
    return dev.k2pekko.ops.cuda.Cuda.unavailableReason() == null;
  }

  private static TensorOps cuda() {
    String why = dev.k2pekko.ops.cuda.Cuda.unavailableReason();
    if (why != null) throw new CudaException("--backend cuda: " + why);
    return new CudaOps();
  }
}
