package dev.k2pekko.protocol;

/** Marker for messages that cross actors and nodes on the hot path: serialized by {@link KryoSerializer}. */
public interface KryoWire {}
