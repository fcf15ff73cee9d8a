package dev.k2pekko.launcher;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code k2} command. Exit codes (README): 0 done, 1 failed or incomplete, 2 bad input (flags, config, paths,
 * tool-spec files; one line, nothing started), 3 no JDK 25 (the script), 4 database unreachable, 5 journal missing,
 * damaged or inconsistent, 6 this node was downed by the cluster ({@code k2 node}).
 */
@Command(name = "k2", mixinStandardHelpOptions = true, version = "k2-pekko 0.1.0",
    description = "The Kimi K2 pipeline as a Pekko actor system.",
    subcommands = {RunCommand.class, NodeCommand.class, ServeCommand.class, ReplayCommand.class, ExportCommand.class, ReportCommand.class, JournalCommand.class, dev.k2pekko.bundle.BundleCommand.class, BenchCommand.class, CertsCommand.class,
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

  public static final int FAILED = 1, BAD_INPUT = 2, UNREACHABLE = 4, JOURNAL = 5, DOWNED = 6;

  static CommandLine commandLine() {
    var cl = new CommandLine(new K2());
    // Bad input is one line on stderr (what is wrong and where), never a usage page or a stack trace.
    cl.setParameterExceptionHandler((e, args) -> {
      var cmd = e.getCommandLine();
      cmd.getErr().println(name(cmd) + ": " + oneLine(e.getMessage()) + " (`" + name(cmd) + " --help` lists the flags)");
      return BAD_INPUT;
    });
    cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
      var known = knownCause(e);
      if (known == null) throw e;
      cmd.getErr().println(name(cmd) + ": " + oneLine(known.getMessage()));
      return exitCode(known);
    });
    return cl;
  }

  /** The exit code of an exception out of a command: FAILED for anything that is not the user's input or database. */
  static int exitCode(Throwable e) {
    return switch (e) {
      case IllegalArgumentException x -> BAD_INPUT; // UsageError, and bad values found later (tool spec files, run specs)
      case com.typesafe.config.ConfigException x -> BAD_INPUT;
      case dev.k2pekko.agents.JournalSchema.Unreachable x -> UNREACHABLE;
      case dev.k2pekko.agents.JournalSchema.Missing x -> JOURNAL;
      case dev.k2pekko.agents.JournalSchema.Damaged x -> JOURNAL;
      case Nodes.Downed x -> DOWNED;
      default -> FAILED;
    };
  }

  /**
   * {@code e} if it has an exit code of its own; else the journal's exception among its causes (a database that went
   * away mid-run arrives wrapped by the futures it passed through); else null. Other causes are not searched: an
   * IllegalArgumentException deep in a failure is a bug, not bad input.
   */
  static Throwable knownCause(Throwable e) {
    if (exitCode(e) != FAILED) return e;
    for (var t = e.getCause(); t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t.getClass().getEnclosingClass() == dev.k2pekko.agents.JournalSchema.class) return t;
    }
    return null;
  }

  private static String name(CommandLine cmd) {
    return cmd.getCommandSpec().qualifiedName();
  }

  static String oneLine(String s) {
    return s == null ? "" : s.replaceAll("\\s*\\R\\s*", " ").strip();
  }

  @Override public void run() {
    CommandLine.usage(this, System.err);
  }
}
