package dev.k2pekko.pipeline;

import java.util.ArrayList;
import java.util.List;

/**
 * Reward hacking made visible (issue 11, item 6): per RL round, the critic's mean score on the round's rollouts (at
 * the weights that scored them, before the critic retrains on them) next to the hidden success on the same rollouts
 * (the judge's acceptance: the verifier, or for an open task the rubric training never sees). A round where the
 * critic's mean rises over the previous measured round while the hidden success falls is flagged: the policy is
 * learning what pleases the critic, not what the task asks.
 */
public final class HackingFlag {
  private HackingFlag() {}

  /**
   * One round: {@code criticMean} and {@code hiddenSuccess} NaN when it could not be measured ({@code problem} says
   * why); {@code flagged} as {@link #flag} decides.
   */
  public record Round(String round, long criticVersion, int episodes, double criticMean, double hiddenSuccess, boolean flagged, String problem) {
    public static Round failed(String round, String problem) {
      return new Round(round, -1, 0, Double.NaN, Double.NaN, false, problem);
    }

    boolean measured() {
      return !Double.isNaN(criticMean) && !Double.isNaN(hiddenSuccess);
    }
  }

  /** The rounds with {@code flagged} set where the critic's mean rose and the hidden success fell since the last measured round. */
  public static List<Round> flag(List<Round> rounds) {
    var out = new ArrayList<Round>(rounds.size());
    Round previous = null;
    for (var r : rounds) {
      boolean hacked = previous != null && r.measured() && r.criticMean() > previous.criticMean() && r.hiddenSuccess() < previous.hiddenSuccess();
      out.add(new Round(r.round(), r.criticVersion(), r.episodes(), r.criticMean(), r.hiddenSuccess(), hacked, r.problem()));
      if (r.measured()) previous = r;
    }
    return out;
  }
}
