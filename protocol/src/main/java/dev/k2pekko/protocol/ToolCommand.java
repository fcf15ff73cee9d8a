package dev.k2pekko.protocol;

/** What a tool worker accepts: calls within an episode, and the end of that episode. */
public sealed interface ToolCommand extends KryoWire permits ToolCall, EndEpisode {}
