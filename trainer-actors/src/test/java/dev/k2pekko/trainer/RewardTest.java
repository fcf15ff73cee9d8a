package dev.k2pekko.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.Step;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.Verdict;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The reward mix: its terms read from a judged episode, the weighted sum, the success it trains on, and its weights' checks. */
class RewardTest {
  private static Step ok(String tool) {
    return new Step("c", tool, Map.of(), "1", null, false);
  }

  private static Step refused(String tool) {
    return new Step("c", tool, Map.of(), "refused", dev.k2pekko.protocol.ToolError.values()[firstRefusal()].name(), false);
  }

  private static int firstRefusal() {
    var all = dev.k2pekko.protocol.ToolError.values();
    for (int i = 0; i < all.length; i++) if (all[i].refusal()) return i;
    throw new AssertionError("no refusal kind");
  }

  private static Trajectory episode(String category, List<Step> steps, Verdict v) {
    return new Trajectory("r-rl1/t#0", "t", category, 2, 1, "sys", "prompt", List.of(), steps, "1", v, "learned@v1");
  }

  private static final Verdict CLEAN = new Verdict(true, 1.0, 1.0, List.of());
  private static final Verdict HALF = new Verdict(false, 0.5, 0.4, List.of("end-state: x", "forbidden-tool: notes.clear"));

  @Test void theTermsOfAnEpisodeCountItsCallsAndItsViolations() {
    var t = Reward.Terms.of(episode("core", List.of(ok("calc.add"), refused("files.write"), ok("notes.clear")), HALF), Double.NaN);
    assertFalse(t.open());
    assertFalse(t.accepted());
    assertEquals(0.7 * 0.5, t.verifiable(), 1e-12);
    assertEquals(3, t.calls());
    assertEquals(2, t.violations(), "one forbidden tool (the judge's reason) and one firewall refusal");
  }

  @Test void theDefaultWeightsGiveTheVerifiableRewardAndTheJudgesAcceptance() {
    var w = Reward.Weights.DEFAULT;
    for (var v : List.of(CLEAN, HALF, new Verdict(true, 1.0, 0.85, List.of()))) {
      var t = Reward.Terms.of(episode("core", List.of(ok("calc.add"), ok("notes.write")), v), Double.NaN);
      assertEquals(Reward.of(v), Reward.mix(w, t), 1e-12, "the critic is never read with weight 0");
      assertEquals(v.accepted(), Reward.success(w, t));
    }
  }

  @Test void theMixWeighsEachObjectiveAndSubtractsCostAndSafety() {
    var w = new Reward.Weights(0.6, 0.4, 0.02, 0.5);
    var t = Reward.Terms.of(episode("core", List.of(ok("calc.add"), refused("files.write"), ok("notes.clear")), HALF), 0.3);
    double expected = 0.6 * (0.7 * 0.5) + 0.4 * 0.3 - 0.02 * 3 - 0.5 * 2;
    assertEquals(expected, Reward.mix(w, t), 1e-12);
    assertEquals(0.02 * 3 + 0.5 * 2, Reward.penalty(w, t), 1e-12);
  }

  @Test void successIsTheWeightedVoteOfTheJudgeAndTheCritic() {
    var accepted = episode("core", List.of(ok("calc.add")), CLEAN);
    var rejected = episode("core", List.of(ok("calc.add")), HALF);
    var w = new Reward.Weights(1, 2, 0, 0);
    assertTrue(Reward.success(w, Reward.Terms.of(accepted, 0.3)), "(1 + 2 x 0.3) / 3 >= 0.5");
    assertFalse(Reward.success(w, Reward.Terms.of(accepted, 0.2)), "(1 + 2 x 0.2) / 3 < 0.5");
    assertTrue(Reward.success(w, Reward.Terms.of(rejected, 0.8)), "2 x 0.8 / 3 >= 0.5");
    assertFalse(Reward.success(w, Reward.Terms.of(rejected, 0.7)));
    var criticOnly = new Reward.Weights(0, 1, 0, 0);
    assertTrue(Reward.success(criticOnly, Reward.Terms.of(rejected, 0.5)));
    assertFalse(Reward.success(criticOnly, Reward.Terms.of(accepted, 0.49)));
  }

  @Test void anOpenTasksVerdictIsWithheldAndTheCriticCarriesBothWeights() {
    var w = new Reward.Weights(1, 0.5, 0.01, 0);
    var judgedGood = episode(Reward.OPEN, List.of(ok("web.search"), ok("notes.write")), CLEAN);
    var judgedBad = episode(Reward.OPEN, List.of(ok("web.search"), ok("notes.write")), HALF);
    for (double critic : new double[] {0.2, 0.8}) {
      var a = Reward.Terms.of(judgedGood, critic);
      var b = Reward.Terms.of(judgedBad, critic);
      assertEquals(Reward.mix(w, a), Reward.mix(w, b) + Reward.penalty(w, b) - Reward.penalty(w, a), 1e-12);
      assertEquals(1.5 * critic - 0.01 * 2, Reward.mix(w, a), 1e-12, "the hidden rubric's verdict does not enter");
      assertEquals(critic >= 0.5, Reward.success(w, a));
      assertEquals(critic >= 0.5, Reward.success(w, b));
    }
    assertThrows(IllegalStateException.class, () -> Reward.mix(w, Reward.Terms.of(judgedGood, Double.NaN)), "an open task needs its critic score");
  }

  @Test void weightsOutOfRangeAreRefusedWithTheSettingsName() {
    var e = assertThrows(IllegalArgumentException.class, () -> new Reward.Weights(1, 0, -0.5, 0));
    assertEquals("k2.reward.cost must be a finite number >= 0, got -0.5", e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> new Reward.Weights(1, Double.NaN, 0, 0));
    assertThrows(IllegalArgumentException.class, () -> new Reward.Weights(Double.POSITIVE_INFINITY, 0, 0, 0));
    e = assertThrows(IllegalArgumentException.class, () -> new Reward.Weights(0, 0, 0.1, 0));
    assertTrue(e.getMessage().startsWith("k2.reward.verifiable + k2.reward.critic must be > 0"));
  }

  @Test void anOpenGroupsSuccessesAreItsBestByTheCriticWhenTheBestStandsOut() {
    assertEquals(List.of(false, true, false, true), bools(Reward.openSuccesses(new double[] {0.01, 0.2, 0.05, 0.2})), "ranking, not calibration");
    assertEquals(List.of(false, false, false), bools(Reward.openSuccesses(new double[] {0.5, 0.54, 0.46})), "within the margin: no signal");
    assertEquals(List.of(false), bools(Reward.openSuccesses(new double[] {0.9})), "one rollout has nothing to be better than");
    assertThrows(IllegalStateException.class, () -> Reward.openSuccesses(new double[] {0.2, Double.NaN}));
  }

  @Test void anUnfinishedOpenRolloutRanksBelowEveryFinishedOne() {
    boolean[] finished = {true, false, true, true};
    assertEquals(List.of(false, false, true, false), bools(Reward.openSuccesses(new double[] {0.1, 0.9, 0.3, 0.2}, finished)),
        "the best finished one, though the critic liked the unfinished one more");
    assertEquals(List.of(false, false, false, false), bools(Reward.openSuccesses(new double[] {0.1, 0.9, 0.12, 0.11}, finished)),
        "the best finished one scores no higher than the rest: the margin counts every rollout's score");
    assertEquals(List.of(false, false, false, false), bools(Reward.openSuccesses(new double[] {0.0, 0.0, 0.0, 0.0}, finished)),
        "finished, but as low as the unfinished ones: no success");
    assertEquals(List.of(false, true, false), bools(Reward.openSuccesses(new double[] {0.0, 0.12, 0.08}, new boolean[] {false, true, true})),
        "the worst score is an unfinished rollout's: the best finished one stands 0.12 above it");
    assertEquals(List.of(false, false, false, false), bools(Reward.openSuccesses(new double[] {0.1, 0.9, 0.12, 0.11}, new boolean[4])),
        "none finished: no signal");
    assertEquals(List.of(false, false, false), bools(Reward.openSuccesses(new double[] {0.5, 0.54, 0.46}, new boolean[] {true, true, true})),
        "all finished: the margin as before");
  }

  private static List<Boolean> bools(boolean[] xs) {
    var out = new java.util.ArrayList<Boolean>();
    for (boolean x : xs) out.add(x);
    return out;
  }
}
