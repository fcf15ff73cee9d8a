package dev.k2pekko.agents.tasks;

/** A verifiable check on the episode's final world state: {@code key} must hold {@code expected}. */
public record EndStateCheck(String key, String expected, String description) {}
