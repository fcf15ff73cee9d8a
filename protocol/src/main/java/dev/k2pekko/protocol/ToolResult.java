package dev.k2pekko.protocol;

/**
 * The answer to a {@link ToolCall}. On failure {@code error} names the kind and {@code content} explains it;
 * an error is data for the agent, never an exception.
 */
public record ToolResult(String callId, ToolError error, String content, boolean partial) implements KryoWire {
  public static ToolResult ok(String callId, String content) { return new ToolResult(callId, null, content, false); }
  public static ToolResult partial(String callId, String content) { return new ToolResult(callId, null, content, true); }
  public static ToolResult failed(String callId, ToolError error, String message) { return new ToolResult(callId, error, message, false); }
  public boolean ok() { return error == null; }
}
