package dev.k2pekko.ps.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.k2pekko.ops.HostTensor;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
  final ReferenceOps ops = ReferenceOps.INSTANCE;
  @TempDir Path dir;

  static HostTensor floats(long seed, int rows, int cols) {
    var rnd = new Random(seed);
    double[] v = new double[rows * cols];
    for (int i = 0; i < v.length; i++) v[i] = (float) rnd.nextGaussian();
    return new HostTensor(rows, cols, v);
  }

  static Map<String, Tensor> weights(long seed) {
    return Map.of("layer0.wq", floats(seed, 4, 3), "layer0.wk", floats(seed + 1, 4, 3), "embed", floats(seed + 2, 5, 3));
  }

  static Map<String, Tensor> optState(long seed) {
    return Map.of("layer0.wq/m", floats(seed + 3, 4, 3), "layer0.wq/v", floats(seed + 4, 4, 3));
  }

  static Checkpoints.Info info(long offset) {
    return new Checkpoints.Info(Map.of("layers", 1, "dModel", 3, "vocab", 5, "name", "tiny"), "muonclip",
        Map.of("lr", 0.02, "tau", 100.0, "nsSteps", 5), Map.of("journalOffsets", Map.of("trajectories-0", offset, "trajectories-1", 7)));
  }

  Checkpoints.Metadata write(long version) throws IOException {
    return Checkpoints.write(dir, version, weights(version), optState(version), info(version * 10));
  }

  @Test
  void roundTripIsBitExactWithItsMetadata() throws Exception {
    var written = write(42);
    assertEquals(dir.resolve("ckpt-000000042.safetensors"), written.safetensors());
    assertEquals(dir.resolve("ckpt-000000042.json"), written.json());
    try (var files = Files.list(dir)) { // no temporary file left behind
      assertEquals(List.of("ckpt-000000042.json", "ckpt-000000042.safetensors"), files.map(p -> p.getFileName().toString()).sorted().toList());
    }
    byte[] st = Files.readAllBytes(written.safetensors());
    assertEquals(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(st)), written.sha256());
    assertEquals(st.length, written.bytes());

    var c = Checkpoints.read(written.json(), ops);
    assertEquals(42, c.version());
    assertEquals(new TreeSet<>(weights(42).keySet()), new TreeSet<>(c.weights().keySet()));
    assertEquals(new TreeSet<>(optState(42).keySet()), new TreeSet<>(c.optimizerState().keySet()));
    for (var e : weights(42).entrySet()) assertEquals(e.getValue(), HostTensor.of(c.weights().get(e.getKey())), e.getKey());
    for (var e : optState(42).entrySet()) assertEquals(e.getValue(), HostTensor.of(c.optimizerState().get(e.getKey())), e.getKey());
    var m = c.metadata();
    assertEquals(written.sha256(), m.sha256());
    assertEquals(written.createdAt(), m.createdAt());
    assertEquals("muonclip", m.info().optimizer());
    assertEquals(Map.of("layers", 1, "dModel", 3, "vocab", 5, "name", "tiny"), m.info().modelConfig());
    assertEquals(Map.of("lr", 0.02, "tau", 100.0, "nsSteps", 5), m.info().optimizerHyperParameters());
    assertEquals(Map.of("journalOffsets", Map.of("trajectories-0", 420, "trajectories-1", 7)), m.info().extra());
    // read through the other file of the pair gives the same
    assertEquals(m, Checkpoints.read(written.safetensors(), ops).metadata());

    // the tensors are stored under their names, the optimizer's under opt/, and the JSON says what it should
    var header = SafeTensors.read(written.safetensors(), ops);
    assertEquals(new TreeSet<>(List.of("embed", "layer0.wk", "layer0.wq", "opt/layer0.wq/m", "opt/layer0.wq/v")), new TreeSet<>(header.tensors().keySet()));
    assertEquals(Map.of("format", "k2-pekko-checkpoint", "version", "42"), header.metadata());
    var json = new ObjectMapper().readTree(written.json().toFile());
    assertEquals(42, json.get("version").longValue());
    assertEquals(written.sha256(), json.get("sha256").textValue());
    assertEquals("ckpt-000000042.safetensors", json.get("safetensors").textValue());
    assertEquals("muonclip", json.get("optimizer").get("name").textValue());
  }

  @Test
  void weightNamesMayNotUseTheOptimizerPrefix() {
    var e = assertThrows(IllegalArgumentException.class,
        () -> Checkpoints.write(dir, 1, Map.of("opt/x", floats(1, 1, 1)), Map.of(), info(0)));
    assertTrue(e.getMessage().contains("opt/x"), e.getMessage());
  }

  String reasonOf(Path p) {
    var e = assertThrows(CorruptCheckpointException.class, () -> Checkpoints.read(p, ops));
    assertTrue(e.getMessage().startsWith("corrupt checkpoint " + e.path()), e.getMessage());
    return e.reason();
  }

  static void assertContains(String expected, String actual) {
    assertTrue(actual.contains(expected), "expected '" + expected + "' in: " + actual);
  }

  @Test
  void aFlippedDataByteFailsTheSha256() throws IOException {
    var m = write(3);
    byte[] b = Files.readAllBytes(m.safetensors());
    b[b.length - 5] ^= 0x01;
    Files.write(m.safetensors(), b);
    assertContains("sha256", reasonOf(m.json()));
    assertContains("does not match", reasonOf(m.safetensors()));
  }

  @Test
  void missingOrBrokenJsonIsNamed() throws IOException {
    var m = write(3);
    byte[] json = Files.readAllBytes(m.json());
    Files.write(m.json(), Arrays.copyOf(json, json.length / 2));
    assertContains("metadata JSON does not parse", reasonOf(m.safetensors()));
    Files.write(m.json(), new String(json).replace("\"sha256\"", "\"sha\"").getBytes());
    assertContains("field sha256 is missing", reasonOf(m.json()));
    Files.delete(m.json());
    var e = assertThrows(CorruptCheckpointException.class, () -> Checkpoints.read(m.safetensors(), ops));
    assertEquals(m.json(), e.path());
    assertContains("missing JSON metadata", e.reason());
  }

  @Test
  void structuralDamageIsNamedBeforeTheHash() throws IOException {
    var m = write(3);
    byte[] good = Files.readAllBytes(m.safetensors());
    long n = ByteBuffer.wrap(good, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    byte[] b = good.clone();
    ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(good.length); // header length beyond the file
    Files.write(m.safetensors(), b);
    assertContains("runs past the end of the file", reasonOf(m.json()));
    b = good.clone();
    b[9] = ','; // JSON header that does not parse: {,"embed"...
    Files.write(m.safetensors(), b);
    assertContains("JSON header does not parse", reasonOf(m.json()));
    // truncation at several points: inside the length, the header, the data, one byte short
    for (int cut : new int[] {0, 4, 8, 9, 8 + (int) n / 2, 8 + (int) n, good.length / 2 + (int) n / 2, good.length - 1}) {
      Files.write(m.safetensors(), Arrays.copyOf(good, cut));
      var e = assertThrows(CorruptCheckpointException.class, () -> Checkpoints.read(m.json(), ops), "cut at " + cut);
      assertEquals(m.safetensors(), e.path());
      assertFalse(e.reason().contains("sha256"), "structure is checked before the hash: " + e.reason());
    }
    // another version's file in its place
    Files.write(m.safetensors(), good);
    var other = write(4);
    Files.copy(other.safetensors(), m.safetensors(), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    assertContains("is not that of k2-pekko-checkpoint version 3", reasonOf(m.json()));
  }

  @Test
  void latestFallsBackPastCorruptAndIncompleteCheckpoints() throws IOException {
    assertTrue(Checkpoints.latest(dir).isEmpty());
    assertTrue(Checkpoints.latest(dir.resolve("absent")).isEmpty());
    write(1);
    write(2);
    var v3 = write(3);
    assertEquals(3, Checkpoints.latest(dir).orElseThrow().version());
    byte[] b = Files.readAllBytes(v3.safetensors());
    Files.write(v3.safetensors(), Arrays.copyOf(b, b.length - 3));
    assertEquals(2, Checkpoints.latest(dir).orElseThrow().version());
    Files.delete(Checkpoints.jsonPath(dir, 2)); // incomplete: safetensors without its JSON
    assertEquals(1, Checkpoints.latest(dir).orElseThrow().version());
    var loaded = Checkpoints.loadLatest(dir, ops).orElseThrow();
    assertEquals(1, loaded.version());
    assertEquals(weights(1).get("embed"), HostTensor.of(loaded.weights().get("embed")));
    Files.write(Checkpoints.safetensorsPath(dir, 1), new byte[0]);
    assertTrue(Checkpoints.latest(dir).isEmpty());
    assertTrue(Checkpoints.loadLatest(dir, ops).isEmpty());
  }

  @Test
  void rewritingAVersionReplacesIt() throws IOException {
    write(5);
    var again = Checkpoints.write(dir, 5, Map.of("embed", floats(99, 2, 2)), Map.of(), info(1));
    var c = Checkpoints.read(again.json(), ops);
    assertEquals(Map.of("embed", floats(99, 2, 2)), Map.of("embed", HostTensor.of(c.weights().get("embed"))));
    assertTrue(c.optimizerState().isEmpty());
  }

  @Test
  void keepLastDeletesOlderVersionsOnly() throws IOException {
    for (long v = 1; v <= 5; v++) write(v);
    Files.write(dir.resolve(".ckpt-000000001.safetensors.0a1b.tmp"), new byte[3]); // left by a crash
    var deleted = Checkpoints.keepLast(dir, 2);
    assertEquals(7, deleted.size(), deleted.toString());
    assertEquals(List.of(5L, 4L), Checkpoints.completeVersions(dir));
    try (var files = Files.list(dir)) {
      assertEquals(4, files.count());
    }
    // a corrupt newest checkpoint does not count: the two good ones before it stay, and so does it
    write(6);
    Files.write(Checkpoints.safetensorsPath(dir, 6), new byte[10]);
    Checkpoints.keepLast(dir, 2);
    assertEquals(List.of(6L, 5L, 4L), Checkpoints.completeVersions(dir));
    Checkpoints.keepLast(dir, 1);
    assertEquals(List.of(6L, 5L), Checkpoints.completeVersions(dir));
    assertEquals(5, Checkpoints.latest(dir).orElseThrow().version());
    assertThrows(IllegalArgumentException.class, () -> Checkpoints.keepLast(dir, 0));
  }
}
