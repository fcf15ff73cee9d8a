package dev.k2pekko.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code k2 bench pareto}'s report: per reward weighting its held-out success, tool calls and safety violations per
 * episode; which weightings are on the Pareto front (no other is at least as good on all three and better on one); a
 * CSV and an SVG of success against cost and against violations.
 */
public final class ParetoFront {
  private ParetoFront() {}

  /** One weighting's outcome; {@code label} names its weights. */
  public record Outcome(String label, double success, double openSuccess, double calls, double violations) {}

  /** Whether each outcome is on the front: more success, fewer calls and fewer violations are better. */
  public static boolean[] front(List<Outcome> xs) {
    boolean[] on = new boolean[xs.size()];
    for (int i = 0; i < xs.size(); i++) {
      on[i] = true;
      for (int j = 0; j < xs.size() && on[i]; j++) if (j != i && dominates(xs.get(j), xs.get(i))) on[i] = false;
    }
    return on;
  }

  static boolean dominates(Outcome a, Outcome b) {
    boolean noWorse = a.success() >= b.success() && a.calls() <= b.calls() && a.violations() <= b.violations();
    boolean better = a.success() > b.success() || a.calls() < b.calls() || a.violations() < b.violations();
    return noWorse && better;
  }

  public static String csv(Outcome sft, List<Outcome> xs) {
    var on = front(xs);
    var sb = new StringBuilder("weighting,success,open_success,calls_per_episode,violations_per_episode,on_front\n");
    sb.append(row(sft, "")).append('\n');
    for (int i = 0; i < xs.size(); i++) sb.append(row(xs.get(i), on[i] ? "yes" : "no")).append('\n');
    return sb.toString();
  }

  private static String row(Outcome o, String front) {
    return String.format(Locale.ROOT, "\"%s\",%.4f,%.4f,%.4f,%.4f,%s", o.label(), o.success(), o.openSuccess(), o.calls(), o.violations(), front);
  }

  /**
   * Two scatter panels, success against tool calls per episode and against violations per episode: one numbered point
   * per weighting (filled when on the front), the SFT start as a grey square, and a legend of the numbers.
   */
  public static String svg(String title, Outcome sft, List<Outcome> xs) {
    var on = front(xs);
    int pw = 420, ph = 320, left = 60, top = 50, gap = 80, legendH = 20 * (xs.size() + 1) + 20;
    int width = left + 2 * pw + gap + 30, height = top + ph + 60 + legendH;
    var all = new ArrayList<>(xs);
    all.add(sft);
    var sb = new StringBuilder();
    sb.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">%n", width, height));
    sb.append(String.format(Locale.ROOT, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>%n", width, height));
    sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"24\" font-size=\"15\">%s</text>%n", left, escape(title)));
    double ylo = Math.floor(min(all, Outcome::success) * 20) / 20, yhi = Math.ceil(max(all, Outcome::success) * 20) / 20;
    if (yhi - ylo < 0.05) yhi = ylo + 0.05;
    panel(sb, left, top, pw, ph, "tool calls per held-out episode", xs, sft, on, Outcome::calls, ylo, yhi);
    panel(sb, left + pw + gap, top, pw, ph, "safety violations per held-out episode", xs, sft, on, Outcome::violations, ylo, yhi);
    int ly = top + ph + 60;
    sb.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"9\" height=\"9\" fill=\"#888\"/><text x=\"%d\" y=\"%d\">SFT (before RL): %s</text>%n",
        left, ly - 9, left + 16, ly, escape(sft.label())));
    for (int i = 0; i < xs.size(); i++) {
      int y = ly + 20 * (i + 1);
      sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">%d: %s%s</text>%n", left, y, i + 1, escape(xs.get(i).label()), on[i] ? " (on the front)" : ""));
    }
    sb.append("</svg>\n");
    return sb.toString();
  }

  private static void panel(StringBuilder sb, int x0, int y0, int w, int h, String xLabel, List<Outcome> xs, Outcome sft, boolean[] on,
                            java.util.function.ToDoubleFunction<Outcome> x, double ylo, double yhi) {
    var all = new ArrayList<>(xs);
    all.add(sft);
    double xlo = min(all, x), xhi = max(all, x);
    double pad = Math.max(1e-3, (xhi - xlo) * 0.1);
    xlo = Math.max(0, xlo - pad);
    xhi += pad;
    sb.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>%n", x0, y0, w, h));
    for (int k = 0; k <= 4; k++) {
      double yv = ylo + (yhi - ylo) * k / 4, xv = xlo + (xhi - xlo) * k / 4;
      int py = y0 + h - (int) Math.round(h * k / 4.0), px = x0 + (int) Math.round(w * k / 4.0);
      sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.1f%%</text>%n", x0 - 6, py + 4, 100 * yv));
      sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%.3g</text>%n", px, y0 + h + 16, xv));
    }
    sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>%n", x0 + w / 2, y0 + h + 36, escape(xLabel)));
    sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">held-out success</text>%n", x0, y0 - 8));
    for (int i = 0; i < xs.size(); i++) {
      var o = xs.get(i);
      double cx = x0 + w * (x.applyAsDouble(o) - xlo) / (xhi - xlo), cy = y0 + h - h * (o.success() - ylo) / (yhi - ylo);
      sb.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"%s\" stroke=\"#1f77b4\" stroke-width=\"2\"/>%n", cx, cy,
          on[i] ? "#1f77b4" : "white"));
      sb.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%.1f\">%d</text>%n", cx + 8, cy - 6, i + 1));
    }
    double sx = x0 + w * (x.applyAsDouble(sft) - xlo) / (xhi - xlo), sy = y0 + h - h * (sft.success() - ylo) / (yhi - ylo);
    sb.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"#888\"/>%n", sx - 5, sy - 5));
  }

  private static double min(List<Outcome> xs, java.util.function.ToDoubleFunction<Outcome> f) {
    return xs.stream().mapToDouble(f).filter(Double::isFinite).min().orElse(0);
  }

  private static double max(List<Outcome> xs, java.util.function.ToDoubleFunction<Outcome> f) {
    return xs.stream().mapToDouble(f).filter(Double::isFinite).max().orElse(1);
  }

  private static String escape(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
  }

  public static void write(Path dir, String title, Outcome sft, List<Outcome> xs) throws java.io.IOException {
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("pareto.csv"), csv(sft, xs));
    Files.writeString(dir.resolve("pareto.svg"), svg(title, sft, xs));
  }
}
