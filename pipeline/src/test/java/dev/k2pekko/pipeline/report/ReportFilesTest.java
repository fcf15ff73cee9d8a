package dev.k2pekko.pipeline.report;

import static org.junit.jupiter.api.Assertions.*;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReportFilesTest {
  @TempDir Path dir;

  static int countRgb(BufferedImage img, int rgb) {
    int n = 0;
    for (int y = 0; y < img.getHeight(); y++) for (int x = 0; x < img.getWidth(); x++) if ((img.getRGB(x, y) & 0xffffff) == rgb) n++;
    return n;
  }

  @Test
  void plotDecodesWithTheRightSizeAndDrawsEachSeries() throws Exception {
    int steps = 200;
    double[] x = new double[steps], loss = new double[steps], other = new double[steps];
    for (int i = 0; i < steps; i++) {
      x[i] = i;
      loss[i] = 5 * Math.exp(-i / 40.0) + 0.1;
      other[i] = i == 50 ? Double.NaN : 4 * Math.exp(-i / 70.0) + 0.2;
    }
    var series = new LinkedHashMap<String, double[][]>();
    series.put("muonclip", new double[][] {x, loss});
    series.put("adamw", new double[][] {x, other});
    Path png = dir.resolve("plots/loss.png");
    LinePlot.write(png, "SFT loss", "step", "loss", series);
    BufferedImage img = ImageIO.read(png.toFile());
    assertNotNull(img, "ImageIO decodes the file");
    assertEquals(LinePlot.WIDTH, img.getWidth());
    assertEquals(LinePlot.HEIGHT, img.getHeight());
    // both series colours are on the image (first two of the palette), and the background is white
    assertTrue(countRgb(img, 0x1f77b4) > 100, "first series drawn");
    assertTrue(countRgb(img, 0xd62728) > 100, "second series drawn");
    assertTrue(countRgb(img, 0xffffff) > img.getWidth() * img.getHeight() / 2);

    Path log = dir.resolve("log.png");
    LinePlot.write(log, "max logit", "step", "S_max", Map.of("head 0", new double[][] {x, loss}), true);
    assertEquals(LinePlot.WIDTH, ImageIO.read(log.toFile()).getWidth());
    assertTrue(countRgb(ImageIO.read(log.toFile()), 0x1f77b4) > 100);
  }

  @Test
  void panelsStackAndSeriesOfOneNameShareAColour() throws Exception {
    double[] x = {0, 1, 2, 3}, up = {1, 10, 100, 1000}, flat = {5, 5, 5, 5};
    var top = new LinePlot.Panel("logits", "step", "S_max", true, List.of(new LinePlot.Series("run a", x, up),
        new LinePlot.Series("run a", x, flat), new LinePlot.Series("tau", new double[] {0, 3}, new double[] {30, 30}, true)));
    var bottom = new LinePlot.Panel("loss", "step", "loss", false, List.of(new LinePlot.Series("run b", x, flat)));
    Path png = dir.resolve("panels.png");
    LinePlot.write(png, List.of(top, bottom));
    BufferedImage img = ImageIO.read(png.toFile());
    assertEquals(LinePlot.WIDTH, img.getWidth());
    assertEquals(2 * LinePlot.HEIGHT, img.getHeight());
    // two curves named "run a" take the first colour, "tau" the second, "run b" (in the lower panel) the third
    assertTrue(countRgb(img.getSubimage(0, 0, LinePlot.WIDTH, LinePlot.HEIGHT), 0x1f77b4) > 100, "run a in the top panel");
    assertTrue(countRgb(img.getSubimage(0, 0, LinePlot.WIDTH, LinePlot.HEIGHT), 0xd62728) > 50, "tau dashed in the top panel");
    assertTrue(countRgb(img.getSubimage(0, LinePlot.HEIGHT, LinePlot.WIDTH, LinePlot.HEIGHT), 0x2ca02c) > 100, "run b in the lower panel");
    assertEquals(0, countRgb(img.getSubimage(0, LinePlot.HEIGHT, LinePlot.WIDTH, LinePlot.HEIGHT), 0x1f77b4), "run a only on top");
    assertThrows(IllegalArgumentException.class, () -> LinePlot.write(png, List.of()));
    assertThrows(IllegalArgumentException.class, () -> new LinePlot.Series("short", x, new double[] {1}));
  }

  @Test
  void plotRejectsMismatchedSeries() {
    var e = assertThrows(IllegalArgumentException.class,
        () -> LinePlot.write(dir.resolve("x.png"), "t", "x", "y", Map.of("bad", new double[][] {{1, 2}, {1}})));
    assertTrue(e.getMessage().contains("'bad'"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> LinePlot.write(dir.resolve("x.png"), "t", "x", "y", Map.of()));
  }

  @Test
  void niceRangeCoversTheDataWithRoundSteps() {
    double[] r = LinePlot.niceRange(0.13, 9.7);
    assertEquals(0, r[0], 1e-12);
    assertEquals(10, r[1], 1e-12);
    assertEquals(2, r[2], 1e-12);
    r = LinePlot.niceRange(3, 3);
    assertTrue(r[0] < 3 && r[1] > 3, r[0] + " " + r[1]);
  }

  @Test
  void csvRoundTripsExactly() throws Exception {
    var rnd = new Random(3);
    var rows = new ArrayList<double[]>();
    for (int i = 0; i < 50; i++) rows.add(new double[] {i, rnd.nextGaussian() * 1e-7, rnd.nextDouble() * 1e9});
    rows.add(new double[] {-0.0, Double.NaN, Double.NEGATIVE_INFINITY});
    var header = List.of("step", "loss, train", "say \"hi\"");
    Path f = dir.resolve("out/curves.csv");
    Csv.write(f, header, rows);
    assertTrue(Files.readString(f).startsWith("step,\"loss, train\",\"say \"\"hi\"\"\"\n0.0,"));
    var t = Csv.read(f);
    assertEquals(header, t.header());
    assertEquals(rows.size(), t.rows().size());
    for (int i = 0; i < rows.size(); i++) {
      for (int c = 0; c < 3; c++) {
        assertEquals(Double.doubleToLongBits(rows.get(i)[c]), Double.doubleToLongBits(t.rows().get(i)[c]), "row " + i + " col " + c);
      }
    }
    var e = assertThrows(IllegalArgumentException.class, () -> Csv.write(f, header, List.of(new double[] {1, 2})));
    assertTrue(e.getMessage().contains("row 0 has 2 values for 3 columns"), e.getMessage());
  }
}
