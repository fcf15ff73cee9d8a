package dev.k2pekko.ps.server;

/**
 * The learning rate of step v. SFT: linear warm-up over {@code warmup} versions, then linear decay to a tenth over
 * {@code decaySteps} versions (none when decaySteps &lt;= 0). RL: {@code rl} after the same warm-up, constant, or with
 * {@code rlDecaySteps > 0} decaying linearly to a tenth over that many RL steps (counted from the first RL step, so the
 * decay does not depend on how long SFT was).
 */
record LrSchedule(double sft, double rl, int warmup, int decaySteps, int rlDecaySteps) {
  LrSchedule(double sft, double rl, int warmup, int decaySteps) {
    this(sft, rl, warmup, decaySteps, 0);
  }

  double at(long version, boolean rlStep) {
    return at(version, rlStep, 0);
  }

  /** {@code rlStepsBefore}: the RL steps applied before this one (the coordinator's {@code rl_steps}). */
  double at(long version, boolean rlStep, long rlStepsBefore) {
    double base = rlStep ? rl : sft;
    double decay;
    if (rlStep) decay = rlDecaySteps <= 0 ? 1.0 : Math.max(0.1, 1.0 - 0.9 * rlStepsBefore / rlDecaySteps);
    else decay = decaySteps <= 0 ? 1.0 : Math.max(0.1, 1.0 - 0.9 * version / decaySteps);
    return base * decay * Math.min(1.0, (version + 1.0) / Math.max(1, warmup));
  }
}
