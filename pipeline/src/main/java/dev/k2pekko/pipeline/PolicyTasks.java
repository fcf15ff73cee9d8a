package dev.k2pekko.pipeline;

import com.typesafe.config.Config;

/**
 * The learned policy's task family in a pipeline run ({@code k2.policy.tasks}): which tasks the teacher synthesizes
 * for SFT and RL rolls out on (the training split), and which the evaluations play (the held-out split, never
 * trained on). {@code core}: the core tools' tasks; {@code kg}: the knowledge-graph tasks on the MCP memory server;
 * {@code fs}: the file tasks on the MCP filesystem server.
 */
record PolicyTasks(String name, String train, String heldOut) {
  static final PolicyTasks CORE = new PolicyTasks("core", "train", "held-out");
  static final PolicyTasks KG = new PolicyTasks("kg", "kg-train", "kg-held-out");
  static final PolicyTasks FS = new PolicyTasks("fs", "fs-train", "fs-held-out");

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
