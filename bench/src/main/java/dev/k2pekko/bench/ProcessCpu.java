package dev.k2pekko.bench;

import java.time.Duration;

/**
 * CPU time of this JVM and its child processes, for the benches that report CPU per operation ({@code k2 bench mcp},
 * {@code k2 bench sim --firewall both}). A class of its own: {@code bench sim} must not load {@link McpBench}, whose
 * MCP SDK types a bundle without {@code --with-mcp} leaves out.
 */
final class ProcessCpu {
  private ProcessCpu() {}

  private static final boolean JDK_MANAGEMENT = ModuleLayer.boot().findModule("jdk.management").isPresent();

  /**
   * CPU time so far of this JVM and of its child processes (MCP servers, where a bench started some), in seconds. This
   * JVM's from the platform's OperatingSystemMXBean (nanoseconds) where the JRE has module jdk.management, else (a
   * bundle's JRE) from ProcessHandle (the kernel's clock ticks).
   */
  static double seconds() {
    long n = JDK_MANAGEMENT
        ? ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime()
        : ProcessHandle.current().info().totalCpuDuration().map(Duration::toNanos).orElse(0L);
    for (var ch : ProcessHandle.current().children().toList()) n += ch.info().totalCpuDuration().map(Duration::toNanos).orElse(0L);
    return n / 1e9;
  }
}
