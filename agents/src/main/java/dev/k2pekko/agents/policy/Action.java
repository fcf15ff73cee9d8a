package dev.k2pekko.agents.policy;

import java.util.Map;

/** What a policy decides next: call a tool, or answer and end the episode. */
public sealed interface Action {
  record Call(String tool, Map<String, Object> arguments) implements Action {}

  record Answer(String text) implements Action {}
}
