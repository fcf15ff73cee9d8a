package dev.k2pekko.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class MetricsTest {
  @Test void theSameNameAndLabelsInAnyOrderAreOneMeter() {
    var m = new Metrics();
    var a = m.counter("k2_calls", "calls", "outcome", "ok", "node", "a");
    var b = m.counter("k2_calls", "other help", "node", "a", "outcome", "ok");
    assertSame(a, b);
    a.increment();
    b.increment(2);
    assertEquals(3, a.count());
    assertEquals(1, m.meters().size());
    assertEquals("k2_calls{node=\"a\",outcome=\"ok\"}", a.id().toString());
  }

  @Test void aNameUsedForAnotherKindIsRefused() {
    var m = new Metrics();
    m.counter("k2_x", "x");
    var e = assertThrows(IllegalArgumentException.class, () -> m.gauge("k2_x", "x"));
    assertTrue(e.getMessage().contains("not a Gauge"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> m.counter("k2-bad", "x"));
    assertThrows(IllegalArgumentException.class, () -> m.counter("k2_x", "x", "odd"));
    assertThrows(IllegalArgumentException.class, () -> m.counter("k2_x", "x").increment(-1));
  }

  @Test void gaugesStartAsNaNAndTimersKeepCountSumMaxAndLast() {
    var m = new Metrics();
    assertTrue(Double.isNaN(m.gauge("k2_g", "g").value()));
    var t = m.timer("k2_t", "t");
    t.recordNanos(2_000_000);
    t.recordNanos(1_000_000);
    assertEquals(2, t.count());
    assertEquals(0.003, t.totalSeconds(), 1e-12);
    assertEquals(0.002, t.maxSeconds(), 1e-12);
    assertEquals(0.001, t.lastSeconds(), 1e-12);
  }

  @Test void aSeriesKeepsItsLatestPoints() {
    var m = new Metrics();
    var s = m.series("k2_loss", "loss");
    assertTrue(Double.isNaN(s.last()));
    for (int i = 0; i < Metrics.SERIES_CAPACITY + 5; i++) s.add(i, i * 2.0);
    assertEquals(Metrics.SERIES_CAPACITY, s.points().size());
    assertEquals(5, s.points().getFirst().x());
    assertEquals(2.0 * (Metrics.SERIES_CAPACITY + 4), s.last());
  }
}
