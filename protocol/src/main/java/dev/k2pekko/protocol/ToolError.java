package dev.k2pekko.protocol;

/** Structured tool-call failures. */
public enum ToolError {
  UNKNOWN_TOOL, INVALID_ARGUMENTS, PAYLOAD_TOO_LARGE, TRANSIENT_FAILURE, TIMEOUT, INTERNAL
}
