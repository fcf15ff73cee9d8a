package dev.k2pekko.launcher;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Output paths checked before anything starts: a bad one is one line and exit 2, never a stack trace at the end. */
final class OutputPaths {
  private OutputPaths() {}

  /**
   * Creates (empty) and returns {@code out}'s sibling {@code out.part}, which the command writes and then moves onto
   * {@code out}; refuses a directory, a missing or unwritable parent, and anything the file system will not create.
   */
  static Path partFile(Path out) {
    if (Files.isDirectory(out)) throw new NodeConfig.UsageError("--out " + out + " is a directory; give a file name, e.g. " + out.resolve("trajectories.jsonl"));
    var parent = out.toAbsolutePath().getParent();
    if (parent == null || !Files.isDirectory(parent)) throw new NodeConfig.UsageError("--out " + out + ": no directory " + parent);
    var tmp = out.resolveSibling(out.getFileName() + ".part");
    try {
      Files.deleteIfExists(tmp);
      Files.createFile(tmp);
    } catch (IOException | SecurityException e) {
      throw new NodeConfig.UsageError("--out " + out + ": cannot create a file in " + parent + " (" + reason(e) + ")");
    }
    return tmp;
  }

  /** A directory for output files, created if missing; refuses a file in its place and anything that cannot be created. */
  static Path directory(Path out) {
    if (Files.exists(out) && !Files.isDirectory(out)) throw new NodeConfig.UsageError("--out " + out + " is a file, not a directory");
    try {
      Files.createDirectories(out);
      var probe = Files.createTempFile(out, ".k2-write-check", "");
      Files.delete(probe);
    } catch (IOException | SecurityException e) {
      throw new NodeConfig.UsageError("--out " + out + ": cannot write there (" + reason(e) + ")");
    }
    return out;
  }

  /** What the file system said, in words rather than an exception's class name. */
  static String reason(Exception e) {
    return switch (e) {
      case java.nio.file.NoSuchFileException x -> "no such file or directory: " + x.getFile();
      case java.nio.file.AccessDeniedException x -> "permission denied: " + x.getFile();
      case java.nio.file.FileAlreadyExistsException x -> "a file is in the way: " + x.getFile();
      case java.nio.file.FileSystemException x -> x.getReason() != null ? x.getReason() + ": " + x.getFile() : String.valueOf(x.getFile());
      default -> String.valueOf(e.getMessage());
    };
  }
}
