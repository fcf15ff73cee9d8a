package dev.k2pekko.bundle;

import dev.k2pekko.bundle.boot.StoreLoader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.zip.Deflater;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code k2 bundle --out DIR}: a self-contained runtime for a node without Java (a GPU learner host), under 60 MB:
 * <ul>
 *   <li>{@code jre/}: a JRE made by jlink from this JDK with only the modules the node needs ({@link #MODULES}), its
 *   native libraries' symbol tables stripped;</li>
 *   <li>{@code lib/k2-classes.xz}: the classes and resources of k2's jars and its libraries' (without ND4J and its
 *   natives: the CUDA backend is k2's own, bound through FFM, and the plain-Java backend needs none), in one
 *   xz-compressed class store ({@link ClassStore}); library classes that nothing can reach are left out
 *   ({@link JarShrink}) and the others lose their debugging attributes ({@link DebugStrip});</li>
 *   <li>{@code lib/k2-boot.jar} and the xz decoder's jar: the class loader that serves the store
 *   ({@link StoreLoader}), made the system class loader by {@code bin/k2}.</li>
 * </ul>
 * Its size is printed (and fails the command when it passes {@code --max-mb}).
 */
@Command(name = "bundle", mixinStandardHelpOptions = true,
    description = "Write a self-contained runtime image (jlinked JRE + k2's classes and its libraries', without ND4J's "
        + "natives, in one compressed class store) to DIR: DIR/bin/k2 node --roles learner ... runs on a host without Java.")
public final class BundleCommand implements Callable<Integer> {
  /**
   * Java modules the node uses: Pekko (jdk.unsupported, java.logging), JDBC (java.sql, which brings java.xml and
   * java.transaction.xa), Slick's executor (java.management), logback's XML configuration (java.naming), the CPU
   * loops' SIMD (jdk.incubator.vector, dev.k2pekko.ops.Simd). Left out: jdk.jfr (Pekko's remoting events, turned off
   * where it is missing) and java.desktop (the report's PNGs).
   */
  static final List<String> MODULES = List.of("java.base", "java.logging", "java.management", "java.naming", "java.sql", "jdk.unsupported",
      "jdk.incubator.vector");

  /**
   * The MCP client and server and what only they use (Jackson 3, Reactor, a JSON-schema validator, YAML): a learner host
   * runs no tool servers; MCP servers configured in a bundle are one clear error (NodeConfig). {@code --with-mcp} keeps
   * them (a tool host, or {@code k2 bench mcp} on a host without node: {@code k2 bench mcp-echo-server}).
   */
  public static final List<String> MCP = List.of("mcp-", "jackson-core-3.", "jackson-databind-3.", "json-schema-validator-", "itu-",
      "jackson-dataformat-yaml-3.", "snakeyaml-engine-", "jspecify-", "reactor-core-");

  /** Jars left out: ND4J and everything only it brings (its natives alone are over 100 MB), and the rest below. */
  public static final List<String> LEFT_OUT = Stream.concat(MCP.stream(), Stream.of("nd4j-", "javacpp-", "openblas-", "flatbuffers-java-", "protobuf-1.0.0-M2.1",
      "jackson-1.0.0-M2.1", "guava-1.0.0-M2.1", "oshi-core-", "jna-", "jna-platform-", "threetenbp-", "commons-net-", "neoitertools-",
      "byteunits-", "commons-math3-", "commons-collections4-", "commons-compress-", "commons-codec-", "commons-io-", "commons-lang3-",
      // LMDB and its JNR binding: only for a durable distributed-data store, which k2 does not use
      "lmdbjava-", "jnr-ffi-", "jnr-constants-", "jnr-a64asm-", "jnr-x86asm-", "jffi-",
      // Pekko HTTP: only `k2 serve`'s API, which a learner host does not serve (ServeCommand says so in a bundle)
      "pekko-http_", "pekko-http-core_", "pekko-parsing_",
      // the operations endpoint (--http-port): Micrometer, its Prometheus client, Pekko Management; a learner host runs
      // without it (OpsOptions says so in a bundle); the actors' meters (module metrics) stay and cost nothing unread
      "micrometer-", "HdrHistogram-", "LatencyUtils-", "prometheus-metrics-", "pekko-management_", "pekko-management-cluster-http_",
      "pekko-http-spray-json_", "spray-json_")).toList();

  @Option(names = "--out", required = true, description = "directory to create (must not exist)") String out;

  @Option(names = "--with-mcp", description = "keep the MCP SDK (client and server) and what it brings: for a host that runs MCP tool "
      + "servers, or k2 bench mcp where node is missing (about 4 MB more)")
  boolean withMcp;

  @Option(names = "--max-mb", description = "fail when the image is larger than this many MB (default: no limit)", defaultValue = "0")
  int maxMb;

  @Override public Integer call() throws Exception {
    Path dir = Path.of(out);
    if (Files.exists(dir)) throw new IllegalArgumentException("--out: " + dir + " exists; give a new directory");
    Path jlink = Path.of(System.getProperty("java.home"), "bin", "jlink");
    if (!Files.isExecutable(jlink)) throw new IllegalArgumentException("no jlink in " + jlink.getParent() + ": run k2 with a full JDK 25");
    var jars = new ArrayList<Path>();
    Path xz = null;
    for (String e : System.getProperty("java.class.path").split(File.pathSeparator)) {
      Path p = Path.of(e);
      String name = p.getFileName().toString();
      if (!name.endsWith(".jar") || !Files.isRegularFile(p)) continue;
      if (name.startsWith("xz-")) xz = p;
      else if (LEFT_OUT.stream().noneMatch(name::startsWith) || withMcp && MCP.stream().anyMatch(name::startsWith)) jars.add(p);
    }
    if (xz == null) throw new IllegalStateException("the xz jar is not on the class path: " + System.getProperty("java.class.path"));
    var cmd = new ArrayList<>(List.of(jlink.toString(), "--add-modules", String.join(",", MODULES), "--strip-debug", "--no-header-files",
        "--no-man-pages", "--compress=zip-9",
        // the class list for making a CDS archive, and the jrt file system for other JDKs reading this image: neither runs k2
        "--exclude-files=glob:/java.base/lib/classlist,glob:/java.base/lib/jrt-fs.jar", "--output", dir.resolve("jre").toString()));
    var proc = new ProcessBuilder(cmd).inheritIO().start();
    if (!proc.waitFor(5, TimeUnit.MINUTES) || proc.exitValue() != 0) throw new IllegalStateException("jlink failed: " + String.join(" ", cmd));
    String stripped = stripNative(dir.resolve("jre"));
    Path lib = Files.createDirectories(dir.resolve("lib"));
    writeBootJar(lib.resolve(BOOT_JAR));
    Files.copy(xz, lib.resolve(xz.getFileName()));
    var own = new ArrayList<Path>();
    var libraries = new ArrayList<Path>();
    for (Path j : jars) (JarShrink.isOwn(j) ? own : libraries).add(j);
    var keep = JarShrink.reachable(own, libraries);
    var store = ClassStore.write(jars, keep::contains, Set.copyOf(own), lib.resolve(StoreLoader.STORE));
    Files.createDirectories(dir.resolve("bin"));
    Path script = dir.resolve("bin").resolve("k2");
    Files.writeString(script, """
        #!/bin/sh
        # k2 from a bundle: the jlinked JRE next to this directory; k2's classes and its libraries' in the class store
        # ../lib/%s, which the system class loader dev.k2pekko.bundle.boot.StoreLoader reads.
        DIR="$(cd "$(dirname "$0")/.." && pwd)"
        exec "$DIR/jre/bin/java" ${K2_JVM_OPTS:--Xss2m -XX:+UseParallelGC} -Djava.awt.headless=true --add-modules jdk.incubator.vector \\
          --enable-native-access=ALL-UNNAMED \\
          --sun-misc-unsafe-memory-access=allow \\
          --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED \\
          --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED \\
          -Djava.system.class.loader=%s -cp "$DIR/lib/%s:$DIR/lib/%s" dev.k2pekko.launcher.K2 "$@"
        """.formatted(StoreLoader.STORE, StoreLoader.class.getName(), BOOT_JAR, xz.getFileName()));
    Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
    long bytes = size(dir);
    System.out.printf("k2: bundle in %s: %.1f MB = %.1f MiB%n  JRE %.1f MB: %s%s%n"
            + "  class store %.1f MB: %d jars (%.1f MB as jars), %,d classes kept, %,d nothing reaches left out, %.1f MB uncompressed%n",
        dir.toAbsolutePath(), bytes / 1e6, bytes / (double) (1 << 20), size(dir.resolve("jre")) / 1e6, String.join(",", MODULES), stripped,
        store.storeBytes() / 1e6, jars.size(), jarBytes(jars) / 1e6, store.classes(), store.classesLeftOut(), store.rawBytes() / 1e6);
    if (maxMb > 0 && bytes > maxMb * 1_000_000L) {
      System.err.printf("k2: the bundle is %.1f MB, over --max-mb %d%n", bytes / 1e6, maxMb);
      return 1;
    }
    return 0;
  }

  /** The boot jar: the class store's loader, which the JVM loads from the class path before anything else. */
  static final String BOOT_JAR = "k2-boot.jar";

  private static void writeBootJar(Path jar) throws IOException {
    String dir = StoreLoader.class.getPackageName().replace('.', '/') + "/";
    Path src;
    try {
      src = Path.of(StoreLoader.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    } catch (java.net.URISyntaxException e) {
      throw new IOException(e);
    }
    try (var zo = new ZipOutputStream(Files.newOutputStream(jar))) {
      zo.setLevel(Deflater.BEST_COMPRESSION);
      if (Files.isDirectory(src)) {
        try (Stream<Path> s = Files.list(src.resolve(dir))) {
          for (Path f : (Iterable<Path>) s.sorted()::iterator) {
            zo.putNextEntry(new ZipEntry(dir + f.getFileName()));
            zo.write(Files.readAllBytes(f));
            zo.closeEntry();
          }
        }
      } else {
        try (var z = new ZipFile(src.toFile())) {
          for (var e : java.util.Collections.list(z.entries())) {
            if (e.isDirectory() || !e.getName().startsWith(dir)) continue;
            zo.putNextEntry(new ZipEntry(e.getName()));
            try (InputStream in = z.getInputStream(e)) { in.transferTo(zo); }
            zo.closeEntry();
          }
        }
      }
    }
  }

  /**
   * Strips the symbol tables of the JRE's native libraries with {@code objcopy --strip-unneeded} where objcopy is on the
   * PATH (jlink's --strip-native-debug-symbols keeps them; libjvm.so's alone is 5 MB). Only crash reports lose names.
   */
  private static String stripNative(Path jre) throws IOException, InterruptedException {
    String objcopy = null;
    for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
      if (!d.isEmpty() && Files.isExecutable(Path.of(d, "objcopy"))) { objcopy = Path.of(d, "objcopy").toString(); break; }
    }
    if (objcopy == null) return "; no objcopy on the PATH: native libraries not stripped";
    List<Path> libs;
    try (Stream<Path> s = Files.walk(jre)) { libs = s.filter(p -> p.getFileName().toString().endsWith(".so")).toList(); }
    for (Path so : libs) {
      Path tmp = so.resolveSibling(so.getFileName() + ".tmp");
      var p = new ProcessBuilder(objcopy, "--strip-unneeded", so.toString(), tmp.toString()).inheritIO().start();
      if (!p.waitFor(2, TimeUnit.MINUTES) || p.exitValue() != 0) throw new IllegalStateException("objcopy failed on " + so);
      Files.move(tmp, so, StandardCopyOption.REPLACE_EXISTING);
    }
    return "; " + libs.size() + " native libraries stripped";
  }

  private static long jarBytes(List<Path> jars) throws IOException {
    long n = 0;
    for (Path j : jars) n += Files.size(j);
    return n;
  }

  static long size(Path p) throws IOException {
    try (Stream<Path> s = Files.walk(p)) {
      return s.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
    }
  }
}
