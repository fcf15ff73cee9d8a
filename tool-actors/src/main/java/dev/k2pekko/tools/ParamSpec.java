package dev.k2pekko.tools;

import java.util.List;

/** One parameter of a tool, as JSON Schema describes it. {@code maxLength} 0 means unbounded. */
public record ParamSpec(String name, ParamType type, String description, boolean required, int maxLength, List<String> enumValues) {
  public static ParamSpec of(String name, ParamType type, String description) {
    return new ParamSpec(name, type, description, true, type == ParamType.STRING ? 512 : 0, List.of());
  }
}
