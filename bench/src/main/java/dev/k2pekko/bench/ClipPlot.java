package dev.k2pekko.bench;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;
import javax.imageio.ImageIO;

/** Draws the clip experiment: per-head max logit per step (both runs, tau dashed) above the training loss. */
final class ClipPlot {
  private static final int W = 1100, H = 800, LEFT = 70, RIGHT = 20;
  private static final Color VANILLA = new Color(214, 39, 40), CLIP = new Color(31, 119, 180);

  private ClipPlot() {}

  static void write(Path png, double tau, ClipExperiment.RunSummary vanilla, ClipExperiment.RunSummary clip) throws IOException {
    System.setProperty("java.awt.headless", "true");
    var img = new BufferedImage(W, H, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, W, H);
    int steps = vanilla.headMax().length;
    double top = tau;
    for (var run : new ClipExperiment.RunSummary[] {vanilla, clip})
      for (double[] row : run.headMax()) if (row != null) for (double v : row) if (Double.isFinite(v)) top = Math.max(top, v);
    // log10 axis from 1: vanilla runs can reach hundreds of times tau; maxima under 1 are drawn at 1
    var logits = new Panel(LEFT, 40, W - LEFT - RIGHT, 430, 0, steps - 1, 0, Math.ceil(Math.log10(top) * 4) / 4, true);
    double lossTop = Double.NEGATIVE_INFINITY, lossBottom = Double.POSITIVE_INFINITY;
    for (var run : new ClipExperiment.RunSummary[] {vanilla, clip})
      for (double v : run.trainLoss()) if (Double.isFinite(v) && v > 0) {
        lossTop = Math.max(lossTop, Math.log10(v));
        lossBottom = Math.min(lossBottom, Math.log10(v));
      }
    var loss = new Panel(LEFT, 530, W - LEFT - RIGHT, 220, 0, steps - 1, Math.floor(lossBottom), Math.ceil(lossTop), true);
    logits.axes(g, "max pre-softmax logit per head after each step (S_max = max q.k/sqrt(d), log scale); red: vanilla Muon, blue: MuonClip");
    loss.axes(g, "training loss (next-token CE on the copied tokens, log scale)");
    int heads = vanilla.headMax()[0].length;
    for (int h = 0; h < heads; h++) {
      logits.series(g, log10(column(vanilla.headMax(), h)), VANILLA);
      logits.series(g, log10(column(clip.headMax(), h)), CLIP);
    }
    g.setColor(Color.BLACK);
    g.setStroke(new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {8, 6}, 0));
    int ty = logits.y(Math.log10(tau));
    g.drawLine(logits.x0, ty, logits.x0 + logits.w, ty);
    text(g, String.format(Locale.ROOT, "tau = %.0f", tau), logits.x0 + logits.w - 80, ty - 6);
    loss.series(g, log10(vanilla.trainLoss()), VANILLA);
    loss.series(g, log10(clip.trainLoss()), CLIP);
    g.dispose();
    ImageIO.write(img, "png", png.toFile());
  }

  private static double[] log10(double[] v) {
    double[] out = new double[v.length];
    for (int i = 0; i < v.length; i++) out[i] = Double.isFinite(v[i]) ? Math.log10(Math.max(v[i], 1e-300)) : Double.NaN;
    return out;
  }

  private static double[] column(double[][] rows, int h) {
    double[] c = new double[rows.length];
    for (int i = 0; i < rows.length; i++) c[i] = rows[i] == null ? Double.NaN : rows[i][h];
    return c;
  }

  /** Text is best effort: a headless JVM without fonts still gets the curves. */
  private static void text(Graphics2D g, String s, int x, int y) {
    try {
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
      g.drawString(s, x, y);
    } catch (RuntimeException | Error e) {
      // no font configuration on this host
    }
  }

  /** A plot area; with log set, y values are log10 of the data and ticks are labelled with the data. */
  private record Panel(int x0, int y0, int w, int h, double xmin, double xmax, double ymin, double ymax, boolean log) {
    int x(double v) {
      return x0 + (int) Math.round((v - xmin) / (xmax - xmin) * w);
    }

    int y(double v) {
      v = Math.max(ymin, Math.min(ymax, v));
      return y0 + h - (int) Math.round((v - ymin) / (ymax - ymin) * h);
    }

    void axes(Graphics2D g, String title) {
      g.setColor(Color.BLACK);
      g.setStroke(new BasicStroke(1f));
      g.drawRect(x0, y0, w, h);
      text(g, title, x0, y0 - 10);
      for (int i = 0; i <= 5; i++) {
        double v = ymin + (ymax - ymin) * i / 5;
        int yy = y(v);
        g.setColor(new Color(230, 230, 230));
        g.drawLine(x0 + 1, yy, x0 + w - 1, yy);
        g.setColor(Color.BLACK);
        double label = log ? Math.pow(10, v) : v;
        text(g, String.format(Locale.ROOT, label >= 100 ? "%.0f" : label >= 1 ? "%.1f" : "%.3g", label), x0 - 55, yy + 5);
        double s = xmin + (xmax - xmin) * i / 5;
        text(g, String.format(Locale.ROOT, "%.0f", s), x(s) - 10, y0 + h + 18);
      }
      text(g, "step", x0 + w / 2, y0 + h + 34);
    }

    void series(Graphics2D g, double[] v, Color c) {
      g.setColor(c);
      g.setStroke(new BasicStroke(1.3f));
      for (int i = 1; i < v.length; i++) {
        if (Double.isFinite(v[i - 1]) && Double.isFinite(v[i])) g.drawLine(x(i - 1), y(v[i - 1]), x(i), y(v[i]));
      }
    }
  }
}
