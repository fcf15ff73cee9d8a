package dev.k2pekko.clip;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.ps.server.PsProtocol.ClipDecision;
import dev.k2pekko.ps.server.PsProtocol.CloseStep;
import dev.k2pekko.ps.server.PsProtocol.ReportMaxLogits;
import dev.k2pekko.ps.server.PsProtocol.RescaleQK;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

class ClipMonitorTest {
  static final ActorTestKit kit = ActorTestKit.create();

  @AfterAll static void stop() { kit.shutdownTestKit(); }

  @Test void rescalesOnlyTheHeadsOverTauFromTheMaxOverLearners() {
    var monitor = kit.spawn(ClipMonitor.create(10.0, 2, 3, Duration.ofSeconds(5)));
    var decisions = kit.<ClipDecision>createTestProbe();
    monitor.tell(new ReportMaxLogits(4, "a", new double[][] {{5, 12, 3}, {9, 9, -2}}));
    monitor.tell(new ReportMaxLogits(4, "b", new double[][] {{11, 8, 3}, {9, 40, -1}}));
    monitor.tell(new CloseStep(4, new ArrayList<>(List.of("a", "b")), decisions.getRef()));
    var d = decisions.receiveMessage();
    assertEquals(4, d.version());
    // max over learners: {{11, 12, 3}, {9, 40, -1}}; over tau 10: (0,0) 11, (0,1) 12, (1,1) 40
    assertEquals(List.of(new RescaleQK(4, 0, 0, 10.0 / 11), new RescaleQK(4, 0, 1, 10.0 / 12), new RescaleQK(4, 1, 1, 10.0 / 40)), d.rescales());
    var history = kit.<ClipMonitor.History>createTestProbe();
    monitor.tell(new ClipMonitor.GetHistory(history.getRef()));
    var h = history.receiveMessage();
    assertEquals(1, h.steps().size());
    assertEquals(3, h.steps().getFirst().clipped());
    assertEquals(40.0, h.largest());
    assertEquals(1, h.clipCounts()[1][1]);
    assertEquals(0, h.clipCounts()[1][0]);
  }

  @Test void aLearnerThatDoesNotReportIsWaitedForOnlyUntilTheTimeout() {
    var monitor = kit.spawn(ClipMonitor.create(10.0, 1, 2, Duration.ofMillis(300)));
    var decisions = kit.<ClipDecision>createTestProbe();
    monitor.tell(new ReportMaxLogits(1, "a", new double[][] {{20, 1}}));
    monitor.tell(new CloseStep(1, new ArrayList<>(List.of("a", "b")), decisions.getRef()));
    decisions.expectNoMessage(Duration.ofMillis(150));
    var d = decisions.receiveMessage(Duration.ofSeconds(3));
    assertEquals(List.of(new RescaleQK(1, 0, 0, 0.5)), d.rescales());
    // a late report for a closed step changes nothing; the next step is decided as soon as all have reported
    monitor.tell(new ReportMaxLogits(1, "b", new double[][] {{99, 99}}));
    monitor.tell(new ReportMaxLogits(2, "a", new double[][] {{1, 1}}));
    monitor.tell(new ReportMaxLogits(2, "b", new double[][] {{2, 9.99}}));
    monitor.tell(new CloseStep(2, new ArrayList<>(List.of("a", "b")), decisions.getRef()));
    var d2 = decisions.receiveMessage(Duration.ofMillis(250));
    assertTrue(d2.rescales().isEmpty());
  }

  @Test void malformedReportsAreIgnored() {
    var monitor = kit.spawn(ClipMonitor.create(10.0, 1, 2, Duration.ofMillis(200)));
    var decisions = kit.<ClipDecision>createTestProbe();
    monitor.tell(new ReportMaxLogits(1, "a", new double[][] {{50, 50, 50}}));
    monitor.tell(new CloseStep(1, new ArrayList<>(List.of("a")), decisions.getRef()));
    assertTrue(decisions.receiveMessage(Duration.ofSeconds(2)).rescales().isEmpty());
  }
}
