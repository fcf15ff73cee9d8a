package dev.k2pekko.agents.tasks;

import java.util.List;

/**
 * A generated task: the instruction, the plan the teacher follows, the rubric the judge applies, and the tools
 * offered to the agent. {@code difficulty} is the number of tool steps of the plan. Deterministic from
 * {@code seed}.
 */
public record Task(String id, String category, int difficulty, long seed, String prompt, List<PlanStep> plan,
                   Rubric rubric, List<String> toolsOffered) {}
