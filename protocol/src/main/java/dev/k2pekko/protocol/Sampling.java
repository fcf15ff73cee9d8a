package dev.k2pekko.protocol;

import java.util.List;

/**
 * How a learned policy sampled an episode: the weights version it held for the whole episode, the sum of
 * log pi(token) over its action tokens under those weights at temperature 1, the temperature it sampled at, and the
 * tokens it wrote for each action in order (what the log-probability is of: a learner computes log pi of exactly
 * these tokens, not of a re-rendering of the parsed call).
 */
public record Sampling(long version, double logProb, double temperature, List<int[]> actions) implements KryoWire {}
