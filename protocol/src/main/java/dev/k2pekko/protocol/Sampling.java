package dev.k2pekko.protocol;

/**
 * How a learned policy sampled an episode: the weights version it held for the whole episode, the sum of
 * log pi(token) over its action tokens under those weights at temperature 1, and the temperature it sampled at.
 */
public record Sampling(long version, double logProb, double temperature) implements KryoWire {}
