package dev.k2pekko.metrics;

import java.util.ArrayDeque;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * A meter of the facade. Each is safe to update from any thread (an actor's, or a compute thread's callback) and
 * cheap enough for a hot path: a counter increment is a {@link LongAdder} add.
 */
public sealed interface Meter permits Meter.Counter, Meter.Gauge, Meter.Timer, Meter.Series {
  MeterId id();

  /** A count that only goes up (tool calls, episodes, refusals). */
  final class Counter implements Meter {
    private final MeterId id;
    private final LongAdder count = new LongAdder();

    Counter(MeterId id) { this.id = id; }

    public MeterId id() { return id; }

    public void increment() { count.increment(); }

    public void increment(long n) {
      if (n < 0) throw new IllegalArgumentException(id + ": a counter cannot go down by " + n);
      count.add(n);
    }

    public long count() { return count.sum(); }
  }

  /** A value that is set (a version, a backlog, a head's last max logit); NaN until the first set. */
  final class Gauge implements Meter {
    private final MeterId id;
    private final AtomicLong bits = new AtomicLong(Double.doubleToRawLongBits(Double.NaN));

    Gauge(MeterId id) { this.id = id; }

    public MeterId id() { return id; }

    public void set(double v) { bits.set(Double.doubleToRawLongBits(v)); }

    public double value() { return Double.longBitsToDouble(bits.get()); }
  }

  /** Durations: how many, their sum, the largest and the last (seconds when read). */
  final class Timer implements Meter {
    private final MeterId id;
    private final LongAdder count = new LongAdder();
    private final LongAdder totalNanos = new LongAdder();
    private final AtomicLong maxNanos = new AtomicLong();
    private final AtomicLong lastNanos = new AtomicLong();

    Timer(MeterId id) { this.id = id; }

    public MeterId id() { return id; }

    public void recordNanos(long nanos) {
      if (nanos < 0) nanos = 0;
      count.increment();
      totalNanos.add(nanos);
      lastNanos.set(nanos);
      maxNanos.accumulateAndGet(nanos, Math::max);
    }

    public long count() { return count.sum(); }

    public double totalSeconds() { return totalNanos.sum() / 1e9; }

    public double maxSeconds() { return maxNanos.get() / 1e9; }

    public double lastSeconds() { return lastNanos.get() / 1e9; }
  }

  /**
   * The latest points of a curve (x: a step or version, y: a loss or reward), at most {@code capacity}: what the
   * dashboard draws. Exported to Prometheus as a gauge of the last y.
   */
  final class Series implements Meter {
    public record Point(double x, double y) {}

    private final MeterId id;
    private final int capacity;
    private final ArrayDeque<Point> points;
    private volatile Point last;

    Series(MeterId id, int capacity) {
      if (capacity < 1) throw new IllegalArgumentException(id + ": capacity must be positive");
      this.id = id;
      this.capacity = capacity;
      this.points = new ArrayDeque<>(capacity);
    }

    public MeterId id() { return id; }

    public synchronized void add(double x, double y) {
      if (points.size() == capacity) points.removeFirst();
      var p = new Point(x, y);
      points.addLast(p);
      last = p;
    }

    public synchronized java.util.List<Point> points() { return java.util.List.copyOf(points); }

    /** The last y, NaN before the first point. */
    public double last() {
      var p = last;
      return p == null ? Double.NaN : p.y();
    }
  }
}
