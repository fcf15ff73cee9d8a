package dev.k2pekko.protocol;

/**
 * Journal event: a judged trajectory was recorded by a collector. Stored as Jackson CBOR.
 * Version history (see {@link TrajectoryRecordedMigration}): v1 had no {@code policy} in the trajectory;
 * v2 (current) names the policy that produced it.
 */
public record TrajectoryRecorded(Trajectory trajectory, String collector, long recordedAtMillis) implements JournalEvent {}
