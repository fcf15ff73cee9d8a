package dev.k2pekko.ps.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class LrScheduleTest {
  @Test void sftWarmsUpThenDecaysToATenthAndRlStaysConstant() {
    var s = new LrSchedule(0.01, 0.001, 50, 600);
    assertEquals(0.01 / 50, s.at(0, false), 1e-15);
    assertEquals(0.01 * (1 - 0.9 * 49 / 600.0), s.at(49, false), 1e-15);
    assertEquals(0.001, s.at(49, true), 1e-15);
    assertEquals(0.001, s.at(5000, true), 1e-15);
    assertEquals(0.001, s.at(700, false), 1e-15, "a tenth of lr-sft after decay-steps");
    assertEquals(0.01, new LrSchedule(0.01, 0.001, 0, 0).at(10_000, false), 1e-15, "no warm-up, no decay");
  }
}
