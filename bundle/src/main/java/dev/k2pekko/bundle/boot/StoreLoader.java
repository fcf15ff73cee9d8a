package dev.k2pekko.bundle.boot;

import java.io.BufferedInputStream;
import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URL;
import java.net.URLConnection;
import java.net.URLStreamHandler;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.security.ProtectionDomain;
import java.security.cert.Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.jar.Attributes;
import java.util.jar.Manifest;
import org.tukaani.xz.XZInputStream;

/**
 * The system class loader of a {@code k2 bundle}: the bundle keeps the jars of k2 and its libraries not as jars but as
 * one xz-compressed class store ({@code lib/k2-classes.xz}, written by {@code ClassStore}), which is less than half
 * their size because the classes of all jars are compressed together. This loader (made the system class loader by
 * {@code -Djava.system.class.loader}) reads the store into memory once at start and defines classes and serves
 * resources from it as a class path of those jars, in their order, would: the first jar that has a class defines it,
 * {@code getResources} gives every jar's copy (each {@code reference.conf}), multi-release jars were resolved for this
 * Java when the store was written, packages carry their jar's manifest versions, and each class's code source names its
 * jar. It depends on nothing but the JDK and the xz decoder.
 */
public final class StoreLoader extends ClassLoader {
  static {
    registerAsParallelCapable();
  }

  /** File name of the store, next to the jar that holds this class (or the path in system property {@code k2.store}). */
  public static final String STORE = "k2-classes.xz";
  /** First int of the store. */
  public static final int MAGIC = 0x4b324353;  // "K2CS"
  public static final int VERSION = 1;

  private record Entry(int jar, byte[] bytes) {}

  private final String[] jars;
  private final ProtectionDomain[] domains;
  private final Manifest[] manifests;
  private final Map<String, Object> entries;  // resource name -> Entry, or List<Entry> when several jars have it
  private final URLStreamHandler handler = new URLStreamHandler() {
    @Override protected URLConnection openConnection(URL u) throws IOException {
      String path;
      try {
        path = u.toURI().getPath();
      } catch (URISyntaxException e) {
        throw new IOException(e);
      }
      int slash = path.indexOf('/', 1);
      String jar = path.substring(1, slash), name = path.substring(slash + 1);
      for (Entry e : all(name)) {
        if (jars[e.jar].equals(jar)) {
          return new URLConnection(u) {
            @Override public void connect() { connected = true; }
            @Override public InputStream getInputStream() { return new ByteArrayInputStream(e.bytes); }
            @Override public long getContentLengthLong() { return e.bytes.length; }
          };
        }
      }
      throw new FileNotFoundException(u.toString());
    }
  };

  public StoreLoader(ClassLoader parent) throws IOException {
    super("k2-store", parent);
    Path store = storePath();
    var map = new HashMap<String, Object>(1 << 16);
    try (var in = new DataInputStream(new BufferedInputStream(new XZInputStream(new BufferedInputStream(Files.newInputStream(store), 1 << 16)), 1 << 16))) {
      if (in.readInt() != MAGIC || in.readInt() != VERSION) throw new IOException(store + " is not a k2 class store of version " + VERSION);
      jars = new String[in.readInt()];
      for (int i = 0; i < jars.length; i++) jars[i] = in.readUTF();
      for (int jar; (jar = in.readInt()) >= 0; ) {
        String name = in.readUTF();
        byte[] bytes = new byte[in.readInt()];
        in.readFully(bytes);
        var e = new Entry(jar, bytes);
        map.merge(name, e, (old, add) -> {
          @SuppressWarnings("unchecked") List<Entry> list = old instanceof List<?> l ? (List<Entry>) l : new ArrayList<>(List.of((Entry) old));
          list.add((Entry) add);
          return list;
        });
      }
    }
    entries = map;
    domains = new ProtectionDomain[jars.length];
    manifests = new Manifest[jars.length];
    Path dir = store.toAbsolutePath().getParent();
    for (int i = 0; i < jars.length; i++) {
      domains[i] = new ProtectionDomain(new CodeSource(dir.resolve(jars[i]).toUri().toURL(), (Certificate[]) null), null, this, null);
    }
    for (Entry e : all("META-INF/MANIFEST.MF")) manifests[e.jar] = new Manifest(new ByteArrayInputStream(e.bytes));
  }

  private static Path storePath() throws IOException {
    String p = System.getProperty("k2.store");
    if (p != null) return Path.of(p);
    try {
      return Path.of(StoreLoader.class.getProtectionDomain().getCodeSource().getLocation().toURI()).resolveSibling(STORE);
    } catch (URISyntaxException e) {
      throw new IOException(e);
    }
  }

  private List<Entry> all(String name) {
    Object o = entries.get(name);
    if (o == null) return List.of();
    if (o instanceof Entry e) return List.of(e);
    @SuppressWarnings("unchecked") List<Entry> list = (List<Entry>) o;
    return list;
  }

  private Entry first(String name) {
    Object o = entries.get(name);
    return o instanceof List<?> l ? (Entry) l.getFirst() : (Entry) o;
  }

  @Override protected Class<?> findClass(String name) throws ClassNotFoundException {
    Entry e = first(name.replace('.', '/').concat(".class"));
    if (e == null) throw new ClassNotFoundException(name);
    int dot = name.lastIndexOf('.');
    if (dot > 0) definePackage(name.substring(0, dot), e.jar);
    return defineClass(name, e.bytes, 0, e.bytes.length, domains[e.jar]);
  }

  private void definePackage(String pkg, int jar) {
    if (getDefinedPackage(pkg) != null) return;
    Manifest m = manifests[jar];
    Attributes a = m == null ? new Attributes() : m.getMainAttributes();
    try {
      definePackage(pkg, a.getValue(Attributes.Name.SPECIFICATION_TITLE), a.getValue(Attributes.Name.SPECIFICATION_VERSION),
          a.getValue(Attributes.Name.SPECIFICATION_VENDOR), a.getValue(Attributes.Name.IMPLEMENTATION_TITLE),
          a.getValue(Attributes.Name.IMPLEMENTATION_VERSION), a.getValue(Attributes.Name.IMPLEMENTATION_VENDOR), null);
    } catch (IllegalArgumentException alreadyDefined) {
      // another thread defined it first
    }
  }

  @Override protected URL findResource(String name) {
    Entry e = first(name);
    return e == null ? null : url(e.jar, name);
  }

  @Override protected Enumeration<URL> findResources(String name) {
    var urls = new ArrayList<URL>();
    for (Entry e : all(name)) urls.add(url(e.jar, name));
    return Collections.enumeration(urls);
  }

  @Override public InputStream getResourceAsStream(String name) {
    InputStream in = getParent().getResourceAsStream(name);
    if (in != null) return in;
    Entry e = first(name);
    return e == null ? null : new ByteArrayInputStream(e.bytes);
  }

  private URL url(int jar, String name) {
    try {
      return URL.of(new URI("k2store", null, "/" + jars[jar] + "/" + name, null), handler);
    } catch (URISyntaxException | java.net.MalformedURLException e) {
      throw new IllegalArgumentException(name, e);
    }
  }
}
