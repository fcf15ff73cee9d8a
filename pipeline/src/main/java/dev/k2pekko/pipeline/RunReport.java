package dev.k2pekko.pipeline;

import dev.k2pekko.optim.QkClip;
import dev.k2pekko.pipeline.report.Csv;
import dev.k2pekko.pipeline.report.LinePlot;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.trainer.Learner;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * The report of a pipeline run: CSV files (the durable form) and PNG plots drawn from them.
 * <ul>
 *   <li>{@code steps.csv}: version, loss, rl (1 for an RL step), tokens, reward (mean RL reward, NaN for SFT);</li>
 *   <li>{@code clip.csv}: version, the step's largest head max logit, the fraction of heads clipped, then one
 *   column per head (l{layer}h{head}) with its S_max (max over the learners of that step);</li>
 *   <li>{@code clip-counts.csv}: layer, head, how many steps clipped it;</li>
 *   <li>{@code eval.csv}: stage (0 init, 1 sft: one row per SFT part, the curve; 2 rl), version, success, pass^1..pass^k;</li>
 *   <li>{@code loss.png}, {@code reward.png}, {@code clip.png}: the curves, where this Java has {@code java.desktop}
 *   (a {@code k2 bundle}'s JRE leaves it out: {@code k2 report} on a full JDK draws them from the CSV files).</li>
 * </ul>
 */
public final class RunReport {
  private RunReport() {}

  public static void write(Pipeline.Result r, Path dir) throws IOException {
    Files.createDirectories(dir);
    var steps = new ArrayList<double[]>();
    for (var l : r.status().losses()) {
      steps.add(new double[] {l.version(), l.loss(), l.kind() == dev.k2pekko.protocol.PsProtocol.StageKind.RL ? 1 : 0, l.tokens(), l.reward()});
    }
    Csv.write(dir.resolve("steps.csv"), List.of("version", "loss", "rl", "tokens", "reward"), steps);
    ClipMonitorProtocol.History h = r.clip();
    var header = new ArrayList<>(List.of("version", "max_logit", "fraction_clipped"));
    int layers = h.layers(), heads = h.heads();
    for (int l = 0; l < layers; l++) for (int k = 0; k < heads; k++) header.add("l" + l + "h" + k);
    var clipRows = new ArrayList<double[]>();
    for (var s : h.steps()) {
      double[] row = new double[3 + layers * heads];
      row[0] = s.version();
      double max = Double.NEGATIVE_INFINITY;
      for (int l = 0; l < layers; l++) for (int k = 0; k < heads; k++) {
        row[3 + l * heads + k] = s.maxLogit()[l][k];
        max = Math.max(max, s.maxLogit()[l][k]);
      }
      row[1] = max;
      row[2] = (double) QkClip.clipped(s.maxLogit(), h.tau()) / (layers * heads);
      clipRows.add(row);
    }
    Csv.write(dir.resolve("clip.csv"), header, clipRows);
    var counts = new ArrayList<double[]>();
    int[][] clipCounts = QkClip.clipCounts(h.steps().stream().map(ClipMonitorProtocol.StepMaxLogits::maxLogit).toList(), h.tau(), layers, heads);
    for (int l = 0; l < layers; l++) for (int k = 0; k < heads; k++) counts.add(new double[] {l, k, clipCounts[l][k]});
    Csv.write(dir.resolve("clip-counts.csv"), List.of("layer", "head", "clipped_steps"), counts);
    var evals = new ArrayList<double[]>();
    int k = r.init().passK().length;
    var evalHeader = new ArrayList<>(List.of("stage", "version", "success"));
    for (int i = 1; i <= k; i++) evalHeader.add("pass_" + i);
    var rows = new ArrayList<Pipeline.Eval>();
    rows.add(r.init());
    rows.addAll(r.sftCurve()); // stage 1 for every SFT evaluation (after each part: the SFT curve), by version
    rows.add(r.rl());
    for (var e : rows) {
      double[] row = new double[3 + k];
      row[0] = e == r.init() ? 0 : e == r.rl() ? 2 : 1;
      row[1] = e.version();
      row[2] = e.success();
      System.arraycopy(e.passK(), 0, row, 3, k);
      evals.add(row);
    }
    Csv.write(dir.resolve("eval.csv"), evalHeader, evals);
    if (canPlot()) plots(dir, h.tau(), dir);
  }

  /** Whether this Java can draw the PNGs: it has {@code java.desktop} (a {@code k2 bundle}'s JRE does not). */
  public static boolean canPlot() {
    return ModuleLayer.boot().findModule("java.desktop").isPresent();
  }

  /** Draws the PNGs of a report directory from its CSV files into {@code out}. */
  public static void plots(Path csvDir, double tau, Path out) throws IOException {
    Files.createDirectories(out);
    var steps = Csv.read(csvDir.resolve("steps.csv"));
    var sft = new ArrayList<double[]>();
    var rl = new ArrayList<double[]>();
    var reward = new ArrayList<double[]>();
    for (double[] row : steps.rows()) {
      (row[2] > 0 ? rl : sft).add(new double[] {row[0], row[1]});
      if (row[2] > 0 && !Double.isNaN(row[4])) reward.add(new double[] {row[0], row[4]});
    }
    var loss = new LinkedHashMap<String, double[][]>();
    if (!sft.isEmpty()) loss.put("SFT loss (next-token CE on actions)", columns(sft));
    if (!rl.isEmpty()) loss.put("RL loss (k2.learner.rl-objective)", columns(rl));
    if (!loss.isEmpty()) LinePlot.write(out.resolve("loss.png"), "Learner loss per parameter-server step", "version", "loss", loss, true);
    if (!reward.isEmpty()) {
      LinePlot.write(out.resolve("reward.png"), "Mean RL reward of the rollouts in each step", "version", "reward",
          new LinkedHashMap<>(java.util.Map.of("reward", columns(reward))));
    }
    var clip = Csv.read(csvDir.resolve("clip.csv"));
    if (!clip.rows().isEmpty()) {
      var series = new LinkedHashMap<String, double[][]>();
      for (int c = 3; c < clip.header().size(); c++) {
        var pts = new ArrayList<double[]>();
        for (double[] row : clip.rows()) pts.add(new double[] {row[0], row[c]});
        series.put(clip.header().get(c), columns(pts));
      }
      double first = clip.rows().getFirst()[0], last = clip.rows().getLast()[0];
      series.put("tau", new double[][] {{first, last}, {tau, tau}});
      LinePlot.write(out.resolve("clip.png"), "Per-head max logit S_max at each step (before its QK-Clip)", "version", "S_max", series);
    }
  }

  private static double[][] columns(List<double[]> pts) {
    double[] x = new double[pts.size()], y = new double[pts.size()];
    for (int i = 0; i < pts.size(); i++) {
      x[i] = pts.get(i)[0];
      y[i] = pts.get(i)[1];
    }
    return new double[][] {x, y};
  }
}
