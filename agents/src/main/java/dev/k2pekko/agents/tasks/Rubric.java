package dev.k2pekko.agents.tasks;

import java.util.List;
import java.util.Set;

/**
 * How an episode is judged: end-state checks on the world (verifiable), the expected final answer, the expected
 * tool-use pattern, a step budget, and tools that must not be called.
 */
public record Rubric(List<EndStateCheck> checks, String expectedAnswer, List<String> expectedTools, int stepBudget,
                     Set<String> forbiddenTools) {}
