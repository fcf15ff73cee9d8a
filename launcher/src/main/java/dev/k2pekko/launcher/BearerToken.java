package dev.k2pekko.launcher;

import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The bearer token an HTTP endpoint of k2 requires (the operations endpoint, {@code k2 serve}): from a file (its first
 * line) or an environment variable. An endpoint bound to anything but a loopback address must have one.
 */
final class BearerToken {
  private BearerToken() {}

  /**
   * The token, or null when neither {@code file} nor {@code env} gives one; a UsageError when {@code host} is not a
   * loopback address and there is none, or when the token is too short or has characters a header cannot carry.
   */
  static String read(String fileFlag, String file, String env, String hostFlag, String host) {
    String t = null;
    String from = null;
    if (file != null) {
      from = fileFlag + " " + file;
      try {
        t = Files.readAllLines(Path.of(file), StandardCharsets.UTF_8).stream().findFirst().orElse("").strip();
      } catch (IOException e) {
        throw new NodeConfig.UsageError(from + ": cannot read it (" + e.getMessage() + ")");
      }
    } else if (System.getenv(env) != null) {
      from = env;
      t = System.getenv(env).strip();
    }
    if (t != null && (t.length() < 16 || !t.matches("[A-Za-z0-9._~+/=-]+"))) {
      throw new NodeConfig.UsageError(from + ": the token must be at least 16 characters of A-Z a-z 0-9 . _ ~ + / = - (e.g. `openssl rand -hex 24`)");
    }
    if (t == null && !loopback(hostFlag, host)) {
      throw new NodeConfig.UsageError(hostFlag + " " + host + " is not a loopback address: the endpoint then needs a bearer token ("
          + fileFlag + " FILE, or " + env + ")");
    }
    return t;
  }

  private static boolean loopback(String hostFlag, String host) {
    try {
      return InetAddress.getByName(host).isLoopbackAddress();
    } catch (UnknownHostException e) {
      throw new NodeConfig.UsageError(hostFlag + " " + host + ": unknown host");
    }
  }

  /** Whether an Authorization header's value is "Bearer " and the token (compared in constant time). */
  static boolean authorizes(String token, String authorization) {
    if (authorization == null || !authorization.startsWith("Bearer ")) return false;
    return java.security.MessageDigest.isEqual(token.getBytes(StandardCharsets.UTF_8), authorization.substring(7).strip().getBytes(StandardCharsets.UTF_8));
  }
}
