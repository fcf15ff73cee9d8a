package dev.k2pekko.bundle;

import java.io.IOException;
import java.io.InputStream;
import java.lang.classfile.Attributes;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.CodeElement;
import java.lang.classfile.CodeModel;
import java.lang.classfile.MethodModel;
import java.lang.classfile.attribute.InnerClassesAttribute;
import java.lang.classfile.attribute.NestMembersAttribute;
import java.lang.classfile.attribute.PermittedSubclassesAttribute;
import java.lang.classfile.constantpool.ClassEntry;
import java.lang.classfile.constantpool.MemberRefEntry;
import java.lang.classfile.constantpool.PoolEntry;
import java.lang.classfile.constantpool.StringEntry;
import java.lang.classfile.constantpool.Utf8Entry;
import java.lang.classfile.instruction.ConstantInstruction;
import java.lang.classfile.instruction.ExceptionCatch;
import java.lang.classfile.instruction.NewMultiArrayInstruction;
import java.lang.classfile.instruction.NewObjectInstruction;
import java.lang.classfile.instruction.NewReferenceArrayInstruction;
import java.lang.classfile.instruction.TypeCheckInstruction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.zip.ZipFile;

/**
 * Which classes of the libraries anything can reach, conservatively, so that {@code k2 bundle} leaves the others out.
 * The roots are every class of k2's own jars (kept whole) and every class that a text resource of any jar names
 * (reference.conf and other config, service files: FQCNs with {@code .} or {@code /}). From a kept class the closure
 * follows every name that any string of its constant pool spells: class references, descriptors, generic signatures,
 * annotation types, and string literals that are a class name (Pekko, Slick, the JDBC drivers, Kryo and Jackson load
 * classes by name). A class's own member classes are not followed when it only lists them (InnerClasses, NestMembers),
 * only when it uses them. A kept class also keeps its outer class and its Scala companion ({@code Foo} and
 * {@code Foo$}: Pekko loads {@code Foo$} when config names {@code Foo}). This is a class-level closure, not a
 * method-level one: a class is kept when any of its referrers is.
 */
final class JarShrink {
  private JarShrink() {}

  /** The internal names (a/b/C) of the classes to keep: all classes of {@code whole}, and what they reach in {@code libraries}. */
  static Set<String> reachable(List<Path> whole, List<Path> libraries) throws IOException {
    var owner = new HashMap<String, Path>();  // class -> the first jar on the class path that has it
    var all = new ArrayList<Path>(whole);
    all.addAll(libraries);
    var roots = new ArrayList<String>();
    var texts = new ArrayList<String>();
    for (Path jar : all) {
      try (var z = open(jar)) {
        for (var e : (Iterable<JarEntry>) z.versionedStream()::iterator) {
          String n = e.getName();
          if (e.isDirectory() || n.startsWith("META-INF/versions/")) continue;
          if (n.endsWith(".class")) {
            if (n.endsWith("module-info.class")) continue;
            String cls = n.substring(0, n.length() - ".class".length());
            owner.putIfAbsent(cls, jar);
            if (whole.contains(jar)) roots.add(cls);
          } else if (isText(n)) {
            if (n.startsWith("META-INF/services/")) texts.add(n.substring("META-INF/services/".length()));
            try (InputStream in = z.getInputStream(e)) { texts.add(new String(in.readAllBytes(), StandardCharsets.UTF_8)); }
          }
        }
      }
    }
    var kept = new HashSet<String>();
    var queue = new ArrayDeque<String>();
    Predicate<String> offer = c -> {
      if (!owner.containsKey(c) || !kept.add(c)) return false;
      queue.add(c);
      return true;
    };
    roots.forEach(offer::test);
    for (String t : texts) names(t, offer);
    var jars = new HashMap<Path, JarFile>();
    try {
      while (!queue.isEmpty()) {
        String c = queue.poll();
        offer.test(outer(c));
        offer.test(c.endsWith("$") ? c.substring(0, c.length() - 1) : c + "$");  // a Scala class and its companion
        Path jar = owner.get(c);
        JarFile z = jars.get(jar);
        if (z == null) jars.put(jar, z = open(jar));
        byte[] bytes;
        try (InputStream in = z.getInputStream(z.getJarEntry(c + ".class"))) { bytes = in.readAllBytes(); }
        references(ClassFile.of().parse(bytes), offer);
      }
    } finally {
      for (var z : jars.values()) z.close();
    }
    return kept;
  }

  /**
   * Offers what a class refers to: every class its constant pool names (superclass and interfaces, owners of the fields
   * and methods it uses, instruction operands, bootstrap arguments, thrown and caught types) except its own member
   * classes that it lists only as members (InnerClasses, NestMembers, PermittedSubclasses: reflection's view of it, not
   * a use), and every class name that its other strings spell (descriptors, signatures, annotations, string literals).
   */
  private static void references(ClassModel cm, Predicate<String> offer) {
    String self = cm.thisClass().asInternalName();
    var memberOnly = new HashSet<String>();
    var classNames = new HashSet<Utf8Entry>();
    for (PoolEntry pe : cm.constantPool()) if (pe instanceof ClassEntry ce) classNames.add(ce.name());
    for (var a : cm.attributes()) {
      switch (a) {
        case InnerClassesAttribute ic -> {
          for (var i : ic.classes()) {
            if (i.outerClass().isPresent() && i.outerClass().get().asInternalName().equals(self)) memberOnly.add(i.innerClass().asInternalName());
          }
        }
        case NestMembersAttribute nm -> nm.nestMembers().forEach(m -> memberOnly.add(m.asInternalName()));
        case PermittedSubclassesAttribute ps -> ps.permittedSubclasses().forEach(m -> memberOnly.add(m.asInternalName()));
        default -> {}
      }
    }
    // a member is used after all when code, a member reference or a bootstrap argument names it
    var used = new HashSet<String>();
    for (PoolEntry pe : cm.constantPool()) {
      if (pe instanceof MemberRefEntry m) used.add(m.owner().asInternalName());
      else if (pe instanceof StringEntry se) names(se.stringValue(), offer);
    }
    for (int i = 0; i < cm.constantPool().bootstrapMethodCount(); i++) {
      for (var arg : cm.constantPool().bootstrapMethodEntry(i).arguments()) if (arg instanceof ClassEntry ce) used.add(ce.asInternalName());
    }
    for (MethodModel m : cm.methods()) {
      m.findAttribute(Attributes.exceptions()).ifPresent(ex -> ex.exceptions().forEach(e -> used.add(e.asInternalName())));
      for (var code : (Iterable<CodeModel>) m.code().stream()::iterator) {
        for (CodeElement e : code) {
          switch (e) {
            case NewObjectInstruction i -> used.add(i.className().asInternalName());
            case NewReferenceArrayInstruction i -> used.add(i.componentType().asInternalName());
            case NewMultiArrayInstruction i -> used.add(i.arrayType().asInternalName());
            case TypeCheckInstruction i -> used.add(i.type().asInternalName());
            case ConstantInstruction.LoadConstantInstruction i when i.constantEntry() instanceof ClassEntry ce -> used.add(ce.asInternalName());
            case ExceptionCatch x -> x.catchType().ifPresent(t -> used.add(t.asInternalName()));
            default -> {}
          }
        }
      }
    }
    memberOnly.removeAll(used);
    for (PoolEntry pe : cm.constantPool()) {
      if (pe instanceof ClassEntry ce) {
        if (!memberOnly.contains(ce.asInternalName())) names(ce.asInternalName(), offer);
      } else if (pe instanceof Utf8Entry u && !classNames.contains(u)) {
        names(u.stringValue(), offer);
      }
    }
  }

  /** Whether a jar is one of k2's own (kept whole): it has classes under dev/k2pekko/. */
  static boolean isOwn(Path jar) throws IOException {
    try (var z = new ZipFile(jar.toFile())) {
      return z.stream().anyMatch(e -> e.getName().startsWith("dev/k2pekko/") && e.getName().endsWith(".class"));
    }
  }

  private static JarFile open(Path jar) throws IOException {
    return new JarFile(jar.toFile(), false, ZipFile.OPEN_READ, Runtime.version());
  }

  private static String outer(String c) {
    int d = c.indexOf('$', c.lastIndexOf('/') + 1);
    return d > 0 ? c.substring(0, d) : c;
  }

  private static boolean isText(String n) {
    return n.endsWith(".conf") || n.endsWith(".properties") || n.endsWith(".xml") || n.endsWith(".json") || n.startsWith("META-INF/services/");
  }

  /** Offers every class name {@code s} may spell: internal or dotted, plain or inside a descriptor or signature. */
  private static void names(String s, Predicate<String> offer) {
    int i = 0, n = s.length();
    while (i < n) {
      while (i < n && !part(s.charAt(i))) i++;
      int start = i;
      while (i < n && part(s.charAt(i))) i++;
      if (i > start) token(s.substring(start, i), offer);
    }
  }

  private static boolean part(char c) {
    return Character.isJavaIdentifierPart(c) || c == '/' || c == '.';
  }

  private static void token(String t, Predicate<String> offer) {
    if (t.indexOf('/') < 0 && t.indexOf('.') < 0) return;
    String internal = t.replace('.', '/');
    offer.test(internal);
    // descriptors: "IJLfoo/Bar" (primitives, then an object type) and arrays "[[Lfoo/Bar"
    int k = 0;
    while (k < internal.length() && "BCDFIJSZV[".indexOf(internal.charAt(k)) >= 0) k++;
    if (k < internal.length() && internal.charAt(k) == 'L') offer.test(internal.substring(k + 1));
    // "pkg.Foo.method"-like strings: every prefix that is a class
    for (int d = internal.lastIndexOf('/'); d > 0; d = internal.lastIndexOf('/', d - 1)) offer.test(internal.substring(0, d));
  }
}
