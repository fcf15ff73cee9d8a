package dev.k2pekko.bench;

import dev.k2pekko.optim.AdamW;
import dev.k2pekko.optim.Muon;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.optim.NewtonSchulz;
import dev.k2pekko.optim.QkClip;
import dev.k2pekko.model.Losses;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.Sequence;
import dev.k2pekko.model.TokenBatch;
import dev.k2pekko.model.Tokenizer;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.pipeline.report.LinePlot;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The paper's MuonClip figure in miniature: the policy trains on synthetic copy sequences
 * ({@code <bos> x1..xn <sep> x1..xn <eos>}, loss on the copy) twice from the same seed and the same
 * batches: vanilla Muon at a learning rate high enough for attention logits to climb past tau, and
 * MuonClip. Copying needs sharp attention, which is what drives the max logits up.
 */
public final class ClipExperiment {
  private ClipExperiment() {}

  /**
   * @param seed model init and data
   * @param steps optimizer steps per run
   * @param lr shared Muon/AdamW learning rate
   * @param tau QK-Clip threshold
   * @param batch sequences per step
   * @param copyLength n, the number of symbols to copy
   * @param weightDecay shared decoupled weight decay
   */
  public record Config(long seed, int steps, double lr, double tau, int batch, int copyLength, double weightDecay) {
    public static Config defaults() {
      return new Config(7, 150, 0.08, 30.0, 16, 12, 0.0);
    }

    public Config withSteps(int s) {
      return new Config(seed, s, lr, tau, batch, copyLength, weightDecay);
    }
  }

  /** max_logit: the largest head max logit seen after any step; loss: final loss on a fixed held-out batch. */
  public record RunSummary(double maxLogit, double loss, double[] trainLoss, double[][] headMax, int enforcePasses) {}

  public record Result(double tau, RunSummary vanilla, RunSummary clip, Path csv, Path png, double seconds) {
    /** One line: {"tau":..,"vanilla":{"max_logit":..,"loss":..},"clip":{"max_logit":..,"loss":..}}. */
    public String toJson() {
      return String.format(Locale.ROOT,
          "{\"tau\":%s,\"vanilla\":{\"max_logit\":%s,\"loss\":%s},\"clip\":{\"max_logit\":%s,\"loss\":%s}}",
          num(tau), num(vanilla.maxLogit()), num(vanilla.loss()), num(clip.maxLogit()), num(clip.loss()));
    }

    private static String num(double d) {
      return Double.isFinite(d) ? String.format(Locale.ROOT, "%.6g", d) : "null";
    }
  }

  static final Tokenizer TOKENIZER = Tokenizer.standard();

  static ModelConfig modelConfig(Config cfg) {
    return ModelConfig.defaults(TOKENIZER.vocabSize()).withContext(2 * cfg.copyLength() + 2);
  }

  /** Synthetic copy sequences over digits and lowercase letters. */
  static TokenBatch copyBatch(SplittableRandom rnd, int batch, int n) {
    String symbols = "0123456789abcdefghijklmnopqrstuvwxyz";
    var seqs = new ArrayList<Sequence>();
    for (int b = 0; b < batch; b++) {
      int[] prompt = new int[n + 2], action = new int[n + 1];
      prompt[0] = TOKENIZER.id(Tokenizer.BOS);
      for (int i = 0; i < n; i++) {
        int s = TOKENIZER.id(String.valueOf(symbols.charAt(rnd.nextInt(symbols.length()))));
        prompt[i + 1] = s;
        action[i] = s;
      }
      prompt[n + 1] = TOKENIZER.id(Tokenizer.SEP);
      action[n] = TOKENIZER.id(Tokenizer.EOS);
      seqs.add(Sequence.of(prompt, action));
    }
    return TokenBatch.of(seqs, TOKENIZER.id(Tokenizer.PAD));
  }

  /** Runs vanilla Muon and MuonClip, writes clip.csv and clip.png under outDir, returns the figures. */
  public static Result run(Config cfg, Path outDir) {
    long t0 = System.nanoTime();
    // the two runs are independent: run them side by side
    var vanillaRun = java.util.concurrent.CompletableFuture.supplyAsync(() -> train(cfg, false), ClipExperiment::daemon);
    RunSummary clip = train(cfg, true);
    RunSummary vanilla = vanillaRun.join();
    try {
      Files.createDirectories(outDir);
      Path csv = outDir.resolve("clip.csv"), png = outDir.resolve("clip.png");
      writeCsv(csv, cfg, vanilla, clip);
      plot(png, cfg.tau(), vanilla, clip);
      return new Result(cfg.tau(), vanilla, clip, csv, png, (System.nanoTime() - t0) / 1e9);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** clip.png: every head's max logit per step (both runs, tau dashed) above the training loss, through {@link LinePlot}. */
  static void plot(Path png, double tau, RunSummary vanilla, RunSummary clip) throws IOException {
    int steps = vanilla.headMax().length;
    var logits = new ArrayList<LinePlot.Series>();
    for (int h = 0; h < vanilla.headMax()[0].length; h++) {
      logits.add(new LinePlot.Series("vanilla Muon", stepAxis(steps), column(vanilla.headMax(), h)));
      logits.add(new LinePlot.Series("MuonClip", stepAxis(steps), column(clip.headMax(), h)));
    }
    logits.add(new LinePlot.Series(String.format(Locale.ROOT, "tau = %.0f", tau), new double[] {0, steps - 1}, new double[] {tau, tau}, true));
    var loss = List.of(new LinePlot.Series("vanilla Muon", stepAxis(vanilla.trainLoss().length), vanilla.trainLoss()),
        new LinePlot.Series("MuonClip", stepAxis(clip.trainLoss().length), clip.trainLoss()));
    LinePlot.write(png, List.of(
        new LinePlot.Panel("Max pre-softmax logit per head after each step (S_max = max q.k/sqrt(d))", "step", "S_max", true, logits),
        new LinePlot.Panel("Training loss (next-token CE on the copied tokens)", "step", "loss", true, loss)));
  }

  private static double[] stepAxis(int n) {
    double[] x = new double[n];
    for (int i = 0; i < n; i++) x[i] = i;
    return x;
  }

  private static double[] column(double[][] rows, int h) {
    double[] c = new double[rows.length];
    for (int i = 0; i < rows.length; i++) c[i] = rows[i] == null ? Double.NaN : rows[i][h];
    return c;
  }

  /** headMax[s][layer*H + head]: S_max after step s on that step's batch (row 0: the initial weights on the eval batch). */
  static RunSummary train(Config cfg, boolean clipOn) {
    ModelConfig mc = modelConfig(cfg);
    var model = new PolicyModel(mc, ReferenceOps.INSTANCE, cfg.seed());
    var opt = new MuonClip(MuonClip.Config.defaults().withWeightDecay(cfg.weightDecay()).withClip(clipOn, cfg.tau()), model);
    var data = new SplittableRandom(cfg.seed() * 31 + 1);
    TokenBatch eval = copyBatch(new SplittableRandom(cfg.seed() * 31 + 2), 64, cfg.copyLength());
    int heads = mc.layers() * mc.heads();
    double[] trainLoss = new double[cfg.steps()];
    double[][] headMax = new double[cfg.steps() + 1][];
    double maxAfter = Double.NEGATIVE_INFINITY;
    headMax[0] = flatten(model.forward(eval.ids(), eval.batch(), eval.seq()).maxLogit(), heads);
    int extraPasses = 0;
    for (int step = 0; step < cfg.steps(); step++) {
      TokenBatch b = copyBatch(data, cfg.batch(), cfg.copyLength());
      var res = Losses.nextToken(model, b);
      trainLoss[step] = res.loss();
      if (!Double.isFinite(res.loss())) break;
      opt.step(model, res.grads(), res.maxLogit(), cfg.lr());
      // S_max after the step, on the step's batch: vanilla only measures, MuonClip also enforces tau
      double[][] after;
      if (clipOn) {
        var e = opt.enforce(model, b.ids(), b.batch(), b.seq());
        after = e.maxLogit();
        extraPasses += e.passes();
      } else {
        after = model.forward(b.ids(), b.batch(), b.seq()).maxLogit();
      }
      headMax[step + 1] = flatten(after, heads);
      maxAfter = Math.max(maxAfter, max(headMax[step + 1]));
    }
    double evalLoss = Losses.nextTokenLoss(model, eval);
    return new RunSummary(maxAfter, evalLoss, trainLoss, headMax, extraPasses);
  }

  private static void daemon(Runnable r) {
    Thread t = new Thread(r, "clip-experiment-vanilla");
    t.setDaemon(true);
    t.start();
  }

  private static double[] flatten(double[][] a, int n) {
    double[] out = new double[n];
    int i = 0;
    for (double[] row : a) for (double v : row) out[i++] = v;
    return out;
  }

  private static double max(double[] a) {
    double m = Double.NEGATIVE_INFINITY;
    for (double v : a) m = Math.max(m, v);
    return m;
  }

  private static void writeCsv(Path csv, Config cfg, RunSummary vanilla, RunSummary clip) throws IOException {
    int heads = vanilla.headMax()[0].length;
    var lines = new ArrayList<String>();
    var header = new StringBuilder("run,step,train_loss");
    int perLayer = modelConfig(cfg).heads();
    for (int h = 0; h < heads; h++) header.append(",max_logit_l").append(h / perLayer).append("h").append(h % perLayer);
    lines.add(header.toString());
    for (var run : List.of(vanilla, clip)) {
      String name = run == vanilla ? "vanilla" : "clip";
      for (int s = 0; s <= cfg.steps(); s++) {
        if (run.headMax()[s] == null) continue;
        var sb = new StringBuilder(name).append(',').append(s).append(',');
        // train_loss of row s: the loss of the weights after s steps, on batch s+1 (empty after the last step)
        sb.append(s < cfg.steps() ? String.format(Locale.ROOT, "%.6f", run.trainLoss()[s]) : "");
        for (double v : run.headMax()[s]) sb.append(',').append(String.format(Locale.ROOT, "%.6f", v));
        lines.add(sb.toString());
      }
    }
    Files.write(csv, lines);
  }

  /** Runs the experiment with defaults (or {@code steps lr tau} from args) into docs/ and prints the JSON line. */
  public static void main(String[] args) {
    Config d = Config.defaults();
    Config cfg = args.length >= 3
        ? new Config(d.seed(), Integer.parseInt(args[0]), Double.parseDouble(args[1]), Double.parseDouble(args[2]), d.batch(), d.copyLength(), d.weightDecay())
        : d;
    Path out = Path.of(args.length >= 4 ? args[3] : "docs");
    Result r = run(cfg, out);
    System.out.printf(Locale.ROOT, "clip experiment: %d steps, lr %s, tau %s, %.1f s, %d extra clip passes -> %s, %s%n",
        cfg.steps(), cfg.lr(), cfg.tau(), r.seconds(), r.clip().enforcePasses(), r.csv(), r.png());
    System.out.println(r.toJson());
  }
}
