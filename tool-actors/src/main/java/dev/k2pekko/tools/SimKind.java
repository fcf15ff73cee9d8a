package dev.k2pekko.tools;

/** The simulator behind a tool: pure computation, a stateful resource of the episode's world, or a lookup. */
public enum SimKind { CALC, NOTES, FILES, KV, CART, CALENDAR, LOOKUP }
