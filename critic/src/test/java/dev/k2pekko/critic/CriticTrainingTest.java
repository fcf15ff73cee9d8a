package dev.k2pekko.critic;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.protocol.Trajectory;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The training loop on real trajectories: the scripted teacher's episodes on training tasks, judged by the real
 * rubric, train the critic; its AUC is measured on the teacher's episodes of held-out tasks (with three times the
 * mistakes, so the failures differ in mix too), which it never saw.
 */
class CriticTrainingTest {
  static final int BUCKETS = 1 << 12, HIDDEN = 16;

  @Test void trainingRaisesTheAucOnEpisodesItNeverSaw() {
    var train = Teacher.episodes(1500, 1, TaskGenerator.Split.TRAIN, 1.0);
    var heldOut = Teacher.episodes(600, 500_000, TaskGenerator.Split.HELD_OUT, 3.0);
    var data = examples(train);
    long accepted = data.stream().filter(CriticTrainer.Example::accepted).count();
    assertTrue(accepted > 100 && accepted < data.size() - 100, "both verdicts among the training episodes: " + accepted + " of " + data.size());

    var untrained = CriticModel.init(BUCKETS, HIDDEN, 4);
    double before = auc(untrained, heldOut);
    var r = CriticTrainer.train(untrained, data, new CriticTrainer.Settings(6, 64, 0.01, 0.01, 4));
    double after = auc(r.model(), heldOut);
    assertTrue(r.lastEpochLoss() < 0.5 * r.firstEpochLoss(), "the training loss fell: " + r.firstEpochLoss() + " -> " + r.lastEpochLoss());
    assertTrue(after >= 0.95, "held-out AUC after training " + after + " (before: " + before + ")");
    assertTrue(before < 0.85, "an untrained critic does not already rank well: " + before);
  }

  static List<CriticTrainer.Example> examples(List<Trajectory> ts) {
    var out = new ArrayList<CriticTrainer.Example>();
    for (var t : ts) out.add(new CriticTrainer.Example(TrajectoryFeatures.of(t, BUCKETS), t.verdict().accepted()));
    return out;
  }

  static double auc(CriticModel m, List<Trajectory> ts) {
    double[] s = new double[ts.size()];
    boolean[] y = new boolean[ts.size()];
    for (int i = 0; i < s.length; i++) {
      s[i] = m.score(TrajectoryFeatures.of(ts.get(i), BUCKETS));
      y[i] = ts.get(i).verdict().accepted();
    }
    return Auc.of(s, y);
  }
}
