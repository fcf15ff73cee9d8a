package dev.k2pekko.launcher;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.k2pekko.agents.TrajectoryReplay;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code k2 replay}: persisted trajectories streamed back from the journal. */
@Command(name = "replay", mixinStandardHelpOptions = true,
    description = "Stream persisted trajectories back from the journal (Persistence Query, currentEventsByTag over all "
        + "tags) and print them, or count them.")
final class ReplayCommand implements Callable<Integer> {
  @Mixin NodeConfig node;
  @Mixin Filters filters;

  @Option(names = "--count", description = "print only how many match")
  boolean count;

  @Option(names = "--refusals", description = "the firewall's audit trail instead: every refused tool call (time, node "
      + "incarnation's agent, episode, tool, reason, detail); with --count only how many")
  boolean refusals;

  @Option(names = "--limit", description = "print at most this many", defaultValue = "2147483647")
  long limit;

  @Option(names = "--json", description = "print the summary as one JSON object on the last line of stdout")
  boolean json;

  @Option(names = "--timeout", description = "give up after this many seconds (default ${DEFAULT-VALUE})", defaultValue = "600")
  int timeoutSeconds;

  /** Filters shared by replay and export. */
  static final class Filters {
    @Option(names = "--tag", description = "only this tag (trajectories-0 .. trajectories-7)")
    String tag;

    @Option(names = "--category", description = "only this task category (core, finance, travel, ...)")
    String category;

    @ArgGroup(exclusive = true)
    Acceptance acceptance;

    static final class Acceptance {
      @Option(names = "--accepted", description = "only accepted trajectories") boolean accepted;
      @Option(names = "--rejected", description = "only rejected ones (kept with --persist all)") boolean rejected;
    }

    TrajectoryReplay.Filter filter() {
      return new TrajectoryReplay.Filter(tag, category, acceptance == null ? null : acceptance.accepted);
    }
  }

  private long refusals(org.apache.pekko.actor.typed.ActorSystem<?> system, Duration timeout) throws Exception {
    var printed = new long[1];
    return dev.k2pekko.agents.FirewallAudit.replay(system)
        .runFold(0L, (n, r) -> {
          if (!count && printed[0]++ < limit) {
            System.out.printf("%s %s agent=%s episode=%s call=%s tool=%s: %s%n", java.time.Instant.ofEpochMilli(r.atMillis()),
                r.reason(), r.agentId(), r.episodeId(), r.callId(), r.tool(), r.detail());
          }
          return n + 1;
        }, system)
        .thenApply(n -> {
          if (count && !json) System.out.println(n);
          return n;
        })
        .toCompletableFuture().get(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
  }

  @Override public Integer call() throws Exception {
    if (timeoutSeconds < 1) throw new NodeConfig.UsageError("--timeout must be at least 1 second");
    if (limit < 0) throw new NodeConfig.UsageError("--limit must be >= 0");
    var config = node.buildReadOnly();
    var system = Nodes.local(config, "k2-replay");
    try {
      var replay = new TrajectoryReplay(system);
      var filter = filters.filter();
      var timeout = Duration.ofSeconds(timeoutSeconds);
      long start = System.nanoTime();
      long n;
      if (refusals) {
        n = refusals(system, timeout);
      } else if (count) {
        n = replay.count(filter, timeout);
        if (!json) System.out.println(n);
      } else {
        var printed = new long[1];
        n = replay.forEach(filter, timeout, (tag, t) -> {
          if (printed[0]++ >= limit) return;
          System.out.printf("%s %s %s d=%d %s steps=%d answer=%s%n    %s%n", tag, t.trajectoryId(), t.category(), t.difficulty(),
              t.verdict().accepted() ? "ACCEPTED" : "REJECTED " + t.verdict().reasons(), t.steps().size(), t.finalAnswer(), t.prompt());
          for (var s : t.steps()) {
            System.out.printf("      %s(%s) -> %s%s%n", s.tool(), s.arguments(), s.error() != null ? s.error() + ": " : "", s.result());
          }
        });
      }
      double secs = (System.nanoTime() - start) / 1e9;
      if (json) System.out.println(new ObjectMapper().createObjectNode().put("count", n).put("seconds", secs)
          .put("per_second", Math.round(n / Math.max(secs, 1e-9))));
      return 0;
    } finally {
      Nodes.stop(system);
    }
  }
}
