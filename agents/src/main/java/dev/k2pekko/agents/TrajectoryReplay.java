package dev.k2pekko.agents;

import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.TrajectoriesRecorded;
import dev.k2pekko.protocol.TrajectoryRecorded;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.persistence.jdbc.query.javadsl.JdbcReadJournal;
import org.apache.pekko.persistence.query.Offset;
import org.apache.pekko.persistence.query.PersistenceQuery;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;

/**
 * Streams persisted trajectories back from the journal with Persistence Query ({@code currentEventsByTag} over
 * every tag, one after another), one element per trajectory whether the event holds a batch or (older
 * journals) a single one, filtered by tag, task category and acceptance.
 */
public final class TrajectoryReplay {
  /** Which trajectories to read; null fields match everything. */
  public record Filter(String tag, String category, Boolean accepted) {
    public static final Filter ALL = new Filter(null, null, null);

    boolean matches(Trajectory t) {
      return (category == null || category.equals(t.category()))
          && (accepted == null || accepted == t.verdict().accepted());
    }
  }

  private final ActorSystem<?> system;
  private final int tags;

  public TrajectoryReplay(ActorSystem<?> system) {
    this.system = system;
    this.tags = system.settings().config().getInt("k2.collector.tags");
  }

  public List<String> tags(Filter filter) {
    if (filter.tag() != null) {
      if (!filter.tag().matches(TrajectoryCollector.TAG_PREFIX + "\\d+")
          || Integer.parseInt(filter.tag().substring(TrajectoryCollector.TAG_PREFIX.length())) >= tags) {
        throw new IllegalArgumentException("unknown tag '" + filter.tag() + "': tags are " + TrajectoryCollector.TAG_PREFIX + "0 .. "
            + TrajectoryCollector.TAG_PREFIX + (tags - 1));
      }
      return List.of(filter.tag());
    }
    var out = new ArrayList<String>();
    for (int i = 0; i < tags; i++) out.add(TrajectoryCollector.TAG_PREFIX + i);
    return out;
  }

  /** Every matching trajectory with its tag, in tag order and, within a tag, journal order. */
  public Source<Tagged, NotUsed> source(Filter filter) {
    var journal = PersistenceQuery.get(Adapter.toClassic(system))
        .getReadJournalFor(JdbcReadJournal.class, JdbcReadJournal.Identifier());
    Source<Tagged, NotUsed> all = Source.empty();
    for (String tag : tags(filter)) {
      all = all.concat(journal.currentEventsByTag(tag, Offset.noOffset())
          .mapConcat(envelope -> trajectories(envelope.event()))
          .filter(filter::matches)
          .map(t -> new Tagged(tag, t)));
    }
    return all;
  }

  public record Tagged(String tag, Trajectory trajectory) {}

  /** The trajectories of a journal event: a batch, or the single one of an older journal's event. */
  public static List<Trajectory> trajectories(Object event) {
    return switch (event) {
      case TrajectoriesRecorded e -> e.trajectories();
      case TrajectoryRecorded e -> List.of(e.trajectory());
      default -> List.of();
    };
  }

  public long count(Filter filter, Duration timeout) throws Exception {
    return source(filter).runWith(Sink.fold(0L, (n, t) -> n + 1), system).toCompletableFuture()
        .get(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  public long forEach(Filter filter, Duration timeout, BiConsumer<String, Trajectory> each) throws Exception {
    return source(filter).runWith(Sink.fold(0L, (n, t) -> {
      each.accept(t.tag(), t.trajectory());
      return n + 1;
    }), system).toCompletableFuture().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }
}
