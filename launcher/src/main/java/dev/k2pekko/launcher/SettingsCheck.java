package dev.k2pekko.launcher;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigValueType;

/**
 * Reads every {@code k2.*} setting the way its default is typed, before anything boots: Typesafe Config checks types
 * only when a value is read, which for a late-read setting means a stack trace long after the run started. A number must be a number (an integer where the default is one), a boolean a boolean, a duration or a size
 * a duration or a size, a list a list.
 */
final class SettingsCheck {
  private SettingsCheck() {}

  private static final java.util.Set<String> SWITCH = java.util.Set.of("on", "off", "yes", "no", "true", "false");

  /** The ranges the readers of some settings enforce, checked here before anything boots; the first one out is a {@link NodeConfig.UsageError}. */
  static void ranges(Config config, String source) {
    if (config.hasPath("k2.reward")) {
      try {
        dev.k2pekko.trainer.Reward.Weights.fromConfig(config);
      } catch (IllegalArgumentException | com.typesafe.config.ConfigException e) {
        throw new NodeConfig.UsageError(source + ": " + e.getMessage());
      }
    }
    if (config.hasPath("k2.open")) {
      try {
        dev.k2pekko.pipeline.Pipeline.Open.fromConfig(config); // the shares in [0, 1], the eval tasks >= 0
      } catch (IllegalArgumentException | com.typesafe.config.ConfigException e) {
        throw new NodeConfig.UsageError(source + ": " + e.getMessage());
      }
    }
    if (!config.hasPath("k2.ps")) return;
    try {
      dev.k2pekko.pipeline.TrainerNode.ClipSettings.of(config);
    } catch (IllegalArgumentException e) {
      throw new NodeConfig.UsageError(source + ": " + e.getMessage());
    }
  }

  /** Throws a {@link NodeConfig.UsageError} naming the first setting of {@code config} that does not fit {@code defaults}. */
  static void against(Config config, Config defaults, String source) {
    if (!defaults.hasPath("k2")) return;
    for (var e : defaults.getConfig("k2").entrySet()) {
      String path = "k2." + e.getKey();
      if (!config.hasPath(path)) continue;
      var def = e.getValue();
      if (CHOICES.containsKey(path)) continue; // its words, below: k2.ps.qk-clip's default reads as a switch, but it takes adaptive too
      String want = null;
      try {
        switch (def.valueType()) {
          case NUMBER -> {
            boolean integral = (def.unwrapped() instanceof Integer || def.unwrapped() instanceof Long) && !FRACTIONAL.contains(path);
            want = integral ? "an integer" : "a number";
            var n = config.getNumber(path);
            if (integral && (n instanceof Double d) && d != Math.rint(d)) throw bad(path, config, want, source);
            if (integral) config.getLong(path);
          }
          case BOOLEAN -> {
            want = "on/off (true/false)";
            config.getBoolean(path);
          }
          case LIST -> {
            want = "a list";
            config.getList(path);
          }
          case STRING -> {
            String d = defaults.getString(path);
            boolean numeric = !d.isBlank() && Character.isDigit(d.charAt(0));
            if (SWITCH.contains(d)) {
              want = "on/off (true/false)";
              config.getBoolean(path);
            } else if (numeric && parses(() -> defaults.getDuration(path))) {
              want = "a duration like " + def.render();
              config.getDuration(path);
            } else if (numeric && parses(() -> defaults.getBytes(path))) {
              want = "a size like " + def.render();
              config.getBytes(path);
            } else if (config.getValue(path).valueType() == ConfigValueType.OBJECT || config.getValue(path).valueType() == ConfigValueType.LIST) {
              throw bad(path, config, "a string", source);
            }
          }
          default -> { }
        }
      } catch (ConfigException.WrongType | ConfigException.BadValue x) {
        throw bad(path, config, want == null ? "like its default " + def.render() : want, source);
      }
    }
    choices(config, source);
  }

  /**
   * Numbers whose default is whole but which take fractions: HOCON reads a default written 16.0 as the integer 16 and
   * keeps no trace of the point once loaded, so the type of the default cannot say it.
   */
  private static final java.util.Set<String> FRACTIONAL = java.util.Set.of("k2.ps.tau", "k2.reward.verifiable", "k2.reward.critic",
      "k2.reward.cost", "k2.reward.safety", "k2.open.synthesis-share", "k2.open.rl-share", "k2.tasks.noted-share",
      "k2.tasks.noted-rl-share");

  /**
   * String settings that take one of a few words; checked here so that a typo is exit 2 before the node boots. Where on
   * and off are among the words, so are the other spellings of a switch (true, false, yes, no).
   */
  private static final java.util.Map<String, java.util.List<String>> CHOICES = java.util.Map.of(
      "k2.learner.rl-objective", java.util.List.of("k2", "filtered"),
      "k2.learner.rl-groups-count", java.util.List.of("signal", "all"),
      "k2.learner.sft-order", java.util.List.of("sealed", "arrival"),
      "k2.learner.backend", dev.k2pekko.ops.Backends.NAMES,
      "k2.ps.mode", java.util.List.of("sync", "async"),
      "k2.ps.qk-clip", java.util.List.of("on", "off", "adaptive"));

  private static void choices(Config config, String source) {
    CHOICES.forEach((path, allowed) -> {
      if (!config.hasPath(path)) return;
      var v = config.getValue(path);
      boolean scalar = v.valueType() == ConfigValueType.STRING || v.valueType() == ConfigValueType.BOOLEAN;
      String word = scalar ? config.getString(path).trim().toLowerCase(java.util.Locale.ROOT) : "";
      if (!allowed.contains(word) && !(allowed.contains("on") && SWITCH.contains(word))) {
        throw bad(path, config, "one of " + String.join(", ", allowed), source);
      }
    });
  }

  private static boolean parses(Runnable r) {
    try {
      r.run();
      return true;
    } catch (ConfigException e) {
      return false;
    }
  }

  private static NodeConfig.UsageError bad(String path, Config config, String want, String source) {
    var v = config.getValue(path);
    String where = v.origin().lineNumber() > 0 ? " (line " + v.origin().lineNumber() + ")" : "";
    return new NodeConfig.UsageError(source + ": " + path + " must be " + want + ", got " + v.render() + where);
  }
}
