package dev.k2pekko.bench;

import dev.k2pekko.agents.JudgeRubric;
import dev.k2pekko.agents.OfflinePlay;
import dev.k2pekko.agents.policy.LearnedPolicy;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.agents.policy.TeacherPolicy;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.model.Decoder;
import dev.k2pekko.model.Losses;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.Sequence;
import dev.k2pekko.model.TokenBatch;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Offline SFT probe (no actors): teacher episodes on training tasks, SFT of the policy on their examples, and greedy
 * evaluation on 20 held-out tasks per difficulty every 250 steps. The measurements behind the policy's view in
 * docs/LOOP.md came from it. Arguments: episodes, steps, batch (examples), lr, d_model, layers; run with the
 * bench class path, e.g. {@code java -cp ... dev.k2pekko.bench.SftProbe 8000 1000 32 0.01 64 2}.
 */
public final class SftProbe {
  public static void main(String[] a) {
    int episodes = Integer.parseInt(a[0]), steps = Integer.parseInt(a[1]), batch = Integer.parseInt(a[2]);
    double lr = Double.parseDouble(a[3]);
    int d = Integer.parseInt(a[4]), layers = Integer.parseInt(a[5]);
    var u = ToolUniverse.generate(7, Stochasticity.NONE);
    var fmt = new PolicyFormat(u);
    var train = new TaskGenerator(u, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN);
    var held = new TaskGenerator(u, 5).coreOnly(true).withSplit(TaskGenerator.Split.HELD_OUT);
    var teacher = new TeacherPolicy(train, new TeacherPolicy.Mistakes(0.03, 0.02, 0.02, 0.01, 0.9));
    var judge = new JudgeRubric(0.8);
    var seqs = new ArrayList<Sequence>();
    int maxLen = 0;
    long tok = 0;
    for (int i = 0; i < episodes; i++) {
      var t = train.task(1000L + i, "t" + i);
      var tr = OfflinePlay.play(u, teacher, judge, t, "x" + i);
      if (!tr.verdict().accepted()) continue;
      for (var s : fmt.examples(tr)) {
        seqs.add(s);
        maxLen = Math.max(maxLen, s.length());
        tok += s.length();
      }
    }
    System.out.printf("accepted %d of %d, max len %d, mean %.1f, vocab %d%n", seqs.size(), episodes, maxLen, (double) tok / seqs.size(), fmt.tokenizer().vocabSize());
    var cfg = new ModelConfig(fmt.tokenizer().vocabSize(), d, layers, 4, 192, 4, 1e-5);
    System.out.println(fmt.tokenizer().decode(seqs.get(3).tokens()));
    var ops = new ReferenceOps();
    var model = new PolicyModel(cfg, ops, 1);
    var opt = new MuonClip(MuonClip.Config.defaults().withClip(true, 100).withWeightDecay(0.0), model);
    var rnd = new Random(3);
    long t0 = System.nanoTime(), tokens = 0;
    for (int step = 1; step <= steps; step++) {
      var b = new ArrayList<Sequence>();
      for (int i = 0; i < batch; i++) b.add(seqs.get(rnd.nextInt(seqs.size())));
      var tb = TokenBatch.of(b, 0);
      var r = Losses.nextToken(model, tb);
      tokens += tb.ids().length;
      double cur = lr * Math.min(1.0, step / 50.0) * (1.0 - 0.9 * step / (double) steps);
      opt.step(model, r.grads(), r.maxLogit(), cur);
      if (step % 50 == 0) {
        double maxl = 0;
        for (double[] row : r.maxLogit()) for (double v : row) maxl = Math.max(maxl, v);
        System.out.printf("step %d loss %.4f maxlogit %.1f tok/s %.0f%n", step, r.loss(), maxl, tokens / ((System.nanoTime() - t0) / 1e9));
      }
      if (step % 250 == 0 || step == steps) eval(u, fmt, held, judge, model);
    }
  }

  static void eval(ToolUniverse u, PolicyFormat fmt, TaskGenerator held, JudgeRubric judge, PolicyModel model) {
    var policy = new LearnedPolicy(fmt, new Decoder(model), 0, 0.0);
    long t0 = System.nanoTime();
    int[] ok = new int[6], n = new int[6];
    for (int dif = 1; dif <= 5; dif++) {
      for (int i = 0; i < 20; i++) {
        var t = held.taskOfDifficulty(77_000L + dif * 1000 + i, "h" + i, dif);
        var tr = OfflinePlay.play(u, policy, judge, t, "e" + i);
        n[dif]++;
        if (tr.verdict().accepted()) ok[dif]++;
        if (i == 0 && dif >= 2) System.out.println("  " + t.prompt() + " -> " + tr.steps().stream().map(s -> s.tool() + s.arguments() + "=" + s.result()).toList() + " ans " + tr.finalAnswer() + " " + tr.verdict().reasons());
      }
    }
    System.out.printf("  eval %s in %.1fs%n", java.util.Arrays.toString(ok), (System.nanoTime() - t0) / 1e9);
  }
}
