package dev.k2pekko.protocol;

import java.util.List;

/**
 * Journal events of a run record ({@code run|<runId>}): what was planned, and the episodes done so far. A run's
 * counts (episodes, accepted, persisted, ...) are a fold over these events, so the summary a resumed or finished
 * run prints is what the journal holds. Not tagged: trajectory readers never see them.
 */
public sealed interface RunEvent extends JournalEvent {
  /** The run's plan: {@code agents} agents of {@code episodesPerAgent} episodes each. */
  record RunPlanned(String runId, int agents, int episodesPerAgent, long seed, String persist) implements RunEvent {}

  /** Episodes whose outcome is durable (kept trajectories are in the journal), in the order they were recorded. */
  record EpisodesDone(List<EpisodeOutcome> outcomes) implements RunEvent {}
}
