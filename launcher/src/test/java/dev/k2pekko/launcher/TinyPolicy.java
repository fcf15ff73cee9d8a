package dev.k2pekko.launcher;

import dev.k2pekko.agents.JudgeRubric;
import dev.k2pekko.agents.OfflinePlay;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.agents.policy.TeacherPolicy;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.model.Losses;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.Sequence;
import dev.k2pekko.model.TokenBatch;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.ps.checkpoint.Checkpoints;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Map;
import java.util.Random;

/**
 * A checkpoint for tests of {@code k2 serve}: a one-layer policy trained for a few hundred steps on the teacher's
 * accepted core-tool episodes (seconds on a CPU), written with {@link Checkpoints} as the parameter server writes
 * its own. It calls tools; it is no good at the tasks.
 */
final class TinyPolicy {
  private TinyPolicy() {}

  static Checkpoints.Metadata write(Path dir, int steps) throws IOException {
    var universe = ToolUniverse.generate(7, Stochasticity.NONE); // k2.tools.seed: the vocabulary of the default config
    var format = new PolicyFormat(universe);
    var train = new TaskGenerator(universe, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN);
    var teacher = new TeacherPolicy(train, new TeacherPolicy.Mistakes(0, 0, 0, 0, 1));
    var seqs = new ArrayList<Sequence>();
    for (int i = 0; i < 200; i++) {
      var t = OfflinePlay.play(universe, teacher, new JudgeRubric(0.8), train.task(1000L + i, "t" + i), "tiny/" + i);
      if (t.verdict().accepted()) seqs.addAll(format.examples(t));
    }
    var cfg = new ModelConfig(format.tokenizer().vocabSize(), 32, 1, 2, 128, 2, 1e-5);
    var model = new PolicyModel(cfg, new ReferenceOps(), 1);
    var opt = new MuonClip(MuonClip.Config.defaults().withClip(true, 100).withWeightDecay(0.0), model);
    var rnd = new Random(3);
    for (int step = 1; step <= steps; step++) {
      var batch = new ArrayList<Sequence>();
      for (int i = 0; i < 16; i++) batch.add(seqs.get(rnd.nextInt(seqs.size())));
      var r = Losses.nextToken(model, TokenBatch.of(batch, 0));
      opt.step(model, r.grads(), r.maxLogit(), 0.02 * Math.min(1.0, step / 20.0));
    }
    var modelConfig = Map.<String, Object>of("vocab", cfg.vocab(), "d_model", cfg.dModel(), "layers", cfg.layers(), "heads", cfg.heads(),
        "context", cfg.context(), "mlp_ratio", cfg.mlpRatio(), "norm_eps", cfg.normEps());
    return Checkpoints.write(dir, steps, model.parameters(), Map.of(), new Checkpoints.Info(modelConfig, "MuonClip", Map.of(), Map.of()));
  }
}
