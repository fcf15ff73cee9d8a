package dev.k2pekko.protocol;

/** Marker for events stored in the journal: serialized with Jackson CBOR so they can evolve. */
public interface JournalEvent {}
