package dev.k2pekko.protocol;

import java.util.List;

/**
 * A judged episode: the task as the agent saw it, every tool call, the final answer and the verdict.
 * {@code tools} names the tool specs offered to the agent (for export in chat format).
 */
public record Trajectory(String trajectoryId, String taskId, String category, int difficulty, long seed,
                         String system, String prompt, List<String> tools, List<Step> steps, String finalAnswer,
                         Verdict verdict, String policy) implements KryoWire {}
