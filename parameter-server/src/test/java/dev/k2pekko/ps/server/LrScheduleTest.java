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

  @Test void rlDecaysOverItsOwnStepsWhenAsked() {
    var s = new LrSchedule(0.01, 0.003, 50, 600, 200);
    assertEquals(0.003, s.at(900, true, 0), 1e-15, "the first RL step: full rate, however long SFT was");
    assertEquals(0.003 * (1 - 0.9 * 100 / 200.0), s.at(1000, true, 100), 1e-15);
    assertEquals(0.0003, s.at(1300, true, 400), 1e-15, "a tenth after rl-decay-steps");
    assertEquals(0.001, s.at(900, false, 0), 1e-15, "SFT's schedule unchanged");
  }
}
