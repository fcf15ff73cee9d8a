package dev.k2pekko.agents;

import dev.k2pekko.agents.tasks.FileTasks;
import dev.k2pekko.agents.tasks.KnowledgeGraphTasks;
import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.tools.ToolUniverse;

/**
 * Which task each episode of a run plays: fixed by the run's seed, the agent and the episode, so every node that
 * plays an agent's episodes draws the same tasks (a moved agent, a resumed run). One per node ({@link NodeServices}).
 * The held-out draws are static: the pipeline's evaluations and the offline benches take their tasks from them.
 */
public final class TaskDraws {
  /** The synthesis' task bank. */
  private final TaskGenerator generator;
  /** Core-tool tasks of the training and held-out splits (the learned policy's). */
  private final TaskGenerator train, heldOut;
  /** The knowledge-graph tasks on the MCP memory server, where k2.mcp.knowledge-graph names it; else null. */
  private final KnowledgeGraphTasks graphTasks;
  /** The file tasks on the MCP filesystem server, where k2.mcp.files names it; else null. */
  private final FileTasks fileTasks;
  private final int maxSteps;

  /** From the config's {@code k2} section. */
  TaskDraws(com.typesafe.config.Config k2, ToolUniverse universe, TaskGenerator generator) {
    this.generator = generator;
    this.maxSteps = k2.getInt("policy.max-steps");
    this.train = new TaskGenerator(universe, maxSteps).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN)
        .withNotedShares(k2.getDouble("tasks.noted-share"), k2.getDouble("tasks.noted-rl-share"));
    this.heldOut = new TaskGenerator(universe, maxSteps).coreOnly(true).withSplit(TaskGenerator.Split.HELD_OUT);
    String kg = k2.getString("mcp.knowledge-graph");
    this.graphTasks = kg.isEmpty() ? null : new KnowledgeGraphTasks(kg);
    String fs = k2.getString("mcp.files");
    this.fileTasks = fs.isEmpty() ? null : new FileTasks(fs);
  }

  /**
   * The task of an agent's episode under a run's spec. "universe": the node's task bank, as in synthesis. "train"
   * and "held-out": core-tool tasks of that split; the agent's {@code rollouts} consecutive episodes share one task.
   * Held-out tasks are numbered over the run (agent number x tasks per agent + group) and task i has difficulty
   * 1 + i mod max-steps, so a run whose task count is a multiple of max-steps has every difficulty in equal shares.
   * "held-out-open": the fixed held-out open tasks, numbered the same way. A "train" task is an open one with
   * probability {@code openShare}, drawn from its seed.
   */
  public Task task(Agent.EpisodeSpec spec, long runSeed, String agentId, int episode, int episodes) {
    int group = episode / spec.rollouts();
    return switch (spec.tasks()) {
      case UNIVERSE -> generator.task(runSeed, agentId, episode);
      case KG, KG_TRAIN -> {
        // "kg": any instance (the synthesis); "kg-train": the training split's (the learned policy's)
        if (graphTasks == null) throw new IllegalStateException("kg tasks need k2.mcp.knowledge-graph (the memory server's name)");
        long seed = TaskGenerator.mix(runSeed * 0x9E3779B97F4A7C15L + agentId.hashCode() * 31L + group + 0x6B67L);
        yield graphTasks.task(seed, "kg-" + Long.toHexString(seed), 1 + (int) Math.floorMod(seed >>> 7, 3L),
            spec.tasks() == Agent.Tasks.KG ? TaskGenerator.Split.ALL : TaskGenerator.Split.TRAIN);
      }
      case KG_HELD_OUT -> {
        if (graphTasks == null) throw new IllegalStateException("kg tasks need k2.mcp.knowledge-graph (the memory server's name)");
        int perAgent = (episodes + spec.rollouts() - 1) / spec.rollouts();
        yield heldOutGraphTask(graphTasks, runSeed, (long) agentNumber(agentId) * perAgent + group);
      }
      case FS_HELD_OUT -> {
        if (fileTasks == null) throw new IllegalStateException("fs tasks need k2.mcp.files (the filesystem server's name)");
        int perAgent = (episodes + spec.rollouts() - 1) / spec.rollouts();
        long index = (long) agentNumber(agentId) * perAgent + group;
        yield fileTasks.task(TaskGenerator.mix(runSeed * 0xE7037ED1A0B428DBL + index), "fsh-" + index, 1 + (int) (index % 3), TaskGenerator.Split.HELD_OUT);
      }
      case FS, FS_TRAIN -> {
        if (fileTasks == null) throw new IllegalStateException("fs tasks need k2.mcp.files (the filesystem server's name)");
        long seed = TaskGenerator.mix(runSeed * 0x9E3779B97F4A7C15L + agentId.hashCode() * 31L + group + 0x6673L);
        yield fileTasks.task(seed, "fs-" + Long.toHexString(seed), 1 + (int) Math.floorMod(seed >>> 7, 3L),
            spec.tasks() == Agent.Tasks.FS ? TaskGenerator.Split.ALL : TaskGenerator.Split.TRAIN);
      }
      case TRAIN -> trainTask(train, spec, runSeed, agentId, group);
      case HELD_OUT_OPEN -> {
        int perAgent = (episodes + spec.rollouts() - 1) / spec.rollouts();
        yield heldOutOpenTask(heldOut, runSeed, (long) agentNumber(agentId) * perAgent + group);
      }
      case HELD_OUT -> {
        int perAgent = (episodes + spec.rollouts() - 1) / spec.rollouts();
        yield heldOutTask(heldOut, runSeed, (long) agentNumber(agentId) * perAgent + group, maxSteps);
      }
    };
  }

  /**
   * The training task of an agent's task group {@code group}: fixed by the run seed, the agent and the group; an open
   * task with probability {@code spec.openShare()} (drawn from the task's seed, so a run's share of open tasks is the
   * same whatever node plays them), else a noted task with probability {@code k2.tasks.noted-share} for the teacher,
   * {@code k2.tasks.noted-rl-share} for the learned policy ({@link TaskGenerator#notedDraw}), else a verifiable one of
   * the difficulty drawn by the spec's weights (or uniform).
   */
  static Task trainTask(TaskGenerator train, Agent.EpisodeSpec spec, long runSeed, String agentId, int group) {
    long seed = TaskGenerator.mix(runSeed * 0x9E3779B97F4A7C15L + agentId.hashCode() * 31L + group);
    if (spec.openShare() > 0 && unit(TaskGenerator.mix(seed ^ 0x0BE7A5C0FFEEL)) < spec.openShare()) {
      long bits = TaskGenerator.mix(seed ^ 0x6F70656EL);
      return train.openTask(seed, "ro-" + Long.toHexString(seed), TaskGenerator.openFacts((int) (bits >>> 33)));
    }
    var noted = train.notedDraw(seed, "rn-" + Long.toHexString(seed), spec.learned() ? train.notedRlShare() : train.notedShare());
    if (noted != null) return noted;
    double[] w = spec.difficultyWeights();
    if (w == null) return train.task(seed, "r-" + Long.toHexString(seed));
    return train.taskOfDifficulty(seed, "r-" + Long.toHexString(seed), drawDifficulty(w, TaskGenerator.mix(seed ^ 0x5DEECE66DL)));
  }

  /** A uniform draw in [0, 1) from 64 random bits. */
  private static double unit(long bits) {
    return (bits >>> 11) * 0x1.0p-53;
  }

  /**
   * Held-out open task {@code index} of a run seed (docs/LOOP.md, "Open tasks"): fixed by the seed and the index, it
   * gathers 2 + index mod 2 facts, and is never a training instance (the split by prompt hash). The pipeline's open
   * evaluation and the offline {@code k2 bench open} take their open tasks from here.
   */
  public static Task heldOutOpenTask(TaskGenerator heldOut, long runSeed, long index) {
    return heldOut.openTask(TaskGenerator.mix(runSeed * 0x3C6EF372FE94F82BL + index), "open-held-" + index, TaskGenerator.openFacts((int) index));
  }

  /**
   * Held-out task {@code index} of a run: fixed by the run seed and the index, difficulty 1 + index mod max-steps. Every
   * evaluation of a run, and the offline probes that compare with it (bench), take their tasks from here.
   */
  public static Task heldOutTask(TaskGenerator heldOut, long runSeed, long index, int maxSteps) {
    long seed = TaskGenerator.mix(runSeed * 0xD1B54A32D192ED03L + index);
    return heldOut.taskOfDifficulty(seed, "h-" + index, 1 + (int) (index % maxSteps));
  }

  /**
   * Held-out knowledge-graph task {@code index} of a run: fixed by the run seed and the index, difficulty 1 + index mod
   * 3 (equal shares in a set whose size is a multiple of 3), of the held-out split (never a training instance).
   */
  public static Task heldOutGraphTask(KnowledgeGraphTasks tasks, long runSeed, long index) {
    long seed = TaskGenerator.mix(runSeed * 0xA0761D6478BD642FL + index);
    return tasks.task(seed, "kgh-" + index, 1 + (int) (index % 3), TaskGenerator.Split.HELD_OUT);
  }

  /** Difficulty 1..w.length drawn with probabilities proportional to w, from a uniform draw given by {@code bits}. */
  static int drawDifficulty(double[] w, long bits) {
    double sum = 0;
    for (double x : w) sum += x;
    double u = (bits >>> 11) * 0x1.0p-53 * sum;
    for (int d = 0; d < w.length; d++) {
      u -= w[d];
      if (u < 0) return d + 1;
    }
    for (int d = w.length - 1; d >= 0; d--) if (w[d] > 0) return d + 1; // rounding at the top end
    throw new IllegalArgumentException("difficulty weights must not all be 0");
  }

  /** The number of agent {@code agent-<n>}. */
  static int agentNumber(String agentId) {
    int dash = agentId.lastIndexOf('-');
    try {
      return Integer.parseInt(agentId.substring(dash + 1));
    } catch (NumberFormatException e) {
      return Math.floorMod(agentId.hashCode(), 1 << 20);
    }
  }
}
