package dev.k2pekko.protocol;

/**
 * Journal event: every trajectory of the pipeline's synthesis part {@code part} (the trajectory ids before their first
 * '/') is in the journal. Written once the part's episodes are all persisted, tagged with every trajectory tag, so each
 * tag's stream holds it after all of that part's trajectories of the tag: a learner that has read it on each of its
 * tags holds the whole part and can train on it in a canonical order (docs/DESIGN.md, "Reproducible runs").
 * {@code ordinal} numbers the run's parts from 1. Stored as Jackson CBOR.
 */
public record PartSealed(String part, long ordinal, long sealedAtMillis) implements JournalEvent {}
