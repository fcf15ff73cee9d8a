package dev.k2pekko.protocol;

import java.util.List;

/**
 * Opens an episode at its tool worker: the agent that plays it and the tools offered to it. The worker's firewall
 * refuses calls of the episode to any other tool, so a policy cannot reach beyond what its task offered. Sent before
 * the episode's first call (one sender, one receiver: Pekko keeps the order).
 */
public record OpenEpisode(String episodeId, String agentId, List<String> offered) implements ToolCommand {}
