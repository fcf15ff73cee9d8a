package dev.k2pekko.ops.cuda;

/**
 * The CUDA op tests as a plain program, for GPU hosts without Maven:
 * {@code java --enable-native-access=ALL-UNNAMED -cp cuda-ops.jar dev.k2pekko.ops.cuda.CudaSelfTest [seed]}
 * (or {@code bundle/bin/k2 cuda-selftest}). Prints one line per check and exits 1 if any fails,
 * 2 if CUDA is unavailable.
 */
public final class CudaSelfTest {
  private CudaSelfTest() {}

  public static void main(String[] args) {
    String why = Cuda.unavailableReason();
    if (why != null) {
      System.out.println("CUDA self-test not run: " + why);
      System.exit(2);
    }
    long seed = args.length > 0 ? Long.parseLong(args[0]) : 1;
    CudaDevice d = CudaDevice.get();
    System.out.println("device " + d.name() + " (" + d.arch() + ", " + d.smCount + " SMs), " + d.versions());
    long t0 = System.nanoTime();
    var results = new CudaChecks(d, seed).runAll();
    int failed = 0;
    for (var r : results) {
      System.out.println(r);
      if (!r.passed()) failed++;
    }
    System.out.printf(java.util.Locale.ROOT, "%d checks, %d failed, %.1f s (NVRTC compile %.0f ms); pool: %s%n", results.size(), failed,
        (System.nanoTime() - t0) / 1e9, d.compileMs, d.memory.stats());
    System.exit(failed == 0 ? 0 : 1);
  }
}
