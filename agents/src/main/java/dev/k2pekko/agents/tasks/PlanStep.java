package dev.k2pekko.agents.tasks;

import java.util.Map;

/**
 * One step of a task's plan: the tool and its arguments. An argument whose value is {@link #PREVIOUS} takes the
 * value that the previous value-yielding step returned (data flows between steps). {@code yields} marks steps
 * whose result is a value (a sum, a lookup, a total) rather than an acknowledgement.
 */
public record PlanStep(String tool, Map<String, Object> arguments, boolean yields) {
  public static final String PREVIOUS = "$previous";
}
