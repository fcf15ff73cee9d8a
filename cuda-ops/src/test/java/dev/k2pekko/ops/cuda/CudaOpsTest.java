package dev.k2pekko.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * The CUDA backend against the fp64 oracle, one dynamic test per check of {@link CudaChecks} (tolerances
 * there). Skipped, with the reason in the report, where CUDA or a device is missing. On a GPU host without
 * Maven the same checks run as {@code CudaSelfTest} (docs/CUDA.md).
 */
class CudaOpsTest {
  private static void assumeCuda() {
    String why = Cuda.unavailableReason();
    assumeTrue(why == null, () -> "no CUDA device: CUDA tests skipped (" + why + ")");
  }

  /** Stands in the report as one skipped test, with the reason, where there is no GPU. */
  @Test
  void deviceOpens() {
    assumeCuda();
    assertTrue(CudaDevice.get().smCount > 0);
  }

  @TestFactory
  Stream<DynamicTest> againstReference() {
    assumeCuda();
    return new CudaChecks(CudaDevice.get(), 1).runAll().stream()
        .map(r -> DynamicTest.dynamicTest(r.name(), () -> assertTrue(r.passed(), r.toString())));
  }
}
