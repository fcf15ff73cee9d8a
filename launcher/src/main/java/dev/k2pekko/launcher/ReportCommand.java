package dev.k2pekko.launcher;

import dev.k2pekko.pipeline.RunReport;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code k2 report}: the clip-monitor history and the loss and reward curves of a pipeline run, as CSV and PNG. */
@Command(name = "report", mixinStandardHelpOptions = true,
    description = "Write the report of a pipeline run (default: the last one in the data directory): steps.csv (loss, "
        + "reward per version), clip.csv (per-head max logit per step, fraction clipped), clip-counts.csv, eval.csv, and "
        + "loss.png, reward.png, clip.png drawn from them.")
final class ReportCommand implements Callable<Integer> {
  @Option(names = "--data-dir", description = "data directory of the run (default: data)", defaultValue = "data")
  String dataDir;

  @Option(names = "--run", description = "pipeline run id (default: the last run, from <data-dir>/checkpoints/LATEST)")
  String run;

  @Option(names = "--out", description = "output directory (default: report)", defaultValue = "report")
  String out;

  @Option(names = "--tau", description = "QK-Clip threshold drawn on the clip plot (default: k2.ps.tau's default)")
  Double tau;

  @Override public Integer call() throws Exception {
    var data = Path.of(dataDir);
    if (!Files.isDirectory(data)) throw new NodeConfig.UsageError("--data-dir " + data.toAbsolutePath() + ": no such directory");
    // The report describes what the journal holds: a damaged journal is named rather than reported on (read only).
    var journal = data.resolve("k2-journal.mv.db");
    if (Files.exists(journal)) dev.k2pekko.agents.H2File.verify(journal);
    String id = run;
    if (id != null && !id.matches("[A-Za-z0-9_.-]{1,64}")) throw new NodeConfig.UsageError("--run takes a run id (letters, digits, '.', '_', '-'), got '" + id + "'");
    if (id == null) {
      var latest = data.resolve("checkpoints").resolve("LATEST");
      if (!Files.isRegularFile(latest)) throw new NodeConfig.UsageError("no pipeline run in " + data + " (no " + latest + "); run `k2 run` first");
      id = Files.readString(latest).trim();
    }
    var src = data.resolve("reports").resolve(id);
    if (!Files.isRegularFile(src.resolve("steps.csv"))) throw new NodeConfig.UsageError("no report of run " + id + " in " + src);
    if (!RunReport.canPlot()) throw new NodeConfig.UsageError("this Java has no java.desktop to draw the plots (a k2 bundle's JRE): run k2 report on a full JDK");
    var dst = OutputPaths.directory(Path.of(out));
    for (var name : new String[] {"steps.csv", "clip.csv", "clip-counts.csv", "eval.csv"}) {
      if (Files.isRegularFile(src.resolve(name)) && !src.toAbsolutePath().equals(dst.toAbsolutePath())) {
        Files.copy(src.resolve(name), dst.resolve(name), StandardCopyOption.REPLACE_EXISTING);
      }
    }
    RunReport.plots(src, tau != null ? tau : com.typesafe.config.ConfigFactory.load().getDouble("k2.ps.tau"), dst);
    System.out.println("k2: report of run " + id + " written to " + dst.toAbsolutePath());
    return 0;
  }
}
