package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.k2pekko.optim.QkClip;
import dev.k2pekko.pipeline.Pipeline;
import dev.k2pekko.pipeline.TrainerNode;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.ps.server.PsCoordinator;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** QK-Clip's settings as the launcher checks them before booting, and the clip part of a run's JSON summary. */
class ClipSettingsTest {
  static final Config DEFAULTS = ConfigFactory.load(ConfigFactory.parseResources("application.conf"));

  static Config with(String hocon) {
    return ConfigFactory.load(ConfigFactory.parseString(hocon).withFallback(ConfigFactory.parseResources("application.conf")));
  }

  @Test void qkClipTakesOnOffAdaptiveAndTheSpellingsOfASwitch() {
    for (var v : new String[] {"on", "off", "adaptive", "true", "false", "yes", "no", "\"adaptive\""}) {
      var c = with("k2.ps.qk-clip = " + v);
      SettingsCheck.against(c, DEFAULTS, "test");
      SettingsCheck.ranges(c, "test");
    }
    assertEquals(QkClip.Mode.ADAPTIVE, TrainerNode.ClipSettings.of(with("k2.ps.qk-clip = adaptive")).mode());
    assertEquals(QkClip.Mode.OFF, TrainerNode.ClipSettings.of(with("k2.ps.qk-clip = false")).mode());
    assertEquals(QkClip.Mode.ON, TrainerNode.ClipSettings.of(DEFAULTS).mode());
    for (var v : new String[] {"maybe", "2", "[on]"}) {
      var e = assertThrows(NodeConfig.UsageError.class, () -> SettingsCheck.against(with("k2.ps.qk-clip = " + v), DEFAULTS, "test"), v);
      assertTrue(e.getMessage().startsWith("test: k2.ps.qk-clip must be one of on, off, adaptive, got "), e.getMessage());
    }
  }

  @Test void theAdaptiveThresholdsAreReadFromTheirKeysAtTheRunsTau() {
    var s = TrainerNode.ClipSettings.of(with("k2.ps { qk-clip = adaptive, tau = 40, adaptive { kappa = 2, decay = 0.9, warmup = 5, floor = 0.5 } }"));
    assertEquals(40, s.tau(), 0.0);
    assertEquals(new dev.k2pekko.optim.AdaptiveThreshold.Config(40, 20, 2, 0.9, 5), s.adaptive());
    for (var bad : Map.of("k2.ps.tau = 0", "k2.ps.tau must be > 0, got 0.0", "k2.ps.adaptive.kappa = -1", "k2.ps.adaptive.kappa must be >= 0",
        "k2.ps.adaptive.decay = 1", "k2.ps.adaptive.decay must lie in (0, 1)", "k2.ps.adaptive.warmup = -2", "k2.ps.adaptive.warmup must be >= 0",
        "k2.ps.adaptive.floor = 0", "k2.ps.adaptive.floor must lie in (0, 1]", "k2.ps.clip-headroom = 1", "k2.ps.clip-headroom must lie in [0, 1)").entrySet()) {
      var e = assertThrows(NodeConfig.UsageError.class, () -> SettingsCheck.ranges(with(bad.getKey()), "--config f"), bad.getKey());
      assertTrue(e.getMessage().startsWith("--config f: " + bad.getValue()), e.getMessage());
    }
  }

  @Test void theJsonSummaryCountsTheRescaleCommandsAndTheMaximaAfterEachStep() throws Exception {
    // version 0 is the initial weights (over tau 10 there: not a step's fault); versions 1 and 2 come after a step
    var history = new ClipMonitorProtocol.History(10, 1, 2, List.of(
        new ClipMonitorProtocol.StepMaxLogits(0, new double[][] {{30, 1}}, 1, 1),
        new ClipMonitorProtocol.StepMaxLogits(1, new double[][] {{9, 10.5}}, 1, 1),
        new ClipMonitorProtocol.StepMaxLogits(2, new double[][] {{10, 4}}, 1, 1),
        new ClipMonitorProtocol.StepMaxLogits(3, new double[][] {{Double.NEGATIVE_INFINITY, Double.NEGATIVE_INFINITY}}, 1, 1)));
    var status = new PsCoordinator.Status("r", 3, 1, Map.of("heads_clipped", 2L, "steps", 3L), Map.of(), List.of(), Map.of(), -1, Map.of());
    var eval = new Pipeline.Eval("sft", 3, 1, 1, 1.0, new double[] {1.0}, Map.of(), Duration.ZERO);
    var r = new Pipeline.Result(eval, List.of(eval), eval, eval, Map.of(), status, history, 0, 0, new double[0], List.of(), List.of(),
        new Pipeline.CriticReport(List.of(), new Pipeline.CriticRound("eval-rl", 0, 0, 0, "eval-rl", 0, 0, Double.NaN, Duration.ZERO, null)),
        new Pipeline.RewardReport(dev.k2pekko.trainer.Reward.Weights.DEFAULT, List.of()),
        new Pipeline.OpenReport(Pipeline.Open.NONE, null, null, 0, 0, List.of()));
    var clip = new ObjectMapper().readTree(PipelineReport.json(r, QkClip.Mode.ON).toString()).get("clip");
    assertEquals("on", clip.get("mode").asText());
    assertEquals(2, clip.get("rescales").asLong());
    assertEquals(30.0, clip.get("largest_max_logit").asDouble(), 0.0);
    assertEquals(10.5, clip.get("largest_after_step").asDouble(), 0.0);
    assertEquals(1, clip.get("steps_over_tau_after_step").asInt());
    assertEquals(4, clip.get("steps").asInt());
    assertEquals("[[1,1]]", clip.get("clip_counts").toString());
    // the six finite values 1, 4, 9, 10, 10.5, 30 (step 3 computed nothing): nearest rank
    assertEquals("{\"p50\":9.0,\"p90\":30.0,\"p99\":30.0,\"p99.9\":30.0,\"p100\":30.0}", clip.get("head_max_quantiles").toString());
  }
}
