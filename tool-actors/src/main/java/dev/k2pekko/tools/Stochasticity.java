package dev.k2pekko.tools;

/** Controlled noise of one tool: chance of a transient failure, of a partial result, and simulated latency. */
public record Stochasticity(double failureRate, double partialRate, long latencyMicros) {
  public static final Stochasticity NONE = new Stochasticity(0, 0, 0);
}
