package dev.k2pekko.pipeline;

import dev.k2pekko.trainer.Learner;
import dev.k2pekko.trainer.LearnerClip;
import com.typesafe.config.Config;
import dev.k2pekko.agents.NodeServices;
import dev.k2pekko.clip.ClipMonitor;
import dev.k2pekko.critic.Critic;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.optim.AdaptiveThreshold;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.optim.QkClip;
import dev.k2pekko.protocol.ClipMonitorProtocol;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.ps.server.CoordinatorAddress;
import dev.k2pekko.ps.server.PsCoordinator;
import dev.k2pekko.ps.server.PsGroup;
import dev.k2pekko.ps.server.PsSettings;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.Optional;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.ShardedDaemonProcessSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.ShardedDaemonProcess;

/**
 * The training side of a k2 node, on top of {@link dev.k2pekko.agents.K2Node}: the parameter-server groups
 * (role {@code ps}), its coordinator and the clip-monitor (cluster singletons on {@code ps} and {@code monitor}
 * nodes, reachable from every node through proxies), and the learners (role {@code learner}). Every node starts the
 * proxies and the entity types; the roles decide where things run. A node with the {@code agent} role also runs
 * the critic service ({@link Critic}) beside its inference server.
 */
public final class TrainerNode {
  private TrainerNode() {}

  /** {@code critic}: this node's critic service, beside its inference server; null on a node without the {@code agent} role. */
  public record Started(ActorRef<PsProtocol.ToCoordinator> coordinator, ActorRef<ClipMonitorProtocol.Command> monitor, String runId,
                        ModelConfig model, ActorRef<Critic.Command> critic) {}

  /** The policy's shape for this node's tool universe (the vocabulary follows from it). */
  public static ModelConfig modelConfig(ActorSystem<?> system) {
    var c = system.settings().config().getConfig("k2.model");
    int vocab = NodeServices.get(system).format().tokenizer().vocabSize();
    return new ModelConfig(vocab, c.getInt("d-model"), c.getInt("layers"), c.getInt("heads"), c.getInt("context"), c.getInt("mlp-ratio"), 1e-5);
  }

  /** QK-Clip's settings ({@code k2.ps.qk-clip}, {@code tau}, {@code adaptive.*}): how, at what cap, how the adaptive thresholds move. */
  public record ClipSettings(QkClip.Mode mode, double tau, AdaptiveThreshold.Config adaptive, double headroom) {
    /** Read and checked: a value out of range is an IllegalArgumentException of one line that names its key. */
    public static ClipSettings of(Config c) {
      var ps = c.getConfig("k2.ps");
      QkClip.Mode mode;
      try {
        mode = QkClip.Mode.parse(ps.getString("qk-clip"));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("k2.ps.qk-clip must be on, off or adaptive, got '" + ps.getString("qk-clip") + "'");
      }
      double tau = ps.getDouble("tau");
      if (!(tau > 0) || Double.isInfinite(tau)) throw new IllegalArgumentException("k2.ps.tau must be > 0, got " + tau);
      var a = ps.getConfig("adaptive");
      double kappa = a.getDouble("kappa"), decay = a.getDouble("decay"), floor = a.getDouble("floor");
      int warmup = a.getInt("warmup");
      if (!(kappa >= 0)) throw new IllegalArgumentException("k2.ps.adaptive.kappa must be >= 0, got " + kappa);
      if (!(decay > 0 && decay < 1)) throw new IllegalArgumentException("k2.ps.adaptive.decay must lie in (0, 1), got " + decay);
      if (warmup < 0) throw new IllegalArgumentException("k2.ps.adaptive.warmup must be >= 0, got " + warmup);
      if (!(floor > 0 && floor <= 1)) throw new IllegalArgumentException("k2.ps.adaptive.floor must lie in (0, 1], got " + floor);
      double headroom = ps.getDouble("clip-headroom");
      if (!(headroom >= 0 && headroom < 1)) throw new IllegalArgumentException("k2.ps.clip-headroom must lie in [0, 1), got " + headroom);
      return new ClipSettings(mode, tau, new AdaptiveThreshold.Config(tau, floor * tau, kappa, decay, warmup), headroom);
    }
  }

  /** The learners' cap ({@link LearnerClip}): the parameter server's target, tau x (1 - headroom); off without QK-Clip. */
  static LearnerClip learnerClip(ClipSettings clip, boolean enforce) {
    if (!enforce || clip.mode() == QkClip.Mode.OFF) return LearnerClip.OFF;
    return new LearnerClip(clip.tau(), clip.tau() * (1 - clip.headroom()), QkClip.DEFAULT_ALPHA);
  }

  public static Started start(ActorSystem<?> system, String runId) {
    Config c = system.settings().config();
    var model = modelConfig(system);
    var ps = c.getConfig("k2.ps");
    var clip = ClipSettings.of(c);
    double tau = clip.tau();
    var opt = MuonClip.Config.defaults().withWeightDecay(ps.getDouble("weight-decay")).withClip(clip.mode(), tau);
    String url = c.getString("pekko-persistence-jdbc.shared-databases.slick.db.url");
    String user = c.getString("pekko-persistence-jdbc.shared-databases.slick.db.user");
    String password = c.getString("pekko-persistence-jdbc.shared-databases.slick.db.password");
    var monitor = ClipMonitor.init(system, tau, model.layers(), model.heads(), ps.getDuration("clip-timeout").dividedBy(2));
    var settings = PsSettings.builder(runId, model, Path.of(c.getString("k2.journal.dir")).resolve("checkpoints"), url)
        .jdbcUser(user).jdbcPassword(password).seed(ps.getLong("seed")).optimizer(opt).adaptive(clip.adaptive())
        .mode(PsSettings.Mode.valueOf(ps.getString("mode").toUpperCase())).staleness(ps.getInt("staleness"))
        .lrSft(ps.getDouble("lr-sft")).lrRl(ps.getDouble("lr-rl")).warmup(ps.getInt("warmup")).decaySteps(ps.getInt("decay-steps"))
        .rlDecaySteps(ps.getInt("rl-decay-steps"))
        .syncTimeout(ps.getDuration("sync-timeout")).clipTimeout(ps.getDuration("clip-timeout")).applyTimeout(ps.getDuration("apply-timeout"))
        .clipHeadroom(clip.headroom()).learners(c.getInt("k2.learner.count")).checkpointEvery(ps.getInt("checkpoint-every")).keepCheckpoints(ps.getInt("keep-checkpoints")).build();
    PsGroup.init(system);
    var coordinator = CoordinatorAddress.init(system, settings, monitor);
    CoordinatorAddress.register(system, coordinator);
    var roles = new HashSet<>(c.getStringList("pekko.cluster.roles"));
    var l = c.getConfig("k2.learner");
    var ls = new Learner.Settings(runId, l.getInt("count"), l.getInt("batch-size"), l.getInt("rl-groups"), l.getDuration("idle-flush"),
        l.getDouble("rl-tau"), c.getInt("k2.collector.tags"), settings.mode() == PsSettings.Mode.ASYNC, l.getString("backend"),
        Learner.RlObjective.parse(l.getString("rl-objective")), dev.k2pekko.trainer.Reward.Weights.fromConfig(c),
        Learner.GroupCount.parse(l.getString("rl-groups-count")), Learner.SftOrder.parse(l.getString("sft-order")),
        Learner.Settings.replay(l.getInt("rl-replay-steps"), l.getInt("rl-replay-groups")), learnerClip(clip, ps.getBoolean("enforce-at-learners")),
        c.getBoolean("k2.reward.open-finished-only"));
    dev.k2pekko.ops.Backends.select(ls.backend()); // a bad or unavailable backend fails here, at start, with its reason
    var format = NodeServices.get(system).format();
    ShardedDaemonProcess.get(system).init(Learner.Command.class, "learner", ls.count(),
        // a failed learner (its journal stream broke, say) starts again from the durable offsets, after a backoff
        i -> org.apache.pekko.actor.typed.javadsl.Behaviors.supervise(Learner.create(i, ls, format, monitor, coordinator))
            .onFailure(org.apache.pekko.actor.typed.SupervisorStrategy.restartWithBackoff(Duration.ofMillis(500), Duration.ofSeconds(10), 0.2)), ShardedDaemonProcessSettings.create(system).withRole("learner"),
        Optional.of(Learner.Stop.INSTANCE));
    ActorRef<Critic.Command> critic = null;
    if (roles.contains("agent")) {
      // beside the inference server: it learns from what this node's judge judges (NodeServices.onJudged)
      var services = NodeServices.get(system);
      critic = system.systemActorOf(Critic.create(Critic.Settings.fromConfig(c), services::onJudged), "critic",
          org.apache.pekko.actor.typed.Props.empty());
    }
    if (!roles.contains("learner") && !roles.contains("ps")) {
      system.log().debug("node without learner or ps role: proxies only");
    }
    return new Started(coordinator, monitor, runId, model, critic);
  }
}
