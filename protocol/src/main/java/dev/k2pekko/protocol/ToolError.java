package dev.k2pekko.protocol;

/**
 * Structured tool-call failures. {@link #refusal()} tells the firewall's refusals: the call never reached the tool.
 */
public enum ToolError {
  UNKNOWN_TOOL, INVALID_ARGUMENTS, PAYLOAD_TOO_LARGE, TRANSIENT_FAILURE, TIMEOUT, INTERNAL,
  /** the tool was not among those offered to the episode (or the episode was never opened) */
  NOT_OFFERED,
  /** the agent's or the tool's token bucket was empty */
  RATE_LIMITED,
  /** a path argument leaves the sandbox: {@code ..}, an absolute path outside it, or a symlink out of it */
  PATH_OUTSIDE_SANDBOX,
  /** the tool ran and reported an error itself (an MCP result with {@code isError}) */
  TOOL_FAILED;

  /** Whether the firewall refused the call before it reached the tool. */
  public boolean refusal() {
    return this == NOT_OFFERED || this == RATE_LIMITED || this == PATH_OUTSIDE_SANDBOX || this == PAYLOAD_TOO_LARGE;
  }
}
