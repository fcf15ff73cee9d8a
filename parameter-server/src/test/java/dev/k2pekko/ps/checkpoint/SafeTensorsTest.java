package dev.k2pekko.ps.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import dev.k2pekko.ops.HostTensor;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsTest {
  final ReferenceOps ops = ReferenceOps.INSTANCE;
  @TempDir Path dir;

  static byte[] bytes(Map<String, ? extends Tensor> tensors, Map<String, String> meta, DType dtype) throws IOException {
    var out = new ByteArrayOutputStream();
    long n = SafeTensors.write(out, tensors, meta, dtype);
    assertEquals(out.size(), n);
    return out.toByteArray();
  }

  Path file(byte[] content) throws IOException {
    return Files.write(Files.createTempFile(dir, "t", ".safetensors"), content);
  }

  /** A file with this exact header text and dataBytes zero bytes after it. */
  Path handMade(String header, int dataBytes) throws IOException {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    var b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h);
    return file(b.array());
  }

  static byte[] concat(byte[]... parts) {
    var out = new ByteArrayOutputStream();
    for (byte[] p : parts) out.writeBytes(p);
    return out.toByteArray();
  }

  static byte[] hex(int... b) {
    byte[] out = new byte[b.length];
    for (int i = 0; i < b.length; i++) out[i] = (byte) b[i];
    return out;
  }

  @Test
  void headerLayoutByteByByte() throws IOException {
    byte[] actual = bytes(Map.of("test", new HostTensor(2, 2, new double[] {1, 2, 3, 4})), Map.of(), DType.F32);
    String json = "{\"test\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}"; // 60 bytes
    byte[] expected = concat(
        hex(64, 0, 0, 0, 0, 0, 0, 0), // N = 64 as u64 little-endian: 60 bytes of JSON padded to a multiple of 8
        (json + "    ").getBytes(StandardCharsets.US_ASCII),
        hex(0x00, 0x00, 0x80, 0x3f), // 1.0f = 0x3f800000, little-endian
        hex(0x00, 0x00, 0x00, 0x40), // 2.0f = 0x40000000
        hex(0x00, 0x00, 0x40, 0x40), // 3.0f = 0x40400000
        hex(0x00, 0x00, 0x80, 0x40)); // 4.0f = 0x40800000
    assertEquals(60, json.length());
    assertArrayEquals(expected, actual);
  }

  @Test
  void metadataComesFirstAndDataFollowsNameOrder() throws IOException {
    var t = new LinkedHashMap<String, Tensor>();
    t.put("b", new HostTensor(1, 1, new double[] {-2}));
    t.put("a", new HostTensor(1, 2, new double[] {0.5, 8}));
    byte[] actual = bytes(t, Map.of("k", "v"), DType.F32);
    String json = "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
        + "\"b\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[8,12]}}";
    int padded = (json.length() + 7) / 8 * 8;
    byte[] expected = concat(
        hex(padded, 0, 0, 0, 0, 0, 0, 0),
        (json + " ".repeat(padded - json.length())).getBytes(StandardCharsets.US_ASCII),
        hex(0, 0, 0, 0x3f), hex(0, 0, 0, 0x41), // a: 0.5f = 0x3f000000, 8.0f = 0x41000000
        hex(0, 0, 0, 0xc0)); // b: -2.0f = 0xc0000000
    assertArrayEquals(expected, actual);
    // the bytes do not depend on the order of the map
    var reversed = new LinkedHashMap<String, Tensor>();
    reversed.put("a", t.get("a"));
    reversed.put("b", t.get("b"));
    assertArrayEquals(actual, bytes(reversed, Map.of("k", "v"), DType.F32));
  }

  @Test
  void readsTheSerializationExampleOfTheReferenceTests() throws IOException {
    // the I32 example of the reference implementation's Python tests: zeros((2,2)) with [1,1] = 1, header unpadded (N = 60)
    byte[] header = "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}".getBytes(StandardCharsets.US_ASCII);
    byte[] file = concat(hex('<', 0, 0, 0, 0, 0, 0, 0), header, new byte[12], hex(1, 0, 0, 0));
    var c = SafeTensors.read(file(file), ops);
    assertEquals(Map.of(), c.metadata());
    assertEquals(new HostTensor(2, 2, new double[] {0, 0, 0, 1}), c.tensors().get("test"));
    // and the one with metadata, padded with 7 spaces to N = 102 (not a multiple of 8: padding is optional)
    byte[] h2 = ("{\"__metadata__\":{\"framework\":\"pt\"},\"test1\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}"
        + "       ").getBytes(StandardCharsets.US_ASCII);
    var c2 = SafeTensors.read(file(concat(hex('f', 0, 0, 0, 0, 0, 0, 0), h2, new byte[16])), ops);
    assertEquals(Map.of("framework", "pt"), c2.metadata());
    assertEquals(new HostTensor(2, 2, new double[4]), c2.tensors().get("test1"));
  }

  @Test
  void f32RoundTripIsBitExact() throws IOException {
    var rnd = new Random(7);
    double[] v = new double[3 * 70_000]; // more than one write/read chunk
    for (int i = 0; i < v.length; i++) v[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(60) - 30));
    double[] special = {0.0, -0.0, Float.MIN_VALUE, -Float.MIN_NORMAL, Float.MAX_VALUE, Double.POSITIVE_INFINITY, Double.NaN};
    System.arraycopy(special, 0, v, 0, special.length);
    var t = Map.of("w", new HostTensor(3, 70_000, v), "empty", new HostTensor(0, 4, new double[0]));
    var c = SafeTensors.read(file(bytes(t, Map.of(), DType.F32)), ops);
    Tensor back = c.tensors().get("w");
    assertEquals(3, back.rows());
    assertEquals(70_000, back.cols());
    double[] b = back.toDoubles();
    for (int i = 0; i < v.length; i++) assertEquals(Float.floatToRawIntBits((float) v[i]), Float.floatToRawIntBits((float) b[i]), "element " + i);
    for (int i = 0; i < v.length; i++) assertEquals(Double.doubleToLongBits(v[i]), Double.doubleToLongBits(b[i]), "element " + i);
    assertEquals(0, c.tensors().get("empty").rows());
    assertEquals(4, c.tensors().get("empty").cols());
  }

  @Test
  void f32RoundsDoublesAndF64KeepsThem() throws IOException {
    double x = 0.1; // not a float
    var t = Map.of("x", new HostTensor(1, 1, new double[] {x}));
    assertEquals((double) (float) x, SafeTensors.read(file(bytes(t, Map.of(), DType.F32)), ops).tensors().get("x").toDoubles()[0]);
    assertNotEquals(x, (double) (float) x);
    assertEquals(x, SafeTensors.read(file(bytes(t, Map.of(), DType.F64)), ops).tensors().get("x").toDoubles()[0]);
  }

  @Test
  void readsBf16F16AndShapesOfOtherRanks() throws IOException {
    String h = "{\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},"
        + "\"h\":{\"dtype\":\"F16\",\"shape\":[2,1,2],\"data_offsets\":[6,14]},"
        + "\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[14,22]}}";
    byte[] header = h.getBytes(StandardCharsets.US_ASCII);
    byte[] data = concat(
        hex(0x80, 0x3f, 0x20, 0xc0, 0x00, 0x00), // bf16 1.0 = 0x3f80, -2.5 = 0xc020, 0
        hex(0x00, 0x3c, 0x00, 0x38, 0x00, 0xc0, 0x00, 0x7c), // f16 1.0 = 0x3c00, 0.5 = 0x3800, -2.0 = 0xc000, +inf = 0x7c00
        ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putDouble(Math.PI).array());
    var len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).array();
    var c = SafeTensors.read(file(concat(len, header, data)), ops);
    assertEquals(new HostTensor(1, 3, new double[] {1, -2.5, 0}), c.tensors().get("b"));
    assertEquals(new HostTensor(2, 2, new double[] {1, 0.5, -2, Double.POSITIVE_INFINITY}), c.tensors().get("h"));
    assertEquals(new HostTensor(1, 1, new double[] {Math.PI}), c.tensors().get("s"));
  }

  String reasonOf(Path p) {
    var e = assertThrows(CorruptCheckpointException.class, () -> SafeTensors.read(p, ops));
    assertEquals(p, e.path());
    assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
    return e.reason();
  }

  static void assertContains(String expected, String actual) {
    assertTrue(actual.contains(expected), "expected '" + expected + "' in: " + actual);
  }

  @Test
  void eachCorruptionIsNamed() throws IOException {
    String ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}";
    assertEquals(2, SafeTensors.read(handMade(ok, 20), ops).tensors().size()); // the base case is valid

    assertContains("shorter than the 8-byte header length", reasonOf(file(new byte[5])));
    var huge = ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN).putLong(33).array();
    assertContains("header length 33 runs past the end of the file (40 bytes", reasonOf(file(huge)));
    var negative = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1).array();
    assertContains("header length 18446744073709551615 runs past", reasonOf(file(negative)));
    assertContains("does not parse", reasonOf(handMade(ok.replace("\"shape\":[1]", "\"shape\":[1}"), 20)));
    assertContains("does not parse", reasonOf(handMade(ok.substring(0, 40), 20)));
    assertContains("does not begin with '{'", reasonOf(handMade(" " + ok, 20)));
    assertContains("does not parse", reasonOf(handMade(ok + "x", 20)));
    assertContains("does not parse", reasonOf(handMade(ok.replace("\"b\"", "\"a\""), 20))); // duplicate key
    assertContains("not valid UTF-8", reasonOf(file(concat(hex(4, 0, 0, 0, 0, 0, 0, 0), hex('{', 0xff, '}', ' ')))));
    assertContains("tensor 'b' data_offsets [16,24] run past the 20-byte buffer",
        reasonOf(handMade(ok.replace("[16,20]", "[16,24]"), 20)));
    assertContains("tensor 'b' data_offsets [12,16] overlap tensor 'a' ending at 16",
        reasonOf(handMade(ok.replace("[16,20]", "[12,16]"), 20)));
    assertContains("gap of 4 bytes before tensor 'b' at 20",
        reasonOf(handMade(ok.replace("[16,20]", "[20,24]"), 24)));
    assertContains("tensor 'a' shape [2, 3] of F32 needs 24 bytes but data_offsets [0,16] span 16",
        reasonOf(handMade(ok.replace("[2,2]", "[2,3]"), 20)));
    assertContains("tensor 'b' shape [1] of F64 needs 8 bytes but data_offsets [16,20] span 4",
        reasonOf(handMade(ok.replace("\"F32\",\"shape\":[1]", "\"F64\",\"shape\":[1]"), 20)));
    assertContains("the tensors index 20 bytes but the byte buffer after the header holds 24 (4 bytes unindexed)",
        reasonOf(handMade(ok, 24)));
    assertContains("tensor 'b' data_offsets [16,20] run past the 16-byte buffer", reasonOf(handMade(ok, 16)));
    assertContains("dtype \"Q8\"", reasonOf(handMade(ok.replace("\"F32\",\"shape\":[1]", "\"Q8\",\"shape\":[1]"), 20)));
    assertContains("end before they begin", reasonOf(handMade(ok.replace("[16,20]", "[20,16]"), 20)));
    assertContains("not a non-negative integer", reasonOf(handMade(ok.replace("[2,2]", "[2,-2]"), 20)));
    assertContains("expected exactly dtype, shape and data_offsets", reasonOf(handMade(ok.replace(",\"shape\":[1]", ""), 20)));
    assertContains("__metadata__.x is not a string", reasonOf(handMade("{\"__metadata__\":{\"x\":1}," + ok.substring(1), 20)));
  }

  @Test
  void everyTruncationIsDetected() throws IOException {
    byte[] good = bytes(Map.of("a", new HostTensor(2, 3, new double[] {1, 2, 3, 4, 5, 6}), "b", new HostTensor(1, 1, new double[] {7})),
        Map.of("format", "x"), DType.F32);
    SafeTensors.read(file(good), ops);
    int dataStart = good.length - 28; // 7 floats
    for (int cut = 0; cut < good.length; cut++) {
      String reason = reasonOf(file(Arrays.copyOf(good, cut)));
      if (cut < 8) assertContains("shorter than the 8-byte header length", reason);
      else if (cut < dataStart) assertContains("runs past the end of the file", reason);
      else assertContains(cut < dataStart + 24 ? "tensor 'a' data_offsets [0,24] run past" : "tensor 'b' data_offsets [24,28] run past", reason);
    }
  }
}
