package dev.k2pekko.protocol;

import java.util.List;

/**
 * Journal event: a collector recorded a batch of judged trajectories, all of one tag. One event per batch keeps
 * the journal at one row (and one tag row) per batch instead of per trajectory: pekko-persistence-jdbc 1.1.1
 * inserts tagged events one statement each. Stored as Jackson CBOR. Journals written before it hold
 * {@link TrajectoryRecorded} events (one trajectory each); readers accept both.
 */
public record TrajectoriesRecorded(List<Trajectory> trajectories, String collector, long recordedAtMillis) implements JournalEvent {}
