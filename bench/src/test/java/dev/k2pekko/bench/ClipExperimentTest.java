package dev.k2pekko.bench;

import static org.junit.jupiter.api.Assertions.*;

import dev.k2pekko.pipeline.report.LinePlot;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A short run of the experiment: clip holds every head at or under tau after every step; outputs are written. */
class ClipExperimentTest {
  @Test
  void shortRun(@TempDir Path dir) throws Exception {
    var cfg = new ClipExperiment.Config(3, 30, 0.08, 8.0, 4, 6, 0.0);
    var r = ClipExperiment.run(cfg, dir);
    assertTrue(r.clip().maxLogit() <= 8.0 * (1 + 1e-9), "clip max " + r.clip().maxLogit());
    assertTrue(r.vanilla().maxLogit() > 8.0, "vanilla never crossed tau: " + r.vanilla().maxLogit());
    for (double[] row : r.clip().headMax()) for (double v : row) assertTrue(v <= 8.0 * (1 + 1e-9) || row == r.clip().headMax()[0]);
    assertEquals(1 + 2 * (cfg.steps() + 1), Files.readAllLines(r.csv()).size());
    var img = ImageIO.read(r.png().toFile());
    assertEquals(LinePlot.WIDTH, img.getWidth());
    assertEquals(2 * LinePlot.HEIGHT, img.getHeight(), "two panels: max logits above the loss");
    assertTrue(r.toJson().matches("\\{\"tau\":8\\.0+,\"vanilla\":\\{\"max_logit\":[0-9.e+-]+,\"loss\":[0-9.e+-]+},\"clip\":\\{\"max_logit\":[0-9.e+-]+,\"loss\":[0-9.e+-]+}}"), r.toJson());
  }
}
