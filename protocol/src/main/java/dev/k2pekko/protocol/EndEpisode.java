package dev.k2pekko.protocol;

import org.apache.pekko.actor.typed.ActorRef;

/** Ends an episode: the worker replies with the final world state and forgets it. */
public record EndEpisode(String episodeId, ActorRef<WorldSnapshot> replyTo) implements ToolCommand {}
