package dev.k2pekko.bench;

import dev.k2pekko.model.Decoder;
import dev.k2pekko.model.Losses;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.TokenBatch;
import dev.k2pekko.model.Tokenizer;
import dev.k2pekko.ops.Nd4jOps;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.ops.TensorOps;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.optim.Muon;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.function.Supplier;

/**
 * The model benchmarks of BENCHMARKS.md: forward+backward tokens/s of the default policy, Muon step time
 * against parameter count, and matmul GFLOP/s of ND4J next to the plain-Java reference, in one run.
 * Each figure is the median of repeated timings after warm-up.
 */
public final class ModelBench {
  private ModelBench() {}

  public record ForwardBackward(String backend, int batch, int seq, long params, double msPerStep, double tokensPerSecond) {}

  public record MuonStep(String backend, String what, long params, double ms) {}

  public record Decode(int view, int action, double msPerAction, double actionsPerSecond) {}

  public record Matmul(int n, double javaMs, double javaGflops, double nd4jMs, double nd4jGflops) {}

  /** Median milliseconds of task after two warm-ups, repeated until about budgetMs has passed (at least 3, at most 200 times). */
  static double medianMs(Runnable task, double budgetMs) {
    task.run();
    task.run();
    var times = new ArrayList<Double>();
    long start = System.nanoTime();
    while (times.size() < 3 || (times.size() < 200 && (System.nanoTime() - start) / 1e6 < budgetMs)) {
      long t = System.nanoTime();
      task.run();
      times.add((System.nanoTime() - t) / 1e6);
    }
    times.sort(null);
    return times.get(times.size() / 2);
  }

  static TokenBatch randomBatch(int vocab, int batch, int seq, long seed) {
    var rnd = new Random(seed);
    int n = batch * seq;
    int[] ids = rnd.ints(n, 0, vocab).toArray(), targets = rnd.ints(n, 0, vocab).toArray();
    double[] mask = new double[n];
    java.util.Arrays.fill(mask, 1.0);
    return new TokenBatch(ids, targets, mask, batch, seq);
  }

  /** Forward + backward (next-token loss on every position) of the default policy at (batch, context) tokens. */
  public static ForwardBackward forwardBackward(TensorOps ops, int batch, double budgetMs) {
    var cfg = ModelConfig.defaults(Tokenizer.standard().vocabSize());
    var model = new PolicyModel(cfg, ops, 1);
    var b = randomBatch(cfg.vocab(), batch, cfg.context(), 2);
    double ms = medianMs(() -> Losses.nextToken(model, b), budgetMs);
    return new ForwardBackward(ops.name(), batch, cfg.context(), model.parameterCount(), ms, batch * cfg.context() / (ms / 1e3));
  }

  /**
   * One policy action as the agents' learned policy makes it (LearnedPolicy.next): a fresh {@link Decoder} session
   * fed a view of {@code view} tokens, then {@code action} sampled tokens fed one at a time (greedy here: the choice
   * does not change the arithmetic), the default policy with random weights.
   */
  public static Decode decode(int view, int action, double budgetMs) {
    var cfg = ModelConfig.defaults(Tokenizer.standard().vocabSize());
    var decoder = new Decoder(new PolicyModel(cfg, ReferenceOps.INSTANCE, 1));
    int[] tokens = new Random(4).ints(view, 0, cfg.vocab()).toArray();
    double[] sink = new double[1];
    Runnable act = () -> {
      var session = decoder.session();
      double[] logits = session.feed(tokens);
      for (int i = 0; i < action; i++) logits = session.feed(argmax(logits));
      sink[0] += logits[0];
    };
    // a second of warm-up: the JIT compiles the decoder's loops only after some hundreds of actions
    for (long end = System.nanoTime() + 1_000_000_000L; System.nanoTime() < end; ) act.run();
    double ms = medianMs(act, budgetMs);
    if (Double.isNaN(sink[0])) throw new IllegalStateException("NaN logits");
    return new Decode(view, action, ms, 1e3 / ms);
  }

  private static int argmax(double[] v) {
    int best = 0;
    for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
    return best;
  }

  /** One Muon step (momentum, NS5, scaled update, decay) on a (rows, cols) matrix. */
  public static MuonStep muonMatrix(TensorOps ops, int rows, int cols, double budgetMs) {
    var rnd = new Random(rows * 7L + cols);
    Tensor w = ops.tensor(rows, cols, rnd.doubles(rows * cols).toArray());
    Tensor g = ops.tensor(rows, cols, rnd.doubles(rows * cols).toArray());
    Tensor m = ops.zeros(rows, cols);
    double ms = medianMs(() -> Muon.step(ops, w, g, m, 0.02, Muon.Config.defaults()), budgetMs);
    return new MuonStep(ops.name(), rows + "x" + cols, (long) rows * cols, ms);
  }

  /** One full MuonClip step (Muon for hidden matrices, AdamW for the rest, QK-Clip) of the default policy. */
  public static MuonStep muonClipPolicy(TensorOps ops, double budgetMs) {
    var cfg = ModelConfig.defaults(Tokenizer.standard().vocabSize());
    var model = new PolicyModel(cfg, ops, 1);
    var res = Losses.nextToken(model, randomBatch(cfg.vocab(), 2, cfg.context(), 3));
    var opt = new MuonClip(MuonClip.Config.defaults(), model);
    double ms = medianMs(() -> opt.step(model, res.grads(), res.maxLogit(), 1e-4), budgetMs);
    return new MuonStep(ops.name(), "default policy (MuonClip step)", model.parameterCount(), ms);
  }

  public record RowPairs(int m, int k, int n, double singleMs, double pairsMs) {}

  /**
   * The plain-Java matmul (m, k) . (k, n) on one thread, its rows one at a time ({@code Simd.matmulRow}, as before
   * session 14) against two at a time ({@code Simd.matmulRow2}, what ReferenceOps.matmul runs): the same bits.
   */
  public static RowPairs rowPairs(int m, int k, int n, double budgetMs) {
    var rnd = new Random(m * 31L + k * 7L + n);
    double[] x = rnd.doubles((long) m * k).toArray(), y = rnd.doubles((long) k * n).toArray();
    Runnable single = () -> {
      double[] out = new double[m * n];
      for (int i = 0; i < m; i++) dev.k2pekko.ops.Simd.matmulRow(x, y, out, i, k, n);
    };
    Runnable pairs = () -> {
      double[] out = new double[m * n];
      for (int i = 0; i + 1 < m; i += 2) dev.k2pekko.ops.Simd.matmulRow2(x, y, out, i, k, n);
    };
    // half a second of each first: the JIT compiles the vector loops only after some hundreds of calls
    for (long end = System.nanoTime() + 500_000_000L; System.nanoTime() < end; ) single.run();
    for (long end = System.nanoTime() + 500_000_000L; System.nanoTime() < end; ) pairs.run();
    return new RowPairs(m, k, n, medianMs(single, budgetMs), medianMs(pairs, budgetMs));
  }

  /** n x n x n fp matmul: plain-Java fp64 reference and ND4J fp32, GFLOP/s = 2 n^3 / time. */
  public static Matmul matmul(Nd4jOps nd4j, int n, double budgetMs) {
    var rnd = new Random(n);
    double[] a = rnd.doubles(n * n).toArray(), b = rnd.doubles(n * n).toArray();
    var ref = ReferenceOps.INSTANCE;
    Tensor ra = ref.tensor(n, n, a), rb = ref.tensor(n, n, b), na = nd4j.tensor(n, n, a), nb = nd4j.tensor(n, n, b);
    double jm = medianMs(() -> ref.matmul(ra, false, rb, false), budgetMs);
    double nm = medianMs(() -> nd4j.matmul(na, false, nb, false), budgetMs);
    double flop = 2.0 * n * n * n;
    return new Matmul(n, jm, flop / jm / 1e6, nm, flop / nm / 1e6);
  }

  /**
   * What the CPU pipeline spends its time on (a profile of the default `k2 run`: the agents' decoding and the
   * learners' plain-Java forward+backward), as Markdown: the part `k2 bench model --policy` prints alone.
   */
  public static String policyReport() {
    var sb = new StringBuilder();
    sb.append(String.format(Locale.ROOT, "JDK %s, %d CPUs, OMP_NUM_THREADS=%s%n%n", System.getProperty("java.version"),
        Runtime.getRuntime().availableProcessors(), System.getenv().getOrDefault("OMP_NUM_THREADS", "(unset)")));
    sb.append("| policy action (Decoder, one thread) | view tokens | action tokens | ms / action | actions/s |\n|---|---|---|---|---|\n");
    for (int[] va : new int[][] {{24, 6}, {64, 8}}) {
      var r = decode(va[0], va[1], 3000);
      sb.append(String.format(Locale.ROOT, "| java | %d | %d | %.3f | %,.0f |%n", r.view(), r.action(), r.msPerAction(), r.actionsPerSecond()));
    }
    sb.append("\n| matmul (one thread), the learner's shapes | rows one at a time, ms | two at a time, ms | ratio |\n|---|---|---|---|\n");
    // a step of 8 x 128 tokens of the default policy (d 64, MLP 256): the projections, the MLP's two, and the backward's
    // weight gradients (d, tokens) . (tokens, 4d)
    for (int[] s : new int[][] {{1024, 64, 64}, {1024, 64, 256}, {1024, 256, 64}, {64, 1024, 256}}) {
      var r = rowPairs(s[0], s[1], s[2], 2000);
      sb.append(String.format(Locale.ROOT, "| %d x %d . %d x %d | %.3f | %.3f | %.2f |%n", r.m(), r.k(), r.k(), r.n(), r.singleMs(), r.pairsMs(), r.singleMs() / r.pairsMs()));
    }
    sb.append("\n| backend | batch x context | parameters | ms / step | tokens/s (forward+backward) |\n|---|---|---|---|---|\n");
    for (int batch : new int[] {1, 8}) {
      var r = forwardBackward(ReferenceOps.INSTANCE, batch, 3000);
      sb.append(row(r));
    }
    return sb.toString();
  }

  private static String row(ForwardBackward r) {
    return String.format(Locale.ROOT, "| %s | %d x %d | %,d | %.1f | %,.0f |%n", r.backend(), r.batch(), r.seq(), r.params(), r.msPerStep(), r.tokensPerSecond());
  }

  /** Runs every benchmark and returns the tables as Markdown. */
  public static String report() {
    var nd4j = new Nd4jOps();
    var sb = new StringBuilder(policyReport());
    sb.append("\n| backend | batch x context | parameters | ms / step | tokens/s (forward+backward) |\n|---|---|---|---|---|\n");
    for (int batch : new int[] {1, 8}) {
      var r = forwardBackward(nd4j, batch, 3000);
      sb.append(row(r));
    }
    sb.append("\n| backend | Muon step on | parameters | ms |\n|---|---|---|---|\n");
    for (TensorOps ops : List.<TensorOps>of(ReferenceOps.INSTANCE, nd4j)) {
      var runs = new ArrayList<Supplier<MuonStep>>(List.of(() -> muonMatrix(ops, 64, 64, 1000), () -> muonMatrix(ops, 256, 64, 1000),
          () -> muonMatrix(ops, 128, 128, 1000), () -> muonMatrix(ops, 256, 256, 1500), () -> muonMatrix(ops, 512, 512, 3000)));
      // a 1024^2 Muon step is about 30 GFLOP: only the BLAS backend does it in reasonable time
      if (ops == nd4j) runs.add(() -> muonMatrix(ops, 1024, 1024, 3000));
      runs.add(() -> muonClipPolicy(ops, 3000));
      for (var run : runs) {
        var r = run.get();
        sb.append(String.format(Locale.ROOT, "| %s | %s | %,d | %.2f |%n", r.backend(), r.what(), r.params(), r.ms()));
      }
    }
    sb.append("\n| n (n x n x n) | Java fp64 ms | Java fp64 GFLOP/s | ND4J fp32 ms | ND4J fp32 GFLOP/s |\n|---|---|---|---|---|\n");
    for (int n : new int[] {16, 64, 128, 256, 512, 1024}) {
      var r = matmul(nd4j, n, n >= 512 ? 3000 : 1000);
      sb.append(String.format(Locale.ROOT, "| %d | %.3f | %.2f | %.3f | %.2f |%n", r.n(), r.javaMs(), r.javaGflops(), r.nd4jMs(), r.nd4jGflops()));
    }
    return sb.toString();
  }

  public static void main(String[] args) {
    System.out.print(args.length > 0 && args[0].equals("policy") ? policyReport() : report());
  }
}
