package dev.k2pekko.protocol;

import java.util.List;

/**
 * What a run counts of one judged episode, reported to the run's tracker only once it is durable: for a kept
 * trajectory once a collector confirmed it is in the journal, for one that is not kept (a rejection under
 * {@code --persist accepted}, any episode under {@code none}) at once. The tracker records it in the run's
 * {@link RunEvent}s; (agent, episode) is its key, so an episode redone after a node died counts once.
 *
 * @param agent the agent's number (entity {@code agent-<n>}); @param episode the episode's index within the agent's run
 * @param node the node that ran it ({@code system@host:port})
 * @param reasonKinds the kinds of the rejection reasons (empty when accepted)
 * @param taskId the task instance, for evaluations that count trials per task; null otherwise
 * @param kept whether the trajectory went to the journal
 * @param fingerprint a hash of the trajectory without its run id (steps, answer, verdict): equal runs sum to equal values
 */
public record EpisodeOutcome(int agent, int episode, String node, int toolCalls, int toolErrors, boolean accepted, int difficulty,
                             String category, List<String> reasonKinds, String taskId, boolean kept, long fingerprint) implements KryoWire {}
