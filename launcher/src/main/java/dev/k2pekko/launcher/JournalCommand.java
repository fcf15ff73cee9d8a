package dev.k2pekko.launcher;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.k2pekko.agents.JournalCheck;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code k2 journal check}: verifies a journal, read-only. */
@Command(name = "journal", mixinStandardHelpOptions = true, description = "Inspect a journal without changing it.",
    subcommands = {JournalCommand.Check.class})
final class JournalCommand implements Runnable {
  @Override public void run() {
    throw new NodeConfig.UsageError("give a subcommand: k2 journal check");
  }

  @Command(name = "check", mixinStandardHelpOptions = true,
      description = "Open the journal read-only and verify it: the H2 file's structure, every event decodable, sequence numbers "
          + "without gaps per persistence id, tags consistent with the trajectories, no trajectory stored twice. Exit 0 when "
          + "clean, 5 when something is wrong (listed), 4 when the database cannot be reached.")
  static final class Check implements Callable<Integer> {
    @Mixin NodeConfig node;

    @Option(names = "--json", description = "print the findings as one JSON object on the last line of stdout")
    boolean json;

    @Override public Integer call() throws Exception {
      var config = node.buildReadOnly();
      var system = Nodes.local(config, "k2-journal-check");
      try {
        var r = JournalCheck.run(config, system);
        if (json) {
          var o = new ObjectMapper().createObjectNode();
          o.put("clean", r.clean()).put("events", r.events()).put("persistence_ids", r.persistenceIds())
              .put("trajectories", r.trajectories()).put("tag_rows", r.tagRows()).put("duplicate_trajectories", r.duplicateTrajectories())
              .put("problems", r.problemCount());
          var tags = o.putObject("events_by_tag");
          r.eventsByTag().forEach(tags::put);
          var listed = o.putArray("listed");
          r.problems().forEach(listed::add);
          System.out.println(o);
        } else {
          String url = config.getString("pekko-persistence-jdbc.shared-databases.slick.db.url");
          System.out.printf("journal %s%n", url.split(";")[0].split("\\?")[0]);
          System.out.printf("  events %,d of %,d persistence ids, %,d trajectories, %,d tag rows%n", r.events(), r.persistenceIds(),
              r.trajectories(), r.tagRows());
          System.out.printf("  %s%n", r.clean() ? "clean: every event decodes, sequence numbers without gaps, tags consistent, no trajectory twice"
              : String.format("%,d problems%s:", r.problemCount(), r.problemCount() > r.problems().size() ? " (the first " + r.problems().size() + ")" : ""));
          for (var p : r.problems()) System.out.println("    " + p);
        }
        return r.clean() ? 0 : K2.JOURNAL;
      } finally {
        Nodes.stop(system);
      }
    }
  }
}
