package dev.k2pekko.ps.checkpoint;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The safetensors format: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON that start with
 * '{' (a name to {"dtype", "shape", "data_offsets": [begin, end]} per tensor, offsets relative to the byte
 * buffer after the header, plus an optional "__metadata__" object of strings), then the byte buffer:
 * every tensor little-endian, row-major, the buffer fully indexed without gaps or overlaps.
 *
 * <p>Writing sorts tensors by name (the bytes do not depend on the map's order), writes shape [rows, cols]
 * and pads the header with spaces to a multiple of 8 so that the data starts 8-aligned. Reading validates
 * the whole header against the file size before it reads a byte of data, and throws
 * {@link CorruptCheckpointException} naming the file and the first problem found. Every tensor in this
 * project is a matrix, so a read shape [] is (1,1), [n] is (1,n) and [a,...,y,z] is (a*...*y, z).
 */
public final class SafeTensors {
  /** The reference implementation refuses larger headers; so do we. */
  public static final long MAX_HEADER_BYTES = 100_000_000;

  public static final String METADATA_KEY = "__metadata__";

  private static final ObjectMapper JSON = new ObjectMapper()
      .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
      .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
  private static final int CHUNK_ELEMENTS = 1 << 16;

  private SafeTensors() {}

  /** One tensor as the header describes it; shape as stored, offsets into the byte buffer. */
  public record Entry(String name, DType dtype, List<Long> shape, long begin, long end) {
    public long elements() {
      long n = 1;
      for (long d : shape) n = Math.multiplyExact(n, d);
      return n;
    }
  }

  /** A validated header: metadata, tensors in the order of their data, and N, the JSON's length. */
  public record Header(Map<String, String> metadata, List<Entry> tensors, long headerBytes) {
    /** The file offset of the byte buffer. */
    public long dataStart() {
      return 8 + headerBytes;
    }
  }

  /** What a file holds: its metadata and its tensors in the order of their data. */
  public record Contents(Map<String, String> metadata, Map<String, Tensor> tensors) {}

  // ---- writing ----

  /**
   * Writes tensors (sorted by name) as dtype (F32 or F64) with metadata (may be empty) to out; the
   * caller owns out and its atomicity. Returns the number of bytes written.
   */
  public static long write(OutputStream out, Map<String, ? extends Tensor> tensors, Map<String, String> metadata, DType dtype)
      throws IOException {
    if (dtype != DType.F32 && dtype != DType.F64) throw new IllegalArgumentException("writing " + dtype + " is not supported (F32 or F64)");
    var sorted = new TreeMap<String, Tensor>(tensors);
    byte[] header = header(sorted, metadata, dtype);
    var len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length);
    out.write(len.array());
    out.write(header);
    long written = 8L + header.length;
    var buf = ByteBuffer.allocate(CHUNK_ELEMENTS * dtype.bytes()).order(ByteOrder.LITTLE_ENDIAN);
    for (Tensor t : sorted.values()) {
      double[] v = t.toDoubles();
      for (int from = 0; from < v.length; from += CHUNK_ELEMENTS) {
        buf.clear();
        int to = Math.min(v.length, from + CHUNK_ELEMENTS);
        for (int i = from; i < to; i++) dtype.put(buf, v[i]);
        out.write(buf.array(), 0, buf.position());
        written += buf.position();
      }
    }
    return written;
  }

  /** The JSON header for tensors in this order, padded with spaces to a multiple of 8 bytes. */
  static byte[] header(Map<String, Tensor> tensors, Map<String, String> metadata, DType dtype) throws IOException {
    var bytes = new ByteArrayOutputStream();
    try (JsonGenerator g = new JsonFactory().createGenerator(bytes)) {
      g.writeStartObject();
      if (!metadata.isEmpty()) {
        g.writeObjectFieldStart(METADATA_KEY);
        for (var e : new TreeMap<>(metadata).entrySet()) g.writeStringField(e.getKey(), e.getValue());
        g.writeEndObject();
      }
      long offset = 0;
      for (var e : tensors.entrySet()) {
        String name = e.getKey();
        if (name.isEmpty() || name.equals(METADATA_KEY)) throw new IllegalArgumentException("tensor name '" + name + "' is reserved or empty");
        Tensor t = e.getValue();
        long size = (long) t.rows() * t.cols() * dtype.bytes();
        g.writeObjectFieldStart(name);
        g.writeStringField("dtype", dtype.name());
        g.writeArrayFieldStart("shape");
        g.writeNumber(t.rows());
        g.writeNumber(t.cols());
        g.writeEndArray();
        g.writeArrayFieldStart("data_offsets");
        g.writeNumber(offset);
        g.writeNumber(offset + size);
        g.writeEndArray();
        g.writeEndObject();
        offset += size;
      }
      g.writeEndObject();
    }
    while (bytes.size() % 8 != 0) bytes.write(' ');
    return bytes.toByteArray();
  }

  // ---- reading ----

  /** Reads and validates a whole file; tensors are built with ops. */
  public static Contents read(Path file, TensorOps ops) throws IOException {
    try (var ch = FileChannel.open(file, StandardOpenOption.READ)) {
      Header h = readHeader(ch, file);
      var tensors = new LinkedHashMap<String, Tensor>();
      for (Entry e : h.tensors()) tensors.put(e.name(), readTensor(ch, file, h, e, ops));
      return new Contents(h.metadata(), Collections.unmodifiableMap(tensors));
    }
  }

  /** Reads the header and checks it against the spec and the file size; reads no tensor data. */
  public static Header readHeader(FileChannel ch, Path file) throws IOException {
    long size = ch.size();
    if (size < 8) throw new CorruptCheckpointException(file, "file of " + size + " bytes is shorter than the 8-byte header length");
    var lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    readFully(ch, lenBuf, 0, file);
    long n = lenBuf.flip().getLong();
    if (n < 0 || n > size - 8) {
      throw new CorruptCheckpointException(file, "header length " + Long.toUnsignedString(n) + " runs past the end of the file ("
          + size + " bytes, at most " + (size - 8) + " after the length)");
    }
    if (n > MAX_HEADER_BYTES) throw new CorruptCheckpointException(file, "header length " + n + " exceeds the limit of " + MAX_HEADER_BYTES + " bytes");
    var headerBuf = ByteBuffer.allocate((int) n);
    readFully(ch, headerBuf, 8, file);
    byte[] bytes = headerBuf.array();
    if (n == 0 || bytes[0] != '{') throw new CorruptCheckpointException(file, "JSON header does not begin with '{'");
    try {
      StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes));
    } catch (CharacterCodingException e) {
      throw new CorruptCheckpointException(file, "JSON header is not valid UTF-8", e);
    }
    JsonNode root;
    try {
      root = JSON.readTree(bytes);
    } catch (JsonProcessingException e) {
      throw new CorruptCheckpointException(file, "JSON header does not parse: " + e.getOriginalMessage(), e);
    }
    if (!(root instanceof ObjectNode obj)) throw new CorruptCheckpointException(file, "JSON header is not an object");
    return validate(file, obj, n, size - 8 - n);
  }

  private static Header validate(Path file, ObjectNode root, long headerBytes, long dataBytes) throws CorruptCheckpointException {
    var metadata = new LinkedHashMap<String, String>();
    var entries = new ArrayList<Entry>();
    for (var field : root.properties()) {
      String name = field.getKey();
      JsonNode v = field.getValue();
      if (name.equals(METADATA_KEY)) {
        if (!v.isObject()) throw new CorruptCheckpointException(file, METADATA_KEY + " is not an object");
        for (var m : v.properties()) {
          if (!m.getValue().isTextual()) throw new CorruptCheckpointException(file, METADATA_KEY + "." + m.getKey() + " is not a string");
          metadata.put(m.getKey(), m.getValue().textValue());
        }
        continue;
      }
      entries.add(entry(file, name, v, dataBytes));
    }
    // the buffer must be indexed exactly: sorted by begin, each tensor starts where the previous ended
    entries.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
    long expected = 0;
    String previous = null;
    for (Entry e : entries) {
      if (e.begin() < expected) {
        throw new CorruptCheckpointException(file, "tensor '" + e.name() + "' data_offsets [" + e.begin() + "," + e.end()
            + "] overlap tensor '" + previous + "' ending at " + expected);
      }
      if (e.begin() > expected) {
        throw new CorruptCheckpointException(file, "gap of " + (e.begin() - expected) + " bytes before tensor '" + e.name()
            + "' at " + e.begin() + " (the byte buffer must be fully indexed)");
      }
      expected = e.end();
      previous = e.name();
    }
    if (expected != dataBytes) {
      throw new CorruptCheckpointException(file, "the tensors index " + expected + " bytes but the byte buffer after the header holds "
          + dataBytes + " (" + (dataBytes - expected) + " bytes unindexed)");
    }
    return new Header(Collections.unmodifiableMap(metadata), List.copyOf(entries), headerBytes);
  }

  private static Entry entry(Path file, String name, JsonNode v, long dataBytes) throws CorruptCheckpointException {
    String where = "tensor '" + name + "'";
    if (name.isEmpty()) throw new CorruptCheckpointException(file, "a tensor has an empty name");
    if (!v.isObject()) throw new CorruptCheckpointException(file, where + " is not an object");
    Set<String> keys = new HashSet<>();
    v.fieldNames().forEachRemaining(keys::add);
    if (!keys.equals(Set.of("dtype", "shape", "data_offsets"))) {
      throw new CorruptCheckpointException(file, where + " has fields " + new TreeSet<>(keys)
          + ", expected exactly dtype, shape and data_offsets");
    }
    JsonNode dt = v.get("dtype");
    DType dtype = dt.isTextual() ? DType.parse(dt.textValue()) : null;
    if (dtype == null) throw new CorruptCheckpointException(file, where + " has dtype " + dt + ", not one of F64, F32, BF16, F16, I32");
    List<Long> shape = naturals(file, where + " shape", v.get("shape"), -1);
    List<Long> offsets = naturals(file, where + " data_offsets", v.get("data_offsets"), 2);
    long begin = offsets.get(0), end = offsets.get(1);
    if (begin > end) throw new CorruptCheckpointException(file, where + " data_offsets [" + begin + "," + end + "] end before they begin");
    if (end > dataBytes) {
      throw new CorruptCheckpointException(file, where + " data_offsets [" + begin + "," + end + "] run past the "
          + dataBytes + "-byte buffer after the header");
    }
    var e = new Entry(name, dtype, shape, begin, end);
    long need;
    try {
      need = Math.multiplyExact(e.elements(), dtype.bytes());
    } catch (ArithmeticException overflow) {
      throw new CorruptCheckpointException(file, where + " shape " + shape + " overflows a 64-bit size");
    }
    if (need != end - begin) {
      throw new CorruptCheckpointException(file, where + " shape " + shape + " of " + dtype + " needs " + need
          + " bytes but data_offsets [" + begin + "," + end + "] span " + (end - begin));
    }
    return e;
  }

  /** A JSON array of non-negative integers, of the given length unless length is -1. */
  private static List<Long> naturals(Path file, String what, JsonNode a, int length) throws CorruptCheckpointException {
    if (a == null || !a.isArray() || (length >= 0 && a.size() != length)) {
      throw new CorruptCheckpointException(file, what + " is " + a + ", not an array of " + (length >= 0 ? length + " " : "") + "integers");
    }
    var out = new ArrayList<Long>();
    for (JsonNode x : a) {
      if (!x.isIntegralNumber() || !x.canConvertToLong() || x.longValue() < 0) {
        throw new CorruptCheckpointException(file, what + " holds " + x + ", not a non-negative integer");
      }
      out.add(x.longValue());
    }
    return List.copyOf(out);
  }

  private static Tensor readTensor(FileChannel ch, Path file, Header h, Entry e, TensorOps ops) throws IOException {
    List<Long> s = e.shape();
    long rows = 1, cols = s.isEmpty() ? 1 : s.getLast();
    try {
      for (int i = 0; i < s.size() - 1; i++) rows = Math.multiplyExact(rows, s.get(i));
    } catch (ArithmeticException overflow) {
      rows = Long.MAX_VALUE;
    }
    if (rows > Integer.MAX_VALUE || cols > Integer.MAX_VALUE || e.elements() > Integer.MAX_VALUE - 8) {
      throw new IOException(file + ": tensor '" + e.name() + "' of shape " + s + " is too large for a Tensor");
    }
    double[] v = new double[(int) e.elements()];
    var buf = ByteBuffer.allocate(CHUNK_ELEMENTS * e.dtype().bytes()).order(ByteOrder.LITTLE_ENDIAN);
    long pos = h.dataStart() + e.begin();
    for (int from = 0; from < v.length; from += CHUNK_ELEMENTS) {
      int count = Math.min(CHUNK_ELEMENTS, v.length - from);
      buf.clear().limit(count * e.dtype().bytes());
      readFully(ch, buf, pos, file);
      pos += buf.limit();
      buf.flip();
      for (int i = 0; i < count; i++) v[from + i] = e.dtype().get(buf);
    }
    return ops.tensor((int) rows, (int) cols, v);
  }

  private static void readFully(FileChannel ch, ByteBuffer buf, long pos, Path file) throws IOException {
    while (buf.hasRemaining()) {
      int r = ch.read(buf, pos);
      if (r < 0) throw new CorruptCheckpointException(file, "file ends at " + pos + " while reading", new EOFException());
      pos += r;
    }
  }
}
