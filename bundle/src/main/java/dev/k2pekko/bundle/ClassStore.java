package dev.k2pekko.bundle;

import dev.k2pekko.bundle.boot.StoreLoader;
import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import java.util.jar.JarFile;
import java.util.zip.ZipFile;
import org.tukaani.xz.LZMA2Options;
import org.tukaani.xz.XZOutputStream;

/**
 * Writes the class store {@link StoreLoader} reads: the entries of the given jars, in class-path order, as one xz
 * stream (LZMA2, preset 9). Compressing all classes together is what makes it small: a jar deflates each class alone,
 * while the classes of one library share most of their constant-pool strings. Multi-release jars are resolved for the
 * running Java's version; directories, {@code module-info.class} and signature files are left out, and the classes
 * that {@code keep} rejects ({@link JarShrink}: what nothing can reach).
 */
final class ClassStore {
  private ClassStore() {}

  record Stats(int entries, int classes, int classesLeftOut, long rawBytes, long storeBytes) {}

  /**
   * Writes the entries of {@code jars} to {@code out}: the classes only where {@code keep} takes their internal name, and
   * without their debugging attributes ({@link DebugStrip}) unless their jar is in {@code keepDebug}.
   */
  static Stats write(List<Path> jars, Predicate<String> keep, Set<Path> keepDebug, Path out) throws IOException {
    int count = 0, classes = 0, left = 0;
    long raw = 0;
    var options = new LZMA2Options(9);  // xz -9e: 64 MiB dictionary, longest matches, deepest search
    options.setNiceLen(273);
    options.setDepthLimit(512);
    try (var d = new DataOutputStream(new BufferedOutputStream(new XZOutputStream(new BufferedOutputStream(Files.newOutputStream(out), 1 << 16), options), 1 << 16))) {
      d.writeInt(StoreLoader.MAGIC);
      d.writeInt(StoreLoader.VERSION);
      d.writeInt(jars.size());
      for (Path j : jars) d.writeUTF(j.getFileName().toString());
      for (int i = 0; i < jars.size(); i++) {
        try (var jar = new JarFile(jars.get(i).toFile(), false, ZipFile.OPEN_READ, Runtime.version())) {
          for (var e : (Iterable<java.util.jar.JarEntry>) jar.versionedStream()::iterator) {
            String name = e.getName();
            if (e.isDirectory() || name.endsWith("module-info.class") || name.startsWith("META-INF/versions/") || signature(name)) continue;
            if (name.endsWith(".class")) {
              if (!keep.test(name.substring(0, name.length() - ".class".length()))) {
                left++;
                continue;
              }
              classes++;
            }
            byte[] bytes;
            try (InputStream in = jar.getInputStream(e)) { bytes = in.readAllBytes(); }
            if (name.endsWith(".class") && !keepDebug.contains(jars.get(i))) bytes = DebugStrip.strip(bytes);
            d.writeInt(i);
            d.writeUTF(name);
            d.writeInt(bytes.length);
            d.write(bytes);
            count++;
            raw += bytes.length;
          }
        }
      }
      d.writeInt(-1);
    }
    return new Stats(count, classes, left, raw, Files.size(out));
  }

  private static boolean signature(String name) {
    if (!name.startsWith("META-INF/") || name.indexOf('/', "META-INF/".length()) >= 0) return false;
    return name.endsWith(".SF") || name.endsWith(".RSA") || name.endsWith(".DSA") || name.endsWith(".EC");
  }
}
