package dev.k2pekko.protocol;

import java.util.Map;

/** The world state of one episode at its end: key to value, as the judge's end-state checks read it. */
public record WorldSnapshot(String episodeId, Map<String, String> state) implements KryoWire {}
