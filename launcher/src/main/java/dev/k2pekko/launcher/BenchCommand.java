package dev.k2pekko.launcher;

import picocli.CommandLine.Command;

/** {@code k2 bench}: the measurements recorded in BENCHMARKS.md. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks (see BENCHMARKS.md).",
    subcommands = {})
final class BenchCommand implements Runnable {
  @Override public void run() {
    picocli.CommandLine.usage(this, System.err);
  }
}
