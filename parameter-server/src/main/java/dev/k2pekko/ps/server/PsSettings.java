package dev.k2pekko.ps.server;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.optim.AdaptiveThreshold;
import dev.k2pekko.optim.MuonClip;
import java.nio.file.Path;
import java.time.Duration;

/**
 * How a parameter-server coordinator runs: its run, model and seed, the optimizer, synchronous or asynchronous steps,
 * the LR schedule, its timeouts, checkpoints and the JDBC database of the durable offsets. Build it by name with
 * {@link #builder}; the defaults are reference.conf's ({@code k2.ps}). {@code adaptive} is how the per-head thresholds
 * follow their heads when the optimizer's QK-Clip is adaptive; its cap is the optimizer's tau.
 */
public record PsSettings(String runId, ModelConfig model, long seed, MuonClip.Config optimizer, AdaptiveThreshold.Config adaptive, Mode mode, int staleness,
                         double lrSft, double lrRl, int warmup, int decaySteps, Duration syncTimeout, Duration clipTimeout,
                         Duration applyTimeout, int checkpointEvery, int keepCheckpoints, Path checkpointDir,
                         String jdbcUrl, String jdbcUser, String jdbcPassword, double clipHeadroom, int learners, int rlDecaySteps) {

  public PsSettings {
    if (rlDecaySteps < 0) throw new IllegalArgumentException("k2.ps.rl-decay-steps must be >= 0, got " + rlDecaySteps);
    if (learners < 0) throw new IllegalArgumentException("the learner count must be >= 0, got " + learners);
    if (!(clipHeadroom >= 0 && clipHeadroom < 1)) throw new IllegalArgumentException("k2.ps.clip-headroom must lie in [0, 1), got " + clipHeadroom);
    if (!(optimizer.tau() > 0)) throw new IllegalArgumentException("QK-Clip tau must be positive, got " + optimizer.tau());
    if (adaptive.tau() != optimizer.tau()) {
      throw new IllegalArgumentException("the adaptive thresholds' cap " + adaptive.tau() + " is not the optimizer's tau " + optimizer.tau());
    }
  }

  /** Synchronous steps wait for every registered learner (or the sync timeout); asynchronous ones admit stale gradients. */
  public enum Mode { SYNC, ASYNC }

  /** Settings with the defaults of reference.conf ({@code k2.ps}), changed by name. */
  public static Builder builder(String runId, ModelConfig model, Path checkpointDir, String jdbcUrl) {
    return new Builder(runId, model, checkpointDir, jdbcUrl);
  }

  /** Where this run's checkpoints live. */
  Path runDir() {
    return checkpointDir.resolve(runId);
  }

  /** Named settings instead of nineteen positions; every field starts at reference.conf's default. */
  public static final class Builder {
    private final String runId, jdbcUrl;
    private final ModelConfig model;
    private final Path checkpointDir;
    private long seed = 1;
    private MuonClip.Config optimizer = MuonClip.Config.defaults().withWeightDecay(0.0).withClip(true, 16);
    private AdaptiveThreshold.Config adaptive;
    private Mode mode = Mode.SYNC;
    private int staleness = 2, warmup = 50, decaySteps = 600, checkpointEvery = 100, keepCheckpoints = 3;
    private double lrSft = 0.01, lrRl = 0.001;
    private Duration syncTimeout = Duration.ofSeconds(10), clipTimeout = Duration.ofSeconds(5), applyTimeout = Duration.ofSeconds(30);
    private String jdbcUser = "", jdbcPassword = "";
    // 0: QK-Clip's own rule, as the single-process MuonClip applies it; k2 run's reference.conf sets 0.1
    private double clipHeadroom = 0;
    private int learners = 0;
    private int rlDecaySteps = 0;

    private Builder(String runId, ModelConfig model, Path checkpointDir, String jdbcUrl) {
      this.runId = runId;
      this.model = model;
      this.checkpointDir = checkpointDir;
      this.jdbcUrl = jdbcUrl;
    }

    public Builder seed(long v) { seed = v; return this; }
    public Builder optimizer(MuonClip.Config v) { optimizer = v; return this; }
    /** The adaptive thresholds' statistics (default {@link AdaptiveThreshold.Config#defaults} at the optimizer's tau). */
    public Builder adaptive(AdaptiveThreshold.Config v) { adaptive = v; return this; }
    public Builder mode(Mode v) { mode = v; return this; }
    public Builder staleness(int v) { staleness = v; return this; }
    public Builder lrSft(double v) { lrSft = v; return this; }
    public Builder lrRl(double v) { lrRl = v; return this; }
    public Builder warmup(int v) { warmup = v; return this; }
    public Builder decaySteps(int v) { decaySteps = v; return this; }
    public Builder syncTimeout(Duration v) { syncTimeout = v; return this; }
    public Builder clipTimeout(Duration v) { clipTimeout = v; return this; }
    public Builder applyTimeout(Duration v) { applyTimeout = v; return this; }
    public Builder checkpointEvery(int v) { checkpointEvery = v; return this; }
    public Builder keepCheckpoints(int v) { keepCheckpoints = v; return this; }
    public Builder jdbcUser(String v) { jdbcUser = v; return this; }
    public Builder jdbcPassword(String v) { jdbcPassword = v; return this; }
    /** QK-Clip rescales a head over tau x (1 - v) to that value, so that the next update's growth stays under tau. */
    public Builder clipHeadroom(double v) { clipHeadroom = v; return this; }
    /**
     * The learners the run starts (k2.learner.count): a synchronous step waits, up to the sync timeout, until that many
     * have registered, so that a run resumed with its data at hand does not start with the first learner alone. 0: no
     * expectation (every registered learner, however many).
     */
    public Builder learners(int v) { learners = v; return this; }
    /** RL's rate decays linearly to a tenth over this many RL steps (0: constant, the default). */
    public Builder rlDecaySteps(int v) { rlDecaySteps = v; return this; }

    public PsSettings build() {
      var a = adaptive != null ? adaptive : AdaptiveThreshold.Config.defaults(optimizer.tau());
      return new PsSettings(runId, model, seed, optimizer, a, mode, staleness, lrSft, lrRl, warmup, decaySteps, syncTimeout, clipTimeout,
          applyTimeout, checkpointEvery, keepCheckpoints, checkpointDir, jdbcUrl, jdbcUser, jdbcPassword, clipHeadroom, learners, rlDecaySteps);
    }
  }
}
