package dev.k2pekko.bundle;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Set;

/**
 * Removes the debugging attributes of a class file (what {@code javac -g:none} leaves out): {@code LineNumberTable},
 * {@code LocalVariableTable} and {@code LocalVariableTypeTable} of each method's code, and the class's
 * {@code SourceDebugExtension}. Nothing else changes: the bytecode, its offsets and stack maps, and the constant pool
 * stay as they were, so the class behaves the same; its stack traces show no line numbers. A class file it cannot
 * read is returned unchanged.
 */
final class DebugStrip {
  private DebugStrip() {}

  private static final Set<String> CODE_DEBUG = Set.of("LineNumberTable", "LocalVariableTable", "LocalVariableTypeTable");
  private static final Set<String> CLASS_DEBUG = Set.of("SourceDebugExtension");

  static byte[] strip(byte[] bytes) {
    try {
      return new DebugStrip.Rewriter(bytes).run();
    } catch (RuntimeException | IOException e) {
      return bytes;
    }
  }

  private static final class Rewriter {
    private final ByteBuffer in;
    private String[] utf8;
    private final ByteArrayOutputStream buf;
    private final DataOutputStream out;

    Rewriter(byte[] bytes) {
      in = ByteBuffer.wrap(bytes);
      buf = new ByteArrayOutputStream(bytes.length);
      out = new DataOutputStream(buf);
    }

    byte[] run() throws IOException {
      if (in.getInt() != 0xCAFEBABE) throw new IllegalArgumentException("not a class file");
      in.getInt();  // minor, major
      int count = u2();
      utf8 = new String[count];
      for (int i = 1; i < count; i++) {
        int tag = in.get() & 0xff;
        switch (tag) {
          case 1 -> {
            byte[] b = new byte[u2()];
            in.get(b);
            utf8[i] = new String(b, StandardCharsets.UTF_8);  // modified UTF-8; names of attributes are ASCII
          }
          case 3, 4, 9, 10, 11, 12, 17, 18 -> skip(4);
          case 5, 6 -> {
            skip(8);
            i++;
          }
          case 7, 8, 16, 19, 20 -> skip(2);
          case 15 -> skip(3);
          default -> throw new IllegalArgumentException("constant pool tag " + tag);
        }
      }
      out.write(in.array(), 0, in.position());  // header and constant pool, unchanged
      copy(6);  // access, this, super
      int interfaces = u2();
      out.writeShort(interfaces);
      copy(2 * interfaces);
      for (int members = 0; members < 2; members++) {  // fields, then methods
        int n = u2();
        out.writeShort(n);
        for (int m = 0; m < n; m++) {
          copy(6);  // access, name, descriptor
          attributes(Set.of(), true, out);
        }
      }
      attributes(CLASS_DEBUG, false, out);
      if (in.hasRemaining()) throw new IllegalArgumentException("trailing bytes");
      return buf.toByteArray();
    }

    /**
     * Copies an attribute table to {@code dest}, leaving out the attributes named in {@code drop}; a member's Code
     * attribute is copied with its own table stripped of {@link #CODE_DEBUG}.
     */
    private void attributes(Set<String> drop, boolean member, DataOutputStream dest) throws IOException {
      int n = u2();
      var kept = new ByteArrayOutputStream();
      var k = new DataOutputStream(kept);
      int keptCount = 0;
      for (int a = 0; a < n; a++) {
        int name = u2(), length = in.getInt();
        String attr = utf8[name];
        if (drop.contains(attr)) {
          skip(length);
          continue;
        }
        keptCount++;
        k.writeShort(name);
        if (member && "Code".equals(attr)) {
          int end = in.position() + length;
          byte[] code = code();
          if (in.position() != end) throw new IllegalArgumentException("Code attribute length");
          k.writeInt(code.length);
          k.write(code);
        } else {
          k.writeInt(length);
          k.write(in.array(), in.position(), length);
          skip(length);
        }
      }
      dest.writeShort(keptCount);
      kept.writeTo(dest);
    }

    private byte[] code() throws IOException {
      var saved = new ByteArrayOutputStream();
      var s = new DataOutputStream(saved);
      int start = in.position();
      skip(4);  // max_stack, max_locals
      int codeLength = in.getInt();
      skip(codeLength);
      int exceptions = u2();
      skip(8 * exceptions);
      s.write(in.array(), start, in.position() - start);
      attributes(CODE_DEBUG, false, s);
      return saved.toByteArray();
    }

    private int u2() {
      return in.getShort() & 0xffff;
    }

    private void skip(int n) {
      in.position(in.position() + n);
    }

    private void copy(int n) throws IOException {
      out.write(in.array(), in.position(), n);
      skip(n);
    }
  }
}
