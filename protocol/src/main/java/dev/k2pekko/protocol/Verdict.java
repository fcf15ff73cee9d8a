package dev.k2pekko.protocol;

import java.util.List;

/** The judge's verdict on an episode: verifiable (end-state) score, rubric score, and why it was rejected. */
public record Verdict(boolean accepted, double verifiableScore, double rubricScore, List<String> reasons) implements KryoWire {}
