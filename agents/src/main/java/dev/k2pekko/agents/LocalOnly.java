package dev.k2pekko.agents;

/**
 * Marker for messages that never leave their node (timer ticks, adapter wrappers, calls to node-local judges):
 * excluded from {@code serialize-messages} checks because they are never serialized.
 */
public interface LocalOnly extends org.apache.pekko.actor.NoSerializationVerificationNeeded {}
