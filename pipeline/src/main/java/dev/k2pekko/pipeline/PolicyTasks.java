package dev.k2pekko.pipeline;

import com.typesafe.config.Config;
import dev.k2pekko.agents.Agent.Tasks;

/**
 * The learned policy's task family in a pipeline run ({@code k2.policy.tasks}): which tasks the teacher synthesizes
 * for SFT and RL rolls out on (the training split), and which the evaluations play (the held-out split, never
 * trained on). {@code core}: the core tools' tasks; {@code kg}: the knowledge-graph tasks on the MCP memory server;
 * {@code fs}: the file tasks on the MCP filesystem server.
 */
record PolicyTasks(String name, Tasks train, Tasks heldOut) {
  static final PolicyTasks CORE = new PolicyTasks("core", Tasks.TRAIN, Tasks.HELD_OUT);
  static final PolicyTasks KG = new PolicyTasks("kg", Tasks.KG_TRAIN, Tasks.KG_HELD_OUT);
  static final PolicyTasks FS = new PolicyTasks("fs", Tasks.FS_TRAIN, Tasks.FS_HELD_OUT);

  static PolicyTasks of(Config config) {
    String t = config.getString("k2.policy.tasks");
    return switch (t) {
      case "core" -> CORE;
      case "kg" -> KG;
      case "fs" -> FS;
      default -> throw new IllegalArgumentException("k2.policy.tasks must be core, kg or fs, got '" + t + "'");
    };
  }

  /** The core tasks' extras (difficulty weights over 1..max-steps, open tasks) are of the core task family only. */
  boolean core() { return this == CORE; }
}
