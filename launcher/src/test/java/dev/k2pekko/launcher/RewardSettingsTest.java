package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.k2pekko.optim.QkClip;
import dev.k2pekko.pipeline.HackingFlag;
import dev.k2pekko.pipeline.Pipeline;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.ps.server.PsCoordinator;
import dev.k2pekko.trainer.Reward;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The reward's weights as the launcher checks them before booting, and the reward part of a run's summary and JSON. */
class RewardSettingsTest {
  @Test void theDefaultWeightsAreTheVerifiableRewardAlone() {
    assertEquals(Reward.Weights.DEFAULT, Reward.Weights.fromConfig(ClipSettingsTest.DEFAULTS));
    var c = ClipSettingsTest.with("k2.reward { critic = 0.5, cost = 0.02, safety = 1 }, k2.ps.tau = 16.5");
    SettingsCheck.against(c, ClipSettingsTest.DEFAULTS, "test");
    SettingsCheck.ranges(c, "test");
    assertEquals(new Reward.Weights(1, 0.5, 0.02, 1), Reward.Weights.fromConfig(c));
    assertEquals(16.5, c.getDouble("k2.ps.tau"), 0.0, "a fraction where the default is written 16.0");
  }

  @Test void badWeightsAreAUsageErrorNamingTheSetting() {
    for (var bad : Map.of("k2.reward.critic = -1", "k2.reward.critic must be a finite number >= 0, got -1.0",
        "k2.reward.safety = NaN", "k2.reward.safety must be a finite number >= 0",
        "k2.reward { verifiable = 0, critic = 0 }", "k2.reward.verifiable + k2.reward.critic must be > 0").entrySet()) {
      var e = assertThrows(NodeConfig.UsageError.class, () -> SettingsCheck.ranges(ClipSettingsTest.with(bad.getKey()), "--config f"), bad.getKey());
      assertTrue(e.getMessage().startsWith("--config f: " + bad.getValue()), e.getMessage());
    }
    var e = assertThrows(NodeConfig.UsageError.class, () -> SettingsCheck.against(ClipSettingsTest.with("k2.reward.cost = cheap"),
        ClipSettingsTest.DEFAULTS, "test"));
    assertTrue(e.getMessage().contains("k2.reward.cost must be a number"), e.getMessage());
  }

  @Test void theSummaryAndJsonShowTheWeightsAndEachRoundsWatchWithItsFlag() throws Exception {
    var rounds = HackingFlag.flag(List.of(new HackingFlag.Round("rl 1", 1, 800, 0.80, 0.75, false, null),
        new HackingFlag.Round("rl 2", 2, 800, 0.86, 0.70, false, null), HackingFlag.Round.failed("rl 3", "critic gone")));
    var weights = new Reward.Weights(1, 0.25, 0.01, 0.5);
    var history = new ClipMonitorProtocol.History(10, 1, 1, List.of());
    var status = new PsCoordinator.Status("r", 3, 1, Map.of(), Map.of(), List.of(), Map.of(), -1, Map.of());
    var eval = new Pipeline.Eval("sft", 3, 1, 1, 1.0, new double[] {1.0}, Map.of(), Duration.ZERO);
    var r = new Pipeline.Result(eval, List.of(eval), eval, eval, Map.of(), status, history, 0, 0, new double[0], List.of(), List.of(),
        new Pipeline.CriticReport(List.of(), new Pipeline.CriticRound("eval-rl", 0, 0, 0, "eval-rl", 0, 0, Double.NaN, Duration.ZERO, null)),
        new Pipeline.RewardReport(weights, rounds), new Pipeline.OpenReport(Pipeline.Open.NONE, null, null, 0, 0, List.of()));
    var json = new ObjectMapper().readTree(PipelineReport.json(r, QkClip.Mode.ON).toString());
    assertEquals("{\"verifiable\":1.0,\"critic\":0.25,\"cost\":0.01,\"safety\":0.5}", json.get("reward_weights").toString());
    var watch = json.get("rl_round_watch");
    assertEquals(3, watch.size());
    assertEquals(0.86, watch.get(1).get("critic_mean").asDouble(), 0.0);
    assertEquals(0.70, watch.get(1).get("hidden_success").asDouble(), 0.0);
    assertEquals(List.of(false, true, false), List.of(watch.get(0).get("flagged").asBoolean(), watch.get(1).get("flagged").asBoolean(),
        watch.get(2).get("flagged").asBoolean()));
    assertTrue(watch.get(2).get("critic_mean").isNull());
    assertEquals("critic gone", watch.get(2).get("problem").asText());
    String lines = PipelineReport.rewardLines(r.reward());
    assertTrue(lines.startsWith("reward: verifiable 1 + critic 0.25 - cost 0.01 per call - safety 0.5 per violation"), lines);
    assertTrue(lines.contains("rl 2 0.860 / 70.0% FLAGGED;"), lines);
    assertTrue(lines.contains("1 round(s) flagged"), lines);
    assertTrue(lines.contains("hacking watch, rl 3: critic gone"), lines);
  }

  @Test void openSettingsAreCheckedBeforeBooting() {
    var c = ClipSettingsTest.with("k2.open { synthesis-share = 0.25, rl-share = 0.5, eval-tasks = 10 }");
    SettingsCheck.against(c, ClipSettingsTest.DEFAULTS, "test");
    SettingsCheck.ranges(c, "test");
    assertEquals(new Pipeline.Open(0.25, 0.5, 10), Pipeline.Open.fromConfig(c));
    // the default since session 13 (pipeline's reference.conf says why): a sixth of the synthesis open, 15% of RL, 60 evaluated
    assertEquals(new Pipeline.Open(0.1666667, 0.15, 60), Pipeline.Open.fromConfig(ClipSettingsTest.DEFAULTS), "the default open shares");
    for (var bad : Map.of("k2.open.synthesis-share = 1.5", "k2.open.synthesis-share must lie in [0, 1], got 1.5",
        "k2.open.rl-share = -0.1", "k2.open.rl-share must lie in [0, 1], got -0.1",
        "k2.open.eval-tasks = -1", "k2.open.eval-tasks must be >= 0, got -1").entrySet()) {
      var e = assertThrows(NodeConfig.UsageError.class, () -> SettingsCheck.ranges(ClipSettingsTest.with(bad.getKey()), "--config f"), bad.getKey());
      assertTrue(e.getMessage().startsWith("--config f: " + bad.getValue()), e.getMessage());
    }
    var e = assertThrows(NodeConfig.UsageError.class, () -> SettingsCheck.against(ClipSettingsTest.with("k2.open.eval-tasks = 2.5"),
        ClipSettingsTest.DEFAULTS, "test"));
    assertTrue(e.getMessage().contains("k2.open.eval-tasks must be an integer"), e.getMessage());
  }

  @Test void theSummaryAndJsonHaveTheOpenBlock() throws Exception {
    var history = new ClipMonitorProtocol.History(10, 1, 1, List.of());
    var status = new PsCoordinator.Status("r", 3, 1, Map.of(), Map.of(), List.of(), Map.of(), -1, Map.of());
    var eval = new Pipeline.Eval("sft", 3, 1, 1, 1.0, new double[] {1.0}, Map.of(), Duration.ZERO);
    var openSft = new Pipeline.Eval("open-sft", 3, 60, 4, 0.55, new double[] {0.55, 0.4, 0.3, 0.25}, Map.of(), Duration.ZERO, "aa");
    var openRl = new Pipeline.Eval("open-rl", 9, 60, 4, 0.6125, new double[] {0.6125, 0.5, 0.4, 0.35}, Map.of(), Duration.ZERO, "bb");
    var watch = HackingFlag.flag(List.of(new HackingFlag.Round("rl 1", 1, 200, 0.02, 0.55, false, null),
        new HackingFlag.Round("rl 2", 2, 196, 0.27, 0.07, false, null)));
    var r = new Pipeline.Result(eval, List.of(eval), eval, eval, Map.of(), status, history, 0, 0, new double[0], List.of(), List.of(),
        new Pipeline.CriticReport(List.of(), new Pipeline.CriticRound("eval-rl", 0, 0, 0, "eval-rl", 0, 0, Double.NaN, Duration.ZERO, null)),
        new Pipeline.RewardReport(Reward.Weights.DEFAULT, List.of()),
        new Pipeline.OpenReport(new Pipeline.Open(0.2, 0.25, 60), openSft, openRl, 3600, 3100, watch));
    var open = new ObjectMapper().readTree(PipelineReport.json(r, QkClip.Mode.ON).toString()).get("open");
    assertEquals(0.55, open.get("sft").get("success").asDouble(), 0.0);
    assertEquals(0.6125, open.get("rl").get("success").asDouble(), 0.0);
    assertEquals(4, open.get("rl").get("pass_k").size());
    assertEquals(0.35, open.get("rl").get("pass_k").get(3).asDouble(), 0.0);
    assertEquals(6.25, open.get("rl_gain").asDouble(), 1e-9);
    assertEquals(3100, open.get("synthesis_kept").asLong());
    assertEquals(0.25, open.get("rl_share").asDouble(), 0.0);
    assertTrue(open.get("rl_round_watch").get(1).get("flagged").asBoolean());
    String lines = PipelineReport.openLines(r.open());
    assertTrue(lines.contains("held-out open set, 60 tasks x 4 trials: sft 55.0% (pass^4 0.250); rl 61.3% (pass^4 0.350); RL - SFT +6.3 points"), lines);
    assertTrue(lines.contains("synthesis: 3,600 open episodes, 3,100 kept for SFT by the public checks"), lines);
    assertTrue(lines.contains("rl 2 0.270 / 7.0% (196) FLAGGED;"), lines);

    // no open tasks and no open evaluation: nulls, and the line says so
    var none = new Pipeline.Result(eval, List.of(eval), eval, eval, Map.of(), status, history, 0, 0, new double[0], List.of(), List.of(),
        r.critic(), r.reward(), new Pipeline.OpenReport(new Pipeline.Open(0, 0, 0), null, null, 0, 0, List.of()));
    var empty = new ObjectMapper().readTree(PipelineReport.json(none, QkClip.Mode.ON).toString()).get("open");
    assertTrue(empty.get("sft").isNull() && empty.get("rl").isNull() && empty.get("rl_gain").isNull(), empty.toString());
    assertEquals("open tasks (success by the hidden rubric; synthesis share 0, rl share 0): no open evaluation (k2.open.eval-tasks = 0)",
        PipelineReport.openLines(none.open()));
  }
}
