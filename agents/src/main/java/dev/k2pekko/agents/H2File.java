package dev.k2pekko.agents;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;

/**
 * Checks, without opening it as a database, that an H2 MVStore file ({@code .mv.db}) is whole: a file header with a
 * valid checksum (two copies, blocks 0 and 1) naming the newest chunk it knows, and that chunk inside the file with a
 * valid header and footer. A truncated file fails here, where H2 itself would silently open an older version (a
 * quarter of a journal opens as an empty database) and, opened for writing, rewrite the file to match.
 * The tail of a chunk written after the header (the last write of a process killed with -9) is not checked: H2
 * rolls that back by design, and it cannot be told apart from a few lost blocks.
 */
public final class H2File {
  private H2File() {}

  private static final int BLOCK = 4096;
  private static final int FOOTER = 128;

  /** Throws {@link JournalSchema.Damaged} naming the file and what is wrong; reads only. */
  public static void verify(Path file) {
    try (var ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      String name = file.toAbsolutePath().toString();
      if (size == 0) throw damaged(name, "the file is empty");
      if (size < 2 * BLOCK) throw damaged(name, "the file is " + size + " bytes, shorter than its own header");
      Map<String, String> header = checksummed(read(ch, 0, BLOCK));
      if (header == null) header = checksummed(read(ch, BLOCK, BLOCK));
      if (header == null || !header.containsKey("H")) throw damaged(name, "no valid file header (both copies fail their checksum)");
      long blockSize = hex(header, "blockSize", BLOCK);
      long block = hex(header, "block", -1);
      String chunk = header.get("chunk");
      if (block < 0 || chunk == null) return; // a store that has not written a chunk yet
      if (size % blockSize != 0) throw damaged(name, "its size, " + size + " bytes, is not a whole number of " + blockSize + "-byte blocks: truncated");
      if ((block + 1) * blockSize > size) {
        throw damaged(name, "its header names chunk " + chunk + " at block " + block + ", past the end of the file (" + size / blockSize + " blocks): truncated");
      }
      var ch0 = chunkHeader(read(ch, block * blockSize, 1024));
      if (ch0 == null || !chunk.equals(ch0.get("chunk"))) throw damaged(name, "chunk " + chunk + " at block " + block + " has no valid header");
      long len = hex(ch0, "len", 1);
      if ((block + len) * blockSize > size) {
        throw damaged(name, "chunk " + chunk + " (blocks " + block + ".." + (block + len - 1) + ") runs past the end of the file (" + size / blockSize + " blocks): truncated");
      }
      var footer = checksummed(read(ch, (block + len) * blockSize - FOOTER, FOOTER));
      if (footer == null || !chunk.equals(footer.get("chunk"))) throw damaged(name, "chunk " + chunk + " has no valid footer");
    } catch (IOException e) {
      throw damaged(file.toAbsolutePath().toString(), "cannot be read: " + e.getMessage());
    }
  }

  private static JournalSchema.Damaged damaged(String file, String what) {
    return new JournalSchema.Damaged("the journal " + file + " is damaged: " + what + " (the file was left as it is; `k2 journal check` says more)");
  }

  private static byte[] read(FileChannel ch, long pos, int n) throws IOException {
    var buf = ByteBuffer.allocate(n);
    while (buf.hasRemaining()) {
      int r = ch.read(buf, pos + buf.position());
      if (r < 0) break;
    }
    return java.util.Arrays.copyOf(buf.array(), buf.position());
  }

  private static long hex(Map<String, String> m, String key, long fallback) {
    var v = m.get(key);
    if (v == null) return fallback;
    try {
      return Long.parseLong(v, 16);
    } catch (NumberFormatException e) {
      return fallback;
    }
  }

  /** A chunk's header: "chunk:id,len:n,..." up to the first newline (H2 writes no checksum there; the footer has one). */
  static Map<String, String> chunkHeader(byte[] bytes) {
    var s = new String(bytes, StandardCharsets.ISO_8859_1);
    int nl = s.indexOf('\n');
    if (nl < 0 || !s.startsWith("chunk:")) return null;
    var out = new HashMap<String, String>();
    for (var kv : s.substring(0, nl).strip().split(",")) {
      int c = kv.indexOf(':');
      if (c > 0) out.put(kv.substring(0, c), kv.substring(c + 1));
    }
    return out;
  }

  /** H2's "key:value,...,fletcher:hex" blocks (padded with blanks): the map, or null when the checksum fails. */
  static Map<String, String> checksummed(byte[] bytes) {
    int end = bytes.length;
    while (end > 0 && (bytes[end - 1] & 0xff) <= ' ') end--;
    var s = new String(bytes, 0, end, StandardCharsets.ISO_8859_1);
    int f = s.lastIndexOf(",fletcher:");
    if (f < 0) return null;
    long want;
    try {
      want = Long.parseLong(s.substring(f + 10).trim(), 16);
    } catch (NumberFormatException e) {
      return null;
    }
    if ((int) want != org.h2.mvstore.DataUtils.getFletcher32(bytes, 0, f)) return null;
    var out = new HashMap<String, String>();
    for (var kv : s.substring(0, f).split(",")) {
      int c = kv.indexOf(':');
      if (c > 0) out.put(kv.substring(0, c), kv.substring(c + 1));
    }
    return out;
  }
}
