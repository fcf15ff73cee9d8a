package dev.k2pekko.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.ops.cuda.CudaException;
import dev.k2pekko.ops.cuda.CudaOps;
import org.junit.jupiter.api.Test;

class BackendsTest {
  @Test
  void namesSelectTheirBackends() {
    assertSame(ReferenceOps.INSTANCE, Backends.select("java"));
    assertSame(ReferenceOps.INSTANCE, Backends.select(" JAVA "));
    assertInstanceOf(Nd4jOps.class, Backends.select("nd4j"));
  }

  @Test
  void autoIsCudaWhereADeviceIsPresentElseJava() {
    TensorOps auto = Backends.select("auto");
    if (Backends.cudaAvailable()) assertInstanceOf(CudaOps.class, auto);
    else assertSame(ReferenceOps.INSTANCE, auto);
  }

  @Test
  void cudaWithoutADeviceSaysWhy() {
    if (Backends.cudaAvailable()) return; // covered by CudaOpsTest there
    var e = assertThrows(CudaException.class, () -> Backends.select("cuda"));
    assertTrue(e.getMessage().startsWith("--backend cuda: "), e.getMessage());
  }

  @Test
  void unknownNameListsTheChoices() {
    var e = assertThrows(IllegalArgumentException.class, () -> Backends.select("tpu"));
    assertEquals("unknown backend 'tpu': expected one of cuda, nd4j, java, auto", e.getMessage());
  }
}
