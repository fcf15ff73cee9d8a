package dev.k2pekko.ps.server;

/**
 * The learning rate of step v. SFT: linear warm-up over {@code warmup} versions, then linear decay to a tenth over
 * {@code decaySteps} versions (none when decaySteps &lt;= 0). RL: {@code rl}, constant after the same warm-up.
 */
record LrSchedule(double sft, double rl, int warmup, int decaySteps) {
  double at(long version, boolean rlStep) {
    double base = rlStep ? rl : sft;
    double decay = rlStep || decaySteps <= 0 ? 1.0 : Math.max(0.1, 1.0 - 0.9 * version / decaySteps);
    return base * decay * Math.min(1.0, (version + 1.0) / Math.max(1, warmup));
  }
}
