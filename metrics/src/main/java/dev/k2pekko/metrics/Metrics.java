package dev.k2pekko.metrics;

import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;

/**
 * The node's meters, one registry per actor system (a Pekko extension): actors that own a fact count it here
 * ({@code Metrics.get(system).counter(...)}) and know nothing of a metrics library; the launcher's operations
 * endpoint exports every meter in the Prometheus format and to the dashboard. Asking for a meter that exists returns
 * it, so two actors of one kind on a node share their counts.
 */
public final class Metrics implements Extension {
  /** Points a series keeps unless told otherwise. */
  public static final int SERIES_CAPACITY = 2000;

  private static final class Id extends ExtensionId<Metrics> {
    @Override public Metrics createExtension(ActorSystem<?> system) {
      return new Metrics();
    }
  }

  private static final Id ID = new Id();

  public static Metrics get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  private final ConcurrentHashMap<MeterId, Meter> byId = new ConcurrentHashMap<>();
  /** In the order they were made: how the dashboard lists stages. */
  private final CopyOnWriteArrayList<Meter> ordered = new CopyOnWriteArrayList<>();

  /** A registry of its own (tests, and code that runs without an actor system). */
  public Metrics() {}

  public Meter.Counter counter(String name, String help, String... labels) {
    return meter(MeterId.of(name, help, labels), Meter.Counter.class, Meter.Counter::new);
  }

  public Meter.Gauge gauge(String name, String help, String... labels) {
    return meter(MeterId.of(name, help, labels), Meter.Gauge.class, Meter.Gauge::new);
  }

  public Meter.Timer timer(String name, String help, String... labels) {
    return meter(MeterId.of(name, help, labels), Meter.Timer.class, Meter.Timer::new);
  }

  public Meter.Series series(String name, String help, String... labels) {
    return meter(MeterId.of(name, help, labels), Meter.Series.class, id -> new Meter.Series(id, SERIES_CAPACITY));
  }

  /** Every meter so far, in the order they were made. */
  public List<Meter> meters() {
    return List.copyOf(ordered);
  }

  private <M extends Meter> M meter(MeterId id, Class<M> kind, Function<MeterId, M> make) {
    var m = byId.computeIfAbsent(id, i -> {
      var made = make.apply(i);
      ordered.add(made);
      return made;
    });
    if (!kind.isInstance(m)) {
      throw new IllegalArgumentException(id + " is a " + m.getClass().getSimpleName() + ", not a " + kind.getSimpleName());
    }
    return kind.cast(m);
  }
}
