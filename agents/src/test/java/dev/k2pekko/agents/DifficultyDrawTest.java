package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** RL tasks drawn by difficulty weights: the draw follows the weights, a zero weight is never drawn. */
class DifficultyDrawTest {
  @Test void drawsFollowTheWeights() {
    double[] w = {0.1, 0.0, 0.6, 0.1, 0.2};
    int[] n = new int[6];
    var rnd = new SplittableRandom(3);
    int draws = 100_000;
    for (int i = 0; i < draws; i++) n[TaskDraws.drawDifficulty(w, rnd.nextLong())]++;
    assertEquals(0, n[2]);
    for (int d = 1; d <= 5; d++) assertEquals(w[d - 1], (double) n[d] / draws, 0.01, "difficulty " + d);
  }

  @Test void weightsAreChecked() {
    assertThrows(IllegalArgumentException.class, () -> new Agent.EpisodeSpec(Agent.Tasks.TRAIN, "learned", 1, 4, new double[] {0, 0}));
    assertThrows(IllegalArgumentException.class, () -> new Agent.EpisodeSpec(Agent.Tasks.TRAIN, "learned", 1, 4, new double[] {1, Double.NaN}));
    assertThrows(IllegalArgumentException.class, () -> new Agent.EpisodeSpec(Agent.Tasks.HELD_OUT, "learned", 1, 4, new double[] {1, 1}));
  }
}
