package dev.k2pekko.protocol;

import java.util.Map;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * One tool call of an episode. {@code arguments} holds JSON values: String, Long, Double, Boolean.
 * The world state the call acts on belongs to {@code episodeId} and lives in the tool worker that owns it.
 */
public record ToolCall(String episodeId, String callId, String tool, Map<String, Object> arguments,
                       ActorRef<ToolResult> replyTo) implements ToolCommand {}
