package dev.k2pekko.protocol;

import java.util.Map;

/** One tool call of a trajectory and what came back. {@code error} is null for a successful call. */
public record Step(String callId, String tool, Map<String, Object> arguments, String result, String error, boolean partial)
    implements KryoWire {}
