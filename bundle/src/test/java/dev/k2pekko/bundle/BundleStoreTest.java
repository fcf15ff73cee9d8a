package dev.k2pekko.bundle;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.bundle.boot.StoreLoader;
import java.io.IOException;
import java.io.InputStream;
import java.lang.classfile.Attributes;
import java.lang.classfile.ClassFile;
import java.lang.classfile.CodeModel;
import java.lang.constant.ClassDesc;
import java.lang.constant.ConstantDescs;
import java.lang.constant.MethodTypeDesc;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.jar.Attributes.Name;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The pieces of {@code k2 bundle}'s class store: the store and its loader, the reachability closure, the debug strip. */
class BundleStoreTest {

  @Test void theStoreLoaderServesClassesAndResourcesLikeAClassPath(@TempDir Path dir) throws Exception {
    Path a = jar(dir.resolve("a.jar"), "1.2", Map.of("p/Hello.class", cls("p/Hello", "from a"), "reference.conf", text("a = 1")));
    Path b = jar(dir.resolve("b.jar"), null, Map.of("p/Hello.class", cls("p/Hello", "from b"), "reference.conf", text("b = 2"),
        "q/data.txt", text("data")));
    Path store = dir.resolve(StoreLoader.STORE);
    var stats = ClassStore.write(List.of(a, b), c -> true, Set.of(), store);
    assertEquals(2, stats.classes());
    System.setProperty("k2.store", store.toString());
    StoreLoader loader;
    try {
      loader = new StoreLoader(ClassLoader.getPlatformClassLoader());
    } finally {
      System.clearProperty("k2.store");
    }
    Class<?> hello = loader.loadClass("p.Hello");
    assertEquals("from a", hello.getMethod("hello").invoke(null), "the first jar on the class path defines a class");
    assertEquals("1.2", hello.getPackage().getImplementationVersion(), "packages carry their jar's manifest");
    assertTrue(hello.getProtectionDomain().getCodeSource().getLocation().toString().endsWith("/a.jar"));
    var confs = new ArrayList<String>();
    for (URL u : Collections.list(loader.getResources("reference.conf"))) {
      try (InputStream in = u.openStream()) { confs.add(new String(in.readAllBytes(), StandardCharsets.UTF_8)); }
    }
    assertEquals(List.of("a = 1", "b = 2"), confs, "every jar's copy of a resource, in class-path order");
    try (InputStream in = loader.getResourceAsStream("q/data.txt")) { assertEquals("data", new String(in.readAllBytes(), StandardCharsets.UTF_8)); }
    assertEquals(null, loader.getResource("q/none.txt"));
  }

  @Test void theClosureKeepsWhatOwnCodeAndConfigReachAndNothingElse(@TempDir Path dir) throws Exception {
    Path own = jar(dir.resolve("own.jar"), null, Map.of("dev/k2pekko/X.class", cls("dev/k2pekko/X", "x", "lib/Y")));
    Path lib = jar(dir.resolve("lib.jar"), null, Map.of(
        "lib/Y.class", cls("lib/Y", "y", "lib/V"),
        "lib/V.class", cls("lib/V", "v"),
        "lib/Z.class", cls("lib/Z", "z"),
        "lib/W.class", cls("lib/W", "w"),
        "lib/W$.class", cls("lib/W$", "companion"),
        "reference.conf", text("plugin = \"lib.W\"")));
    assertTrue(JarShrink.isOwn(own));
    assertFalse(JarShrink.isOwn(lib));
    var kept = JarShrink.reachable(List.of(own), List.of(lib));
    assertEquals(Set.of("dev/k2pekko/X", "lib/Y", "lib/V", "lib/W", "lib/W$"), kept);
  }

  @Test void debugStripDropsOnlyDebuggingAttributes() throws Exception {
    byte[] original;
    try (InputStream in = DebugStrip.class.getResourceAsStream("DebugStrip.class")) { original = in.readAllBytes(); }
    var before = ClassFile.of().parse(original);
    assertTrue(before.methods().stream().flatMap(m -> m.code().stream())
        .anyMatch(c -> c.findAttribute(Attributes.lineNumberTable()).isPresent()), "compiled with line numbers");
    byte[] stripped = DebugStrip.strip(original);
    assertTrue(stripped.length < original.length);
    var after = ClassFile.of().parse(stripped);
    assertEquals(before.methods().size(), after.methods().size());
    for (int i = 0; i < before.methods().size(); i++) {
      var c0 = before.methods().get(i).code();
      var c1 = after.methods().get(i).code();
      assertEquals(c0.isPresent(), c1.isPresent());
      if (c0.isEmpty()) continue;
      assertArrayEquals(((java.lang.classfile.attribute.CodeAttribute) c0.get()).codeArray(),
          ((java.lang.classfile.attribute.CodeAttribute) c1.get()).codeArray(), "the bytecode is unchanged");
      CodeModel code = c1.get();
      assertTrue(code.findAttribute(Attributes.lineNumberTable()).isEmpty());
      assertTrue(code.findAttribute(Attributes.localVariableTable()).isEmpty());
      assertEquals(c0.get().findAttribute(Attributes.stackMapTable()).isPresent(), code.findAttribute(Attributes.stackMapTable()).isPresent());
    }
    assertEquals(List.of(), ClassFile.of().verify(after), "the stripped class verifies");
    byte[] notAClass = {1, 2, 3};
    assertArrayEquals(notAClass, DebugStrip.strip(notAClass), "what it cannot read stays as it was");
  }

  /** A class with {@code public static String hello()} returning {@code value}, whose code loads each of {@code refs} as a class literal. */
  private static byte[] cls(String name, String value, String... refs) {
    return ClassFile.of().build(ClassDesc.ofInternalName(name), cb -> cb.withFlags(ClassFile.ACC_PUBLIC)
        .withMethodBody("hello", MethodTypeDesc.of(ConstantDescs.CD_String), ClassFile.ACC_PUBLIC | ClassFile.ACC_STATIC, code -> {
          for (String r : refs) code.ldc(ClassDesc.ofInternalName(r)).pop();
          code.ldc(value).areturn();
        }));
  }

  private static byte[] text(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static Path jar(Path path, String version, Map<String, byte[]> entries) throws IOException {
    var m = new Manifest();
    m.getMainAttributes().put(Name.MANIFEST_VERSION, "1.0");
    if (version != null) m.getMainAttributes().put(Name.IMPLEMENTATION_VERSION, version);
    try (var out = new JarOutputStream(Files.newOutputStream(path), m)) {
      for (var e : new java.util.TreeMap<>(entries).entrySet()) {
        out.putNextEntry(new JarEntry(e.getKey()));
        out.write(e.getValue());
        out.closeEntry();
      }
    }
    return path;
  }
}
