package dev.k2pekko.agents.policy;

import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.protocol.Step;

/**
 * Decides an agent's actions within one episode. {@link #start} is called once per episode; {@link #next} gets
 * the step that the previous action produced (null on the first call) and returns the next action.
 */
public interface Policy {
  String name();

  Episode start(Task task, long seed);

  interface Episode {
    Action next(Step previous);
  }
}
