package dev.k2pekko.launcher.ops;

import dev.k2pekko.metrics.Meter;
import dev.k2pekko.metrics.MeterId;
import dev.k2pekko.metrics.Metrics;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.FunctionTimer;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The node's meters in the Prometheus text format, through Micrometer: every meter of the {@link Metrics} facade
 * (bound on the scrape after it first appears: a head's gauge, a new rejection reason) and the JVM's own figures.
 * Counters become {@code NAME_total}, timers {@code NAME_seconds_count}, {@code NAME_seconds_sum} and
 * {@code NAME_seconds_max}, series a gauge of their last value.
 */
final class PrometheusExport implements AutoCloseable {
  private final Metrics metrics;
  private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final Set<MeterId> bound = new HashSet<>();
  private final JvmGcMetrics gc = new JvmGcMetrics();

  PrometheusExport(Metrics metrics) {
    this.metrics = metrics;
    new JvmMemoryMetrics().bindTo(registry);
    gc.bindTo(registry);
    threads();
    new ClassLoaderMetrics().bindTo(registry);
    new ProcessorMetrics().bindTo(registry);
    new UptimeMetrics().bindTo(registry);
  }

  /**
   * Thread counts under Micrometer's names, without its per-state gauges: those call ThreadMXBean.getThreadInfo for
   * every thread once per state and scrape, a safepoint each, which a busy node pays for.
   */
  private void threads() {
    var mx = java.lang.management.ManagementFactory.getThreadMXBean();
    Gauge.builder("jvm.threads.live", mx, m -> m.getThreadCount()).description("live threads, daemon and not").baseUnit("threads").register(registry);
    Gauge.builder("jvm.threads.daemon", mx, m -> m.getDaemonThreadCount()).description("live daemon threads").baseUnit("threads").register(registry);
    Gauge.builder("jvm.threads.peak", mx, m -> m.getPeakThreadCount()).description("the most live threads since the JVM started").baseUnit("threads").register(registry);
  }

  /** The text format of every meter now. */
  synchronized String scrape() {
    for (var m : metrics.meters()) if (bound.add(m.id())) bind(m);
    return registry.scrape();
  }

  private void bind(Meter m) {
    var id = m.id();
    var tags = new ArrayList<Tag>();
    id.labels().forEach((k, v) -> tags.add(Tag.of(k, v)));
    switch (m) {
      case Meter.Counter c -> FunctionCounter.builder(id.name(), c, x -> x.count()).description(id.help()).tags(tags).register(registry);
      case Meter.Gauge g -> Gauge.builder(id.name(), g, Meter.Gauge::value).description(id.help()).tags(tags).register(registry);
      case Meter.Timer t -> {
        FunctionTimer.builder(id.name(), t, Meter.Timer::count, Meter.Timer::totalSeconds, TimeUnit.SECONDS)
            .description(id.help()).tags(tags).register(registry);
        Gauge.builder(id.name() + "_seconds_max", t, Meter.Timer::maxSeconds).description(id.help() + " (the longest)").tags(tags).register(registry);
      }
      case Meter.Series s -> Gauge.builder(id.name(), s, Meter.Series::last).description(id.help() + " (the last value)").tags(tags).register(registry);
    }
  }

  @Override public void close() {
    gc.close();
    registry.close();
  }
}
