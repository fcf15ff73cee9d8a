package dev.k2pekko.launcher;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code k2} command. Exit codes: 0 done, 1 failed or incomplete, 2 usage, 4 database unreachable. */
@Command(name = "k2", mixinStandardHelpOptions = true, version = "k2-pekko 0.1.0",
    description = "The Kimi K2 pipeline as a Pekko actor system.",
    subcommands = {RunCommand.class, NodeCommand.class, ReplayCommand.class, ExportCommand.class, ReportCommand.class, dev.k2pekko.bundle.BundleCommand.class, BenchCommand.class,
        CommandLine.HelpCommand.class})
public final class K2 implements Runnable {
  public static void main(String[] args) {
    org.slf4j.LoggerFactory.getLogger(K2.class); // initialise logging before Pekko's threads log concurrently
    int code;
    try {
      code = commandLine().execute(args);
    } catch (Throwable t) {
      // an Error (a class missing from a trimmed runtime, say) passes picocli's handler: report it and exit, since
      // the threads of an ActorSystem that started would otherwise keep the JVM alive
      System.err.println("k2: failed: " + t);
      t.printStackTrace();
      code = 1;
    }
    System.exit(code);
  }

  static CommandLine commandLine() {
    var cl = new CommandLine(new K2());
    cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
      if (e instanceof IllegalArgumentException) { // UsageError, and bad values found later (tool spec files, run specs)
        cmd.getErr().println("k2: " + e.getMessage());
        cmd.usage(cmd.getErr());
        return 2;
      }
      if (e instanceof dev.k2pekko.agents.JournalSchema.Unreachable) {
        cmd.getErr().println("k2: " + e.getMessage());
        return 4;
      }
      throw e;
    });
    return cl;
  }

  @Override public void run() {
    CommandLine.usage(this, System.err);
  }
}
