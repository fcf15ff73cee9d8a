package dev.k2pekko.ps.checkpoint;

import java.io.IOException;
import java.nio.file.Path;

/** A checkpoint or safetensors file that fails a check; the message names the file and what is wrong. */
public final class CorruptCheckpointException extends IOException {
  private final Path path;
  private final String reason;

  public CorruptCheckpointException(Path path, String reason) {
    this(path, reason, null);
  }

  public CorruptCheckpointException(Path path, String reason, Throwable cause) {
    super("corrupt checkpoint " + path + ": " + reason, cause);
    this.path = path;
    this.reason = reason;
  }

  /** The file that failed the check. */
  public Path path() {
    return path;
  }

  /** What is wrong with it, without the path. */
  public String reason() {
    return reason;
  }
}
