package dev.k2pekko.launcher;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code k2 bundle --out DIR}: a self-contained runtime for a node without Java (a GPU learner host): a JRE made by
 * jlink from this JDK with only the modules the node needs, the jars of this k2 without ND4J and its natives (the
 * CUDA backend is the project's own, bound through FFM, and the plain-Java backend needs no natives), and
 * {@code bin/k2}. Its size is printed (and fails the command when it passes {@code --max-mb}).
 */
@Command(name = "bundle", mixinStandardHelpOptions = true,
    description = "Write a self-contained runtime image (jlinked JRE + the jars of a learner node, without ND4J's natives) "
        + "to DIR: DIR/bin/k2 node --roles learner ... runs on a host without Java.")
final class BundleCommand implements Callable<Integer> {
  /** Java modules the node uses: Pekko (unsupported, management, logging), JDBC (sql, naming), logback (xml). */
  static final List<String> MODULES = List.of("java.base", "java.logging", "java.management", "java.naming", "java.sql", "java.xml",
      "jdk.unsupported");

  /** Jars left out: ND4J and everything only it brings (its natives alone are over 100 MB). */
  static final List<String> LEFT_OUT = List.of("nd4j-", "javacpp-", "openblas-", "flatbuffers-java-", "protobuf-1.0.0-M2.1",
      "jackson-1.0.0-M2.1", "guava-1.0.0-M2.1", "oshi-core-", "jna-", "jna-platform-", "threetenbp-", "commons-net-", "neoitertools-",
      "byteunits-", "commons-math3-", "commons-collections4-", "commons-compress-", "commons-codec-", "commons-io-", "commons-lang3-",
      // LMDB and its JNR binding: only for a durable distributed-data store, which k2 does not use
      "lmdbjava-", "jnr-ffi-", "jnr-constants-", "jnr-a64asm-", "jnr-x86asm-", "jffi-");

  @Option(names = "--out", required = true, description = "directory to create (must not exist)") String out;

  @Option(names = "--max-mb", description = "fail when the image is larger than this many MB (default: no limit)", defaultValue = "0")
  int maxMb;

  @Override public Integer call() throws Exception {
    Path dir = Path.of(out);
    if (Files.exists(dir)) throw new NodeConfig.UsageError("--out: " + dir + " exists; give a new directory");
    Path jlink = Path.of(System.getProperty("java.home"), "bin", "jlink");
    if (!Files.isExecutable(jlink)) throw new NodeConfig.UsageError("no jlink in " + jlink.getParent() + ": run k2 with a full JDK 25");
    var jars = new ArrayList<Path>();
    for (String e : System.getProperty("java.class.path").split(File.pathSeparator)) {
      Path p = Path.of(e);
      String name = p.getFileName().toString();
      if (!name.endsWith(".jar") || !Files.isRegularFile(p)) continue;
      if (LEFT_OUT.stream().anyMatch(name::startsWith)) continue;
      jars.add(p);
    }
    var cmd = new ArrayList<>(List.of(jlink.toString(), "--add-modules", String.join(",", MODULES), "--strip-debug", "--no-header-files",
        "--no-man-pages", "--compress=zip-9", "--output", dir.resolve("jre").toString()));
    var proc = new ProcessBuilder(cmd).inheritIO().start();
    if (!proc.waitFor(5, TimeUnit.MINUTES) || proc.exitValue() != 0) throw new IllegalStateException("jlink failed: " + String.join(" ", cmd));
    Files.createDirectories(dir.resolve("lib"));
    for (var j : jars) Files.copy(j, dir.resolve("lib").resolve(j.getFileName()), StandardCopyOption.REPLACE_EXISTING);
    Files.createDirectories(dir.resolve("bin"));
    Path script = dir.resolve("bin").resolve("k2");
    Files.writeString(script, """
        #!/bin/sh
        # k2 from a bundle: the jlinked JRE next to this directory, the jars in ../lib.
        DIR="$(cd "$(dirname "$0")/.." && pwd)"
        exec "$DIR/jre/bin/java" ${K2_JVM_OPTS:--Xss2m -XX:+UseParallelGC} --enable-native-access=ALL-UNNAMED \\
          --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED \\
          --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED \\
          -cp "$DIR/lib/*" dev.k2pekko.launcher.K2 "$@"
        """);
    Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
    long bytes = size(dir);
    System.out.printf("k2: bundle in %s: %.1f MB (JRE %.1f MB with %s; %d jars %.1f MB)%n", dir.toAbsolutePath(), bytes / 1e6,
        size(dir.resolve("jre")) / 1e6, MODULES, jars.size(), size(dir.resolve("lib")) / 1e6);
    if (maxMb > 0 && bytes > maxMb * 1_000_000L) {
      System.err.printf("k2: the bundle is %.1f MB, over --max-mb %d%n", bytes / 1e6, maxMb);
      return 1;
    }
    return 0;
  }

  static long size(Path p) throws IOException {
    try (Stream<Path> s = Files.walk(p)) {
      return s.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
    }
  }
}
