package dev.k2pekko.protocol;

import java.util.List;

/**
 * A judged episode: the task as the agent saw it, every tool call, the final answer and the verdict.
 * {@code tools} names the tool specs offered to the agent (for export in chat format). {@code sampling} is set when
 * a learned policy played the episode (the weights version and log pi of its actions, the RL loss's pi_old), and
 * null for the teacher and for journals written before it existed. {@code served} is set when a served LLM played it
 * over HTTP ({@link Served}: its log-probabilities where the server gave them), null otherwise.
 */
public record Trajectory(String trajectoryId, String taskId, String category, int difficulty, long seed,
                         String system, String prompt, List<String> tools, List<Step> steps, String finalAnswer,
                         Verdict verdict, String policy, Sampling sampling, Served served) implements KryoWire {

  /** A trajectory not played by a served LLM. */
  public Trajectory(String trajectoryId, String taskId, String category, int difficulty, long seed, String system,
                    String prompt, List<String> tools, List<Step> steps, String finalAnswer, Verdict verdict, String policy, Sampling sampling) {
    this(trajectoryId, taskId, category, difficulty, seed, system, prompt, tools, steps, finalAnswer, verdict, policy, sampling, null);
  }

  /** A teacher's (or any unsampled) trajectory. */
  public Trajectory(String trajectoryId, String taskId, String category, int difficulty, long seed, String system,
                    String prompt, List<String> tools, List<Step> steps, String finalAnswer, Verdict verdict, String policy) {
    this(trajectoryId, taskId, category, difficulty, seed, system, prompt, tools, steps, finalAnswer, verdict, policy, null, null);
  }

  public Trajectory withVerdict(Verdict v) {
    return new Trajectory(trajectoryId, taskId, category, difficulty, seed, system, prompt, tools, steps, finalAnswer, v, policy, sampling, served);
  }
}
