package dev.k2pekko.pipeline.report;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.imageio.ImageIO;

/**
 * PNG line plots for reports and benchmarks: one or more panels stacked vertically, each with several named series of
 * (x, y) points, a legend and axes with round tick values. Series of the same name share a colour (and one legend
 * entry) across the whole image, so many per-head curves of one run read as one. Points with a non-finite x or y (or
 * y &lt;= 0 on a log axis) are left out and break their line. Drawing uses an off-screen {@link BufferedImage} only,
 * which needs no display; text is best effort: on a host without fonts the curves are still drawn.
 */
public final class LinePlot {
  public static final int WIDTH = 960, HEIGHT = 600;
  private static final int LEFT = 80, RIGHT = 24, TOP = 48, BOTTOM = 60;
  private static final Color[] PALETTE = {
    new Color(31, 119, 180), new Color(214, 39, 40), new Color(44, 160, 44), new Color(255, 127, 14),
    new Color(148, 103, 189), new Color(140, 86, 75), new Color(227, 119, 194), new Color(127, 127, 127),
    new Color(188, 189, 34), new Color(23, 190, 207)};

  /** One curve; {@code dashed} draws it as a reference line (a threshold, say). */
  public record Series(String name, double[] x, double[] y, boolean dashed) {
    public Series {
      if (x == null || y == null || x.length != y.length) throw new IllegalArgumentException("series '" + name + "' must be {x[], y[]} of equal length");
    }

    public Series(String name, double[] x, double[] y) {
      this(name, x, y, false);
    }
  }

  /** One panel, {@link #WIDTH} x {@link #HEIGHT} pixels, with a log10 y axis when logY is set. */
  public record Panel(String title, String xLabel, String yLabel, boolean logY, List<Series> series) {}

  private LinePlot() {}

  /** Linear axes; series: name -> {x[], y[]} of equal length, drawn in the map's order. */
  public static void write(Path png, String title, String xLabel, String yLabel, Map<String, double[][]> series) throws IOException {
    write(png, title, xLabel, yLabel, series, false);
  }

  /** As {@link #write(Path, String, String, String, Map)}, with a log10 y axis when logY is set. */
  public static void write(Path png, String title, String xLabel, String yLabel, Map<String, double[][]> series, boolean logY)
      throws IOException {
    var list = new ArrayList<Series>();
    for (var e : series.entrySet()) {
      double[][] xy = e.getValue();
      if (xy == null || xy.length != 2) throw new IllegalArgumentException("series '" + e.getKey() + "' must be {x[], y[]} of equal length");
      list.add(new Series(e.getKey(), xy[0], xy[1]));
    }
    write(png, List.of(new Panel(title, xLabel, yLabel, logY, list)));
  }

  /** Panels stacked top to bottom in one image of {@link #WIDTH} x ({@link #HEIGHT} times the panels). */
  public static void write(Path png, List<Panel> panels) throws IOException {
    if (panels.isEmpty()) throw new IllegalArgumentException("no panel to plot in " + png);
    var colours = new LinkedHashMap<String, Color>();
    for (var p : panels) {
      if (p.series().isEmpty()) throw new IllegalArgumentException("no series to plot in " + png);
      for (var s : p.series()) colours.computeIfAbsent(s.name(), n -> PALETTE[colours.size() % PALETTE.length]);
    }
    var img = new BufferedImage(WIDTH, HEIGHT * panels.size(), BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, img.getWidth(), img.getHeight());
    for (int k = 0; k < panels.size(); k++) draw(g, panels.get(k), k * HEIGHT, colours);
    g.dispose();
    Path parent = png.toAbsolutePath().getParent();
    if (parent != null) Files.createDirectories(parent);
    if (!ImageIO.write(img, "png", png.toFile())) throw new IOException("no PNG writer in this JVM for " + png);
  }

  private static void draw(Graphics2D g, Panel p, int dy, Map<String, Color> colours) {
    boolean logY = p.logY();
    double xmin = Double.POSITIVE_INFINITY, xmax = Double.NEGATIVE_INFINITY, ymin = Double.POSITIVE_INFINITY, ymax = Double.NEGATIVE_INFINITY;
    for (var s : p.series()) {
      for (int i = 0; i < s.x().length; i++) {
        double x = s.x()[i], y = yValue(s.y()[i], logY);
        if (!Double.isFinite(x) || !Double.isFinite(y)) continue;
        xmin = Math.min(xmin, x);
        xmax = Math.max(xmax, x);
        ymin = Math.min(ymin, y);
        ymax = Math.max(ymax, y);
      }
    }
    if (xmin > xmax) { // nothing finite to draw: empty axes
      xmin = 0;
      xmax = 1;
      ymin = 0;
      ymax = 1;
    }
    double[] xr = niceRange(xmin, xmax), yr = niceRange(ymin, ymax);
    int top = dy + TOP;
    var panel = new Area(LEFT, top, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM, xr[0], xr[1], yr[0], yr[1]);
    panel.axes(g, xr[2], yr[2], logY);
    text(g, p.title(), LEFT, top - 20, 15);
    text(g, p.xLabel(), LEFT + panel.w / 2 - 4 * p.xLabel().length(), dy + HEIGHT - 16, 13);
    text(g, p.yLabel() + (logY ? " (log scale)" : ""), 8, top - 6, 13);
    var legend = new ArrayList<String>();
    for (var s : p.series()) {
      Color c = colours.get(s.name());
      panel.series(g, s.x(), s.y(), logY, c, s.dashed());
      if (legend.contains(s.name())) continue;
      int ly = top + 14 + 18 * legend.size();
      g.setColor(c);
      g.setStroke(stroke(2.5f, s.dashed()));
      g.drawLine(WIDTH - RIGHT - 170, ly - 4, WIDTH - RIGHT - 146, ly - 4);
      g.setColor(Color.BLACK);
      text(g, s.name(), WIDTH - RIGHT - 140, ly, 12);
      legend.add(s.name());
    }
  }

  private static BasicStroke stroke(float width, boolean dashed) {
    return dashed ? new BasicStroke(width, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {8, 6}, 0) : new BasicStroke(width);
  }

  private static double yValue(double y, boolean log) {
    return log ? (y > 0 ? Math.log10(y) : Double.NaN) : y;
  }

  /** {lo, hi, step}: the range widened to multiples of a 1, 2 or 5 x 10^k step, about five ticks. */
  static double[] niceRange(double lo, double hi) {
    if (hi - lo < 1e-12 * Math.max(1, Math.abs(hi))) { // one value: give it room
      double pad = lo == 0 ? 1 : Math.abs(lo) * 0.1;
      lo -= pad;
      hi += pad;
    }
    double raw = (hi - lo) / 5, mag = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / mag;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    return new double[] {Math.floor(lo / step) * step, Math.ceil(hi / step) * step, step};
  }

  private static void text(Graphics2D g, String s, int x, int y, int size) {
    try {
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, size));
      g.drawString(s, x, y);
    } catch (RuntimeException | Error e) {
      // no font configuration on this host
    }
  }

  private static String label(double v, double step) {
    double a = Math.abs(v);
    if (a != 0 && (a >= 1e6 || a < 1e-3)) return String.format(Locale.ROOT, "%.2g", v);
    int decimals = Math.max(0, (int) -Math.floor(Math.log10(step) + 1e-9));
    return String.format(Locale.ROOT, "%." + decimals + "f", v);
  }

  private record Area(int x0, int y0, int w, int h, double xmin, double xmax, double ymin, double ymax) {
    int x(double v) {
      return x0 + (int) Math.round((v - xmin) / (xmax - xmin) * w);
    }

    int y(double v) {
      return y0 + h - (int) Math.round((v - ymin) / (ymax - ymin) * h);
    }

    void axes(Graphics2D g, double xstep, double ystep, boolean logY) {
      g.setStroke(new BasicStroke(1f));
      for (double v = ymin; v <= ymax + ystep / 2; v += ystep) {
        int yy = y(v);
        g.setColor(new Color(230, 230, 230));
        g.drawLine(x0 + 1, yy, x0 + w - 1, yy);
        g.setColor(Color.BLACK);
        String s = logY ? label(Math.pow(10, v), Math.pow(10, v) / 10) : label(v, ystep);
        text(g, s, x0 - 8 - 7 * s.length(), yy + 5, 12);
      }
      for (double v = xmin; v <= xmax + xstep / 2; v += xstep) {
        int xx = x(v);
        g.setColor(new Color(230, 230, 230));
        g.drawLine(xx, y0 + 1, xx, y0 + h - 1);
        g.setColor(Color.BLACK);
        String s = label(v, xstep);
        text(g, s, xx - 3 * s.length(), y0 + h + 18, 12);
      }
      g.setColor(Color.BLACK);
      g.drawRect(x0, y0, w, h);
    }

    void series(Graphics2D g, double[] xs, double[] ys, boolean logY, Color c, boolean dashed) {
      g.setColor(c);
      g.setStroke(stroke(1.8f, dashed));
      int px = 0, py = 0;
      boolean have = false;
      for (int i = 0; i < xs.length; i++) {
        double yv = yValue(ys[i], logY);
        if (!Double.isFinite(xs[i]) || !Double.isFinite(yv)) {
          have = false;
          continue;
        }
        int nx = x(xs[i]), ny = y(yv);
        if (have) g.drawLine(px, py, nx, ny);
        else g.fillRect(nx - 1, ny - 1, 3, 3); // a lone point stays visible
        px = nx;
        py = ny;
        have = true;
      }
    }
  }
}
