package dev.k2pekko.ps.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Checkpoints of the parameter server in one directory. Version v is two files:
 * <ul>
 *   <li>{@code ckpt-<v, 9 digits>.safetensors}: the weights under their own names ("layer0.wq") and the
 *       optimizer state under "opt/" + its name ("opt/layer0.wq/m"), all F32, sorted by name; its
 *       {@code __metadata__} holds {"format": "k2-pekko-checkpoint", "version": "v"}.
 *   <li>{@code ckpt-<v, 9 digits>.json}: {@link Metadata} — format, version, the safetensors file's name,
 *       size and sha256, created_at, model_config, optimizer {name, hyper_parameters} and extra (the
 *       caller's, e.g. journal offsets per tag).
 * </ul>
 * Each file is written to a temporary file in the same directory, fsynced and renamed atomically over its
 * final name, and the directory is fsynced; the JSON goes last, so a safetensors file without its JSON is an
 * incomplete checkpoint that {@link #latest} never returns. Weights are held as fp64 by some backends:
 * storing them as F32 rounds them to the nearest float (bit-exact for values that are floats already).
 *
 * <p>Reading checks, before any tensor is built: that the JSON exists and parses with every field, that the
 * safetensors header is valid and indexes the file exactly (see {@link SafeTensors}), that the file's sha256
 * and size match the JSON and that both name the same version. Any failure is a
 * {@link CorruptCheckpointException} naming the file and the reason; such a checkpoint is never loaded.
 */
public final class Checkpoints {
  public static final String OPT_PREFIX = "opt/";
  public static final String FORMAT = "k2-pekko-checkpoint";

  private static final System.Logger LOG = System.getLogger(Checkpoints.class.getName());
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
  private static final Pattern JSON_NAME = Pattern.compile("ckpt-(\\d{9,})\\.json");
  private static final Pattern ANY_NAME = Pattern.compile("\\.?ckpt-(\\d{9,})\\.(json|safetensors)(\\..*\\.tmp)?");

  private Checkpoints() {}

  /** What the caller states about a checkpoint; maps are turned into JSON as they are (any JSON value). */
  public record Info(Map<String, Object> modelConfig, String optimizer, Map<String, Object> optimizerHyperParameters,
      Map<String, Object> extra) {
    public Info {
      modelConfig = Map.copyOf(modelConfig);
      optimizerHyperParameters = Map.copyOf(optimizerHyperParameters);
      extra = Map.copyOf(extra);
    }
  }

  /** The JSON of a written checkpoint, with the paths of its two files. */
  public record Metadata(long version, String sha256, long bytes, Instant createdAt, Info info, Path json, Path safetensors) {}

  /** A loaded checkpoint: optimizer state keyed without the "opt/" prefix. */
  public record Checkpoint(long version, Map<String, Tensor> weights, Map<String, Tensor> optimizerState, Metadata metadata) {}

  public static Path jsonPath(Path dir, long version) {
    return dir.resolve(String.format(Locale.ROOT, "ckpt-%09d.json", version));
  }

  public static Path safetensorsPath(Path dir, long version) {
    return dir.resolve(String.format(Locale.ROOT, "ckpt-%09d.safetensors", version));
  }

  /**
   * Writes checkpoint version (0 or more) to dir, creating dir if needed. Optimizer state names are given
   * without the prefix ("layer0.wq/m") and stored as "opt/layer0.wq/m"; a weight name may not start with
   * "opt/". An existing checkpoint of the same version is replaced: its JSON is removed first, so a crash in
   * between leaves it incomplete rather than mismatched.
   */
  public static Metadata write(Path dir, long version, Map<String, ? extends Tensor> weights,
      Map<String, ? extends Tensor> optimizerState, Info info) throws IOException {
    if (version < 0) throw new IllegalArgumentException("version " + version + " is negative");
    var tensors = new TreeMap<String, Tensor>();
    for (var e : weights.entrySet()) {
      if (e.getKey().startsWith(OPT_PREFIX)) throw new IllegalArgumentException("weight name '" + e.getKey() + "' starts with " + OPT_PREFIX);
      tensors.put(e.getKey(), e.getValue());
    }
    for (var e : optimizerState.entrySet()) tensors.put(OPT_PREFIX + e.getKey(), e.getValue());
    Files.createDirectories(dir);
    Path json = jsonPath(dir, version), st = safetensorsPath(dir, version);
    Files.deleteIfExists(json);
    MessageDigest sha = sha256();
    long[] size = new long[1];
    atomically(st, out -> {
      var digest = new DigestOutputStream(out, sha);
      size[0] = SafeTensors.write(digest, tensors, Map.of("format", FORMAT, "version", Long.toString(version)), DType.F32);
      digest.flush();
    });
    var meta = new Metadata(version, HexFormat.of().formatHex(sha.digest()), size[0], Instant.now(), info, json, st);
    byte[] jsonBytes = JSON.writeValueAsBytes(toJson(meta));
    atomically(json, out -> out.write(jsonBytes));
    return meta;
  }

  /** Reads and verifies a checkpoint given either of its two files; see the class comment for the checks. */
  public static Checkpoint read(Path jsonOrSafetensors, TensorOps ops) throws IOException {
    Metadata meta = verify(jsonOrSafetensors);
    var contents = SafeTensors.read(meta.safetensors(), ops);
    var weights = new LinkedHashMap<String, Tensor>();
    var opt = new LinkedHashMap<String, Tensor>();
    for (var e : contents.tensors().entrySet()) {
      if (e.getKey().startsWith(OPT_PREFIX)) opt.put(e.getKey().substring(OPT_PREFIX.length()), e.getValue());
      else weights.put(e.getKey(), e.getValue());
    }
    return new Checkpoint(meta.version(), Collections.unmodifiableMap(weights), Collections.unmodifiableMap(opt), meta);
  }

  /**
   * Checks a checkpoint without building tensors: JSON present and complete, safetensors header valid and
   * indexing the whole file, size and sha256 as recorded, one version in both files.
   */
  public static Metadata verify(Path jsonOrSafetensors) throws IOException {
    Path dir = jsonOrSafetensors.toAbsolutePath().getParent();
    String name = jsonOrSafetensors.getFileName().toString();
    Matcher m = ANY_NAME.matcher(name);
    if (!m.matches() || name.startsWith(".")) throw new IllegalArgumentException(jsonOrSafetensors + " is not named ckpt-<version>.json or .safetensors");
    long version = Long.parseLong(m.group(1));
    Path json = jsonPath(dir, version), st = safetensorsPath(dir, version);
    if (!Files.exists(json)) throw new CorruptCheckpointException(json, "missing JSON metadata: the checkpoint is incomplete");
    Metadata meta = parseJson(json, st);
    if (meta.version() != version) throw new CorruptCheckpointException(json, "holds version " + meta.version() + ", its name says " + version);
    if (!Files.exists(st)) throw new CorruptCheckpointException(st, "missing safetensors file named by " + json.getFileName());
    try (var ch = FileChannel.open(st, StandardOpenOption.READ)) {
      var header = SafeTensors.readHeader(ch, st);
      if (!FORMAT.equals(header.metadata().get("format")) || !Long.toString(version).equals(header.metadata().get("version"))) {
        throw new CorruptCheckpointException(st, "__metadata__ " + header.metadata() + " is not that of " + FORMAT + " version " + version);
      }
      if (ch.size() != meta.bytes()) throw new CorruptCheckpointException(st, "size " + ch.size() + " bytes, the JSON records " + meta.bytes());
    }
    String actual = sha256Of(st);
    if (!actual.equals(meta.sha256())) throw new CorruptCheckpointException(st, "sha256 " + actual + " does not match " + meta.sha256() + " recorded in " + json.getFileName());
    return meta;
  }

  /**
   * The newest complete checkpoint in dir that passes {@link #verify}, or empty when there is none (or no
   * dir). A newer checkpoint that is corrupt or incomplete is skipped with a warning in the log, and the
   * next older one is tried: a crash while writing, or a damaged file, costs the steps since the previous
   * checkpoint, never a load of bad weights.
   */
  public static Optional<Metadata> latest(Path dir) throws IOException {
    for (long v : completeVersions(dir)) {
      try {
        return Optional.of(verify(jsonPath(dir, v)));
      } catch (CorruptCheckpointException e) {
        LOG.log(System.Logger.Level.WARNING, "skipping checkpoint " + v + ", falling back to an older one: " + e.getMessage());
      }
    }
    return Optional.empty();
  }

  /** {@link #latest} loaded with ops, with the same fallback. */
  public static Optional<Checkpoint> loadLatest(Path dir, TensorOps ops) throws IOException {
    for (long v : completeVersions(dir)) {
      try {
        return Optional.of(read(jsonPath(dir, v), ops));
      } catch (CorruptCheckpointException e) {
        LOG.log(System.Logger.Level.WARNING, "skipping checkpoint " + v + ", falling back to an older one: " + e.getMessage());
      }
    }
    return Optional.empty();
  }

  /**
   * Keeps the n (at least 1) newest verified checkpoints and deletes every file of an older version: the
   * JSON, the safetensors, temporary files left by a crash, and corrupt or incomplete checkpoints older than
   * the n-th good one. Files newer than the newest good checkpoint are left alone (one may be being
   * written). Returns the deleted paths. Verifying hashes the kept files.
   */
  public static List<Path> keepLast(Path dir, int n) throws IOException {
    if (n < 1) throw new IllegalArgumentException("keepLast needs n >= 1, got " + n);
    long cutoff = -1;
    int good = 0;
    for (long v : completeVersions(dir)) {
      try {
        verify(jsonPath(dir, v));
      } catch (CorruptCheckpointException e) {
        continue;
      }
      if (++good == n) {
        cutoff = v;
        break;
      }
    }
    var deleted = new ArrayList<Path>();
    if (cutoff < 0) return deleted;
    try (var files = Files.list(dir)) {
      for (Path p : files.toList()) {
        Matcher m = ANY_NAME.matcher(p.getFileName().toString());
        if (m.matches() && Long.parseLong(m.group(1)) < cutoff && Files.deleteIfExists(p)) deleted.add(p);
      }
    }
    return deleted;
  }

  /** Versions that have a JSON file, newest first. */
  static List<Long> completeVersions(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) return List.of();
    var versions = new ArrayList<Long>();
    try (var files = Files.list(dir)) {
      for (Path p : files.toList()) {
        Matcher m = JSON_NAME.matcher(p.getFileName().toString());
        if (m.matches()) versions.add(Long.parseLong(m.group(1)));
      }
    }
    versions.sort(Collections.reverseOrder());
    return versions;
  }

  // ---- JSON ----

  private static Map<String, Object> toJson(Metadata m) {
    var j = new LinkedHashMap<String, Object>();
    j.put("format", FORMAT);
    j.put("version", m.version());
    j.put("safetensors", m.safetensors().getFileName().toString());
    j.put("bytes", m.bytes());
    j.put("sha256", m.sha256());
    j.put("created_at", m.createdAt().toString());
    j.put("model_config", new TreeMap<>(m.info().modelConfig()));
    j.put("optimizer", Map.of("name", m.info().optimizer(), "hyper_parameters", new TreeMap<>(m.info().optimizerHyperParameters())));
    j.put("extra", new TreeMap<>(m.info().extra()));
    return j;
  }

  private static Metadata parseJson(Path json, Path st) throws CorruptCheckpointException {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readAllBytes(json));
    } catch (JsonProcessingException e) {
      throw new CorruptCheckpointException(json, "metadata JSON does not parse: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new CorruptCheckpointException(json, "metadata JSON cannot be read: " + e, e);
    }
    try {
      if (root == null || !root.isObject()) throw new IllegalArgumentException("not a JSON object");
      if (!FORMAT.equals(text(root, "format"))) throw new IllegalArgumentException("format is not " + FORMAT);
      if (!st.getFileName().toString().equals(text(root, "safetensors"))) {
        throw new IllegalArgumentException("names " + text(root, "safetensors") + ", expected " + st.getFileName());
      }
      String sha = text(root, "sha256");
      if (!sha.matches("[0-9a-f]{64}")) throw new IllegalArgumentException("sha256 '" + sha + "' is not 64 hex digits");
      JsonNode opt = field(root, "optimizer");
      var info = new Info(map(field(root, "model_config")), text(opt, "name"), map(field(opt, "hyper_parameters")), map(field(root, "extra")));
      return new Metadata(integer(root, "version"), sha, integer(root, "bytes"), Instant.parse(text(root, "created_at")), info, json, st);
    } catch (IllegalArgumentException | DateTimeParseException e) {
      throw new CorruptCheckpointException(json, "metadata JSON is incomplete or wrong: " + e.getMessage(), e);
    }
  }

  private static JsonNode field(JsonNode o, String name) {
    JsonNode v = o.get(name);
    if (v == null || v.isNull()) throw new IllegalArgumentException("field " + name + " is missing");
    return v;
  }

  private static String text(JsonNode o, String name) {
    JsonNode v = field(o, name);
    if (!v.isTextual()) throw new IllegalArgumentException("field " + name + " is not a string");
    return v.textValue();
  }

  private static long integer(JsonNode o, String name) {
    JsonNode v = field(o, name);
    if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) throw new IllegalArgumentException("field " + name + " is not a non-negative integer");
    return v.longValue();
  }

  private static Map<String, Object> map(JsonNode v) {
    if (!v.isObject()) throw new IllegalArgumentException("expected an object, got " + v);
    Map<String, Object> m = JSON.convertValue(v, new TypeReference<LinkedHashMap<String, Object>>() {});
    // Map.copyOf in Info refuses nulls; a JSON null becomes absent
    m.values().removeIf(x -> x == null);
    return m;
  }

  // ---- files ----

  private interface Body {
    void writeTo(OutputStream out) throws IOException;
  }

  /** Temp file in the same directory, fsync, atomic rename over target, fsync of the directory. */
  private static void atomically(Path target, Body body) throws IOException {
    Path dir = target.toAbsolutePath().getParent();
    Path tmp = dir.resolve("." + target.getFileName() + "." + UUID.randomUUID() + ".tmp");
    try {
      try (var ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        var out = new BufferedOutputStream(Channels.newOutputStream(ch), 1 << 16);
        body.writeTo(out);
        out.flush();
        ch.force(true);
      }
      try {
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        throw new IOException("cannot rename " + tmp + " atomically onto " + target + " (file system without atomic moves)", e);
      }
    } finally {
      Files.deleteIfExists(tmp);
    }
    fsyncDirectory(dir);
  }

  private static void fsyncDirectory(Path dir) {
    try (var ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      // some platforms cannot open a directory; the rename is still atomic, only its durability is weaker
    }
  }

  static String sha256Of(Path file) throws IOException {
    MessageDigest sha = sha256();
    try (InputStream in = Files.newInputStream(file)) {
      byte[] buf = new byte[1 << 16];
      for (int r; (r = in.read(buf)) > 0; ) sha.update(buf, 0, r);
    } catch (NoSuchFileException e) {
      throw new CorruptCheckpointException(file, "file vanished while hashing", e);
    }
    return HexFormat.of().formatHex(sha.digest());
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM has SHA-256", e);
    }
  }
}
