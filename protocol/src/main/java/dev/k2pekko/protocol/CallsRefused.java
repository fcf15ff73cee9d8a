package dev.k2pekko.protocol;

import java.util.List;

/**
 * Journal event: the firewall of one node refused these tool calls (the audit trail {@code k2 replay --refusals}
 * reads, tag {@code firewall-refusals}). Stored as Jackson CBOR.
 */
public record CallsRefused(List<Refusal> refusals, String node) implements JournalEvent {

  /** One refused call: who made it, to which tool, why ({@code reason} is a {@link ToolError} name) and when. */
  public record Refusal(String episodeId, String agentId, String callId, String tool, String reason, String detail,
                        long atMillis) {}
}
