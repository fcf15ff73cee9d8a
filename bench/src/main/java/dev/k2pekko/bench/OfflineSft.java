package dev.k2pekko.bench;

import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.model.Losses;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.Sequence;
import dev.k2pekko.model.TokenBatch;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.optim.MuonClip;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The offline benches' SFT (`k2 bench sft-plateau`, `open`, `pareto`): the pipeline's policy model, MuonClip and SFT
 * learning-rate schedule in one process, a step of 8 trajectories as two learners with batch-size 4 make one.
 */
final class OfflineSft {
  private OfflineSft() {}

  /**
   * The teacher's open demonstrations of a run seed: {@code episodes} open training tasks played in order, each kept
   * (as its SFT examples) when it passes the public checks, as the pipeline's judge keeps them.
   */
  static List<List<Sequence>> openDemonstrations(long seed, int episodes, dev.k2pekko.tools.ToolUniverse universe, PolicyFormat format,
                                                  dev.k2pekko.agents.tasks.TaskGenerator train, dev.k2pekko.agents.policy.TeacherPolicy teacher,
                                                  dev.k2pekko.agents.JudgeRubric judge) {
    var kept = new ArrayList<List<Sequence>>();
    for (int i = 0; i < episodes; i++) {
      long s = dev.k2pekko.agents.tasks.TaskGenerator.mix(seed * 0x7F4A7C159E3779B9L + i);
      var task = train.openTask(s, "so-" + i, dev.k2pekko.agents.tasks.TaskGenerator.openFacts(i));
      var t = dev.k2pekko.agents.OfflinePlay.play(universe, teacher, judge, task, "so-" + i, s, true);
      if (dev.k2pekko.agents.JudgeRubric.passesPublicChecks(t.verdict())) kept.add(format.examples(t));
    }
    return kept;
  }

  /** Trajectories per step: two learners' batch-size 4. */
  static final int BATCH = 8;

  /** The default run's policy (k2.model: d=64, 2 layers, 4 heads, context 192) on this format's vocabulary. */
  static PolicyModel model(PolicyFormat format) {
    return new PolicyModel(new ModelConfig(format.tokenizer().vocabSize(), 64, 2, 4, 192, 4, 1e-5), new ReferenceOps(), 1);
  }

  /** MuonClip as the parameter server runs it, without weight decay, clipping at {@code tau}. */
  static MuonClip optimizer(PolicyModel model, double tau) {
    return new MuonClip(MuonClip.Config.defaults().withClip(true, tau).withWeightDecay(0.0), model);
  }

  /**
   * The SFT rate at {@code step} (from 1): linear warm-up over {@code warmup} steps, then linear decay to a tenth by
   * {@code decaySteps}. The parameter server's {@code LrSchedule} at version step - 1, but for the decay, which reads
   * the step here and the version there: one step apart, kept so that the offline figures in BENCHMARKS.md stay
   * reproducible.
   */
  static double rate(double lr, int step, int warmup, int decaySteps) {
    double warm = Math.min(1.0, step / (double) Math.max(1, warmup));
    double decay = Math.max(0.1, 1.0 - 0.9 * step / decaySteps);
    return lr * warm * decay;
  }

  /** One step on {@link #BATCH} trajectories drawn from {@code data} (each a trajectory's examples) at {@code rate}; its loss. */
  static double step(PolicyModel model, MuonClip opt, List<List<Sequence>> data, SplittableRandom rnd, double rate) {
    var batch = new ArrayList<Sequence>();
    for (int i = 0; i < BATCH; i++) batch.addAll(data.get(rnd.nextInt(data.size())));
    var r = Losses.nextToken(model, TokenBatch.of(batch, 0));
    opt.step(model, r.grads(), r.maxLogit(), rate);
    return r.loss();
  }
}
