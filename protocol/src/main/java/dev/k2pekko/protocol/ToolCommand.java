package dev.k2pekko.protocol;

/** What a tool worker accepts: the opening of an episode, calls within it, and its end. */
public sealed interface ToolCommand extends KryoWire permits OpenEpisode, ToolCall, EndEpisode {}
