package dev.k2pekko.clip;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.ClipMonitorProtocol.CloseStep;
import dev.k2pekko.protocol.ClipMonitorProtocol.GetHistory;
import dev.k2pekko.protocol.ClipMonitorProtocol.History;
import dev.k2pekko.protocol.ClipMonitorProtocol.ReportMaxLogits;
import dev.k2pekko.protocol.ClipMonitorProtocol.StepMaxLogits;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

class ClipMonitorTest {
  static final ActorTestKit kit = ActorTestKit.create();

  @AfterAll static void stop() { kit.shutdownTestKit(); }

  @Test void answersWithTheMaxOverTheStepsLearnersAndKeepsIt() {
    var monitor = kit.spawn(ClipMonitor.create(10.0, 2, 3, Duration.ofSeconds(5)));
    var maxima = kit.<StepMaxLogits>createTestProbe();
    monitor.tell(new ReportMaxLogits(4, "a", new double[][] {{5, 12, 3}, {9, 9, -2}}));
    monitor.tell(new ReportMaxLogits(4, "b", new double[][] {{11, 8, 3}, {9, 40, -1}}));
    monitor.tell(new ReportMaxLogits(4, "c", new double[][] {{99, 99, 99}, {99, 99, 99}})); // not a contributor of step 4
    monitor.tell(new CloseStep(4, new ArrayList<>(List.of("a", "b")), maxima.getRef()));
    var d = maxima.receiveMessage();
    assertEquals(4, d.version());
    assertEquals(2, d.reporters());
    assertArrayEquals(new double[] {11, 12, 3}, d.maxLogit()[0]);
    assertArrayEquals(new double[] {9, 40, -1}, d.maxLogit()[1]);
    // the node's meters show the same maxima per head, and tau (what the dashboard's heatmap draws)
    var metrics = dev.k2pekko.metrics.Metrics.get(kit.system());
    assertEquals(12.0, metrics.gauge("k2_clip_max_logit", "", "layer", "0", "head", "1").value());
    assertEquals(40.0, metrics.gauge("k2_clip_max_logit", "", "layer", "1", "head", "1").value());
    assertEquals(10.0, metrics.gauge("k2_clip_tau", "").value());
    assertEquals(4.0, metrics.gauge("k2_clip_measured_version", "").value());
    var history = kit.<History>createTestProbe();
    monitor.tell(new GetHistory(history.getRef()));
    var h = history.receiveMessage();
    assertEquals(10.0, h.tau());
    assertEquals(1, h.steps().size());
    assertEquals(40.0, h.largest());
  }

  @Test void keepsTheMaximaTrainedOnApartFromTheServedOnesWhenALearnerReClipped() {
    var monitor = kit.spawn(ClipMonitor.create(10.0, 1, 2, Duration.ofSeconds(5)));
    var maxima = kit.<StepMaxLogits>createTestProbe();
    // learner a found head 1 at 16 on the weights as served and trained on a copy with it at 8.5; b had nothing over tau
    monitor.tell(new ReportMaxLogits(1, "a", new double[][] {{3, 16}}, new double[][] {{3, 8.5}}));
    monitor.tell(new ReportMaxLogits(1, "b", new double[][] {{4, 9}}));
    monitor.tell(new CloseStep(1, new ArrayList<>(List.of("a", "b")), maxima.getRef()));
    var d = maxima.receiveMessage();
    assertArrayEquals(new double[] {4, 16}, d.maxLogit()[0]); // what the parameter server's rescales follow
    assertArrayEquals(new double[] {4, 9}, d.trained()[0]);
    assertTrue(d.reclipped());
    monitor.tell(new ReportMaxLogits(2, "a", new double[][] {{5, 7}}));
    monitor.tell(new CloseStep(2, new ArrayList<>(List.of("a")), maxima.getRef()));
    assertFalse(maxima.receiveMessage().reclipped());
    // a report whose trained maxima have the wrong shape is ignored, like one whose served maxima do
    monitor.tell(new ReportMaxLogits(3, "a", new double[][] {{5, 7}}, new double[][] {{5}}));
    monitor.tell(new CloseStep(3, new ArrayList<>(List.of("a")), maxima.getRef()));
    var history = kit.<History>createTestProbe();
    monitor.tell(new GetHistory(history.getRef()));
    var h = history.receiveMessage();
    assertEquals(2, h.steps().size());
    assertEquals(16.0, h.largestAfterStep());
    assertEquals(1, h.stepsOverTauAfterStep());
    assertEquals(9.0, h.largestTrained());
    assertEquals(0, h.stepsOverTauTrained());
    assertEquals(1, h.reclippedSteps());
  }

  @Test void aLearnerThatDoesNotReportIsWaitedForOnlyUntilTheTimeout() {
    var monitor = kit.spawn(ClipMonitor.create(10.0, 1, 2, Duration.ofMillis(300)));
    var maxima = kit.<StepMaxLogits>createTestProbe();
    monitor.tell(new ReportMaxLogits(1, "a", new double[][] {{20, 1}}));
    monitor.tell(new CloseStep(1, new ArrayList<>(List.of("a", "b")), maxima.getRef()));
    maxima.expectNoMessage(Duration.ofMillis(150));
    var d = maxima.receiveMessage(Duration.ofSeconds(3));
    assertEquals(1, d.reporters());
    assertEquals(2, d.expected());
    assertArrayEquals(new double[] {20, 1}, d.maxLogit()[0]);
    // a late report for a closed step changes nothing; the next step is answered as soon as all have reported
    monitor.tell(new ReportMaxLogits(1, "b", new double[][] {{99, 99}}));
    monitor.tell(new ReportMaxLogits(2, "a", new double[][] {{1, 1}}));
    monitor.tell(new ReportMaxLogits(2, "b", new double[][] {{2, 9.99}}));
    monitor.tell(new CloseStep(2, new ArrayList<>(List.of("a", "b")), maxima.getRef()));
    var d2 = maxima.receiveMessage(Duration.ofMillis(250));
    assertArrayEquals(new double[] {2, 9.99}, d2.maxLogit()[0]);
  }

  @Test void malformedReportsAreIgnored() {
    var monitor = kit.spawn(ClipMonitor.create(10.0, 1, 2, Duration.ofMillis(200)));
    var maxima = kit.<StepMaxLogits>createTestProbe();
    monitor.tell(new ReportMaxLogits(1, "a", new double[][] {{50, 50, 50}}));
    monitor.tell(new CloseStep(1, new ArrayList<>(List.of("a")), maxima.getRef()));
    var d = maxima.receiveMessage(Duration.ofSeconds(2));
    assertFalse(d.measured());
    assertNull(d.maxLogit());
  }
}
