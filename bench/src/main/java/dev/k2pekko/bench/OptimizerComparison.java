package dev.k2pekko.bench;

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
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.optim.AdamW;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import dev.k2pekko.pipeline.report.Csv;
import dev.k2pekko.pipeline.report.LinePlot;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * MuonClip against AdamW on the same SFT data from the same seed: the teacher's accepted trajectories on training
 * tasks, the same batches in the same order, the same initial weights and learning-rate schedule. Both curves are
 * the loss on a fixed held-out set of teacher trajectories, measured every {@code evalEvery} steps; the comparison is
 * the number of steps each needs to reach the loss AdamW ends at.
 */
public final class OptimizerComparison {
  public record Curve(String name, int[] steps, double[] loss) {
    /** The first measured step at which the loss is at or under {@code target}, or -1. */
    public int stepsTo(double target) {
      for (int i = 0; i < steps.length; i++) if (loss[i] <= target) return steps[i];
      return -1;
    }
  }

  public record Result(Curve muonClip, Curve adamW, double target, int muonSteps, int adamSteps, int trainSequences) {}

  public static Result run(ModelConfig shape, int episodes, int steps, int batch, double lr, int evalEvery, long seed) {
    var universe = ToolUniverse.generate(7, Stochasticity.NONE);
    var format = new PolicyFormat(universe);
    var gen = new TaskGenerator(universe, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN);
    var teacher = new TeacherPolicy(gen, new TeacherPolicy.Mistakes(0.03, 0.02, 0.02, 0.01, 0.9));
    var judge = new JudgeRubric(0.8);
    var train = new ArrayList<Sequence>();
    var held = new ArrayList<Sequence>();
    var cfg = new ModelConfig(format.tokenizer().vocabSize(), shape.dModel(), shape.layers(), shape.heads(), shape.context(), shape.mlpRatio(), shape.normEps());
    for (int i = 0; i < episodes + 200; i++) {
      var t = OfflinePlay.play(universe, teacher, judge, gen.task(seed * 1_000_003L + i, "t" + i), "x" + i);
      if (!t.verdict().accepted()) continue;
      for (var s : format.examples(t)) if (s.length() <= cfg.context() + 1) (i < episodes ? train : held).add(s);
    }
    var heldBatch = TokenBatch.of(held.subList(0, Math.min(128, held.size())), 0);
    var ops = new ReferenceOps();
    var muonModel = new PolicyModel(cfg, ops, seed);
    var adamModel = new PolicyModel(cfg, ops, seed);
    var muon = new MuonClip(MuonClip.Config.defaults().withWeightDecay(0.0), muonModel);
    var adamCfg = new AdamW.Config(0.9, 0.95, 1e-8, 0.0);
    Map<String, Tensor> m = new HashMap<>(), v = new HashMap<>();
    int points = steps / evalEvery;
    int[] at = new int[points];
    double[] lm = new double[points], la = new double[points];
    var rnd = new Random(seed);
    for (int step = 1, p = 0; step <= steps; step++) {
      var b = new ArrayList<Sequence>();
      for (int i = 0; i < batch; i++) b.add(train.get(rnd.nextInt(train.size())));
      var tb = TokenBatch.of(b, 0);
      double cur = lr * Math.min(1.0, step / 50.0);
      var rm = Losses.nextToken(muonModel, tb);
      muon.step(muonModel, rm.grads(), rm.maxLogit(), cur);
      var ra = Losses.nextToken(adamModel, tb);
      for (var s : adamModel.specs()) {
        var w = adamModel.parameter(s.name());
        var r = AdamW.step(ops, w, ra.grads().get(s.name()), m.getOrDefault(s.name(), ops.zeros(s.rows(), s.cols())),
            v.getOrDefault(s.name(), ops.zeros(s.rows(), s.cols())), step, cur, adamCfg);
        adamModel.setParameter(s.name(), r.weight());
        m.put(s.name(), r.m());
        v.put(s.name(), r.v());
      }
      if (step % evalEvery == 0 && p < points) {
        at[p] = step;
        lm[p] = Losses.nextTokenLoss(muonModel, heldBatch);
        la[p] = Losses.nextTokenLoss(adamModel, heldBatch);
        p++;
      }
    }
    var mc = new Curve("MuonClip", at, lm);
    var ac = new Curve("AdamW", at, la);
    double target = la[points - 1];
    return new Result(mc, ac, target, mc.stepsTo(target), ac.stepsTo(target), train.size());
  }

  /** A curve's points as rows (step, MuonClip loss, AdamW loss). */
  public static List<double[]> rows(Result r) {
    var out = new ArrayList<double[]>();
    for (int i = 0; i < r.muonClip().steps().length; i++) out.add(new double[] {r.muonClip().steps()[i], r.muonClip().loss()[i], r.adamW().loss()[i]});
    return out;
  }

  /** Writes optimizers.csv and optimizers.png (held-out loss of both optimizers per step) to dir. */
  public static void write(java.nio.file.Path dir, Result r, double lr) throws java.io.IOException {
    java.nio.file.Files.createDirectories(dir);
    Csv.write(dir.resolve("optimizers.csv"), List.of("step", "muonclip_loss", "adamw_loss"), OptimizerComparison.rows(r));
    var series = new LinkedHashMap<String, double[][]>();
    for (var c : List.of(r.muonClip(), r.adamW())) {
      double[] x = new double[c.steps().length];
      for (int i = 0; i < x.length; i++) x[i] = c.steps()[i];
      series.put(c.name(), new double[][] {x, c.loss()});
    }
    LinePlot.write(dir.resolve("optimizers.png"), "Held-out SFT loss: MuonClip vs AdamW (same data, seed, lr " + lr + ")", "step", "loss", series, true);
  }
}
