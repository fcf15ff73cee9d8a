package dev.k2pekko.ps.server;

import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.ps.checkpoint.Checkpoints;
import dev.k2pekko.ps.server.PsGroup.GroupState;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;

/**
 * The coordinator's side of checkpoints: on start it restores the newest good checkpoint of its run (or fresh weights
 * from the seed) into every group; later it collects every group's state ({@link PsGroup.Export}) and writes it with
 * the version, offsets and counters ({@link CoordinatorCheckpoint}). Both end when every group has answered with its
 * {@link GroupState}; while one is under way no step starts.
 */
final class CheckpointCycle {
  /** A group's state, through an adapter (the group answers with its own type). */
  record StateArrived(GroupState g) implements PsCoordinator.Internal, NoSerializationVerificationNeeded {}

  /** Where the coordinator starts: the version, its weights (spec order) and what a checkpoint restored (-1: none). */
  record Start(long version, WeightsSnapshot weights, long restoredFrom) {}

  private final PsSettings s;
  private final ActorContext<PsProtocol.ToCoordinator> ctx;
  private final ClusterSharding sharding;
  private final List<String> groups;
  private final Map<String, GroupState> exported = new HashMap<>();
  private final List<ActorRef<Long>> waiters = new ArrayList<>();
  private boolean collecting;

  CheckpointCycle(PsSettings s, ActorContext<PsProtocol.ToCoordinator> ctx) {
    this.s = s;
    this.ctx = ctx;
    this.sharding = ClusterSharding.get(ctx.getSystem());
    this.groups = PsGroup.groups(s.model());
  }

  /** Restores the newest good checkpoint of this run, or initialises fresh weights from the seed, into every group. */
  Start restore(DurableOffsets offsets, CoordinatorLedger ledger) {
    HashMap<String, float[]> weights = new HashMap<>(), opt = new HashMap<>();
    long version = 0, restoredFrom = -1, steps = 0;
    try {
      var ck = CoordinatorCheckpoint.latest(s.runDir());
      if (ck.isPresent()) {
        var c = ck.get();
        version = c.version();
        restoredFrom = version;
        weights.putAll(c.weights());
        opt.putAll(c.optimizerState());
        steps = c.steps();
        ledger.restore(c.counters());
        offsets.restore(c.offsets(), version);
        ctx.getLog().info("parameter server restored version {} from {}", version, c.describe());
      }
    } catch (Exception e) {
      throw new IllegalStateException("cannot restore the parameter server from " + s.runDir() + ": " + e.getMessage(), e);
    }
    if (weights.isEmpty()) {
      var model = new PolicyModel(s.model(), new ReferenceOps(), s.seed());
      model.parameters().forEach((k, v) -> weights.put(k, WeightsSnapshot.toFloats(v)));
    }
    var replyTo = ctx.messageAdapter(GroupState.class, StateArrived::new);
    var byGroup = PsProtocol.byGroup(weights);
    for (String g : groups) {
      var gOpt = new HashMap<String, float[]>();
      opt.forEach((k, v) -> { if (PsProtocol.groupOf(k.substring(0, k.lastIndexOf('/'))).equals(g)) gOpt.put(k, v); });
      sharding.entityRefFor(PsGroup.KEY, g).tell(new PsGroup.Init(version, s.model(), s.optimizer(), byGroup.get(g), gOpt, steps, replyTo));
    }
    var ordered = new LinkedHashMap<String, float[]>();
    for (var spec : PolicyModel.specsOf(s.model())) ordered.put(spec.name(), weights.get(spec.name()));
    collecting = true; // the Init replies arrive as GroupState
    exported.clear();
    return new Start(version, WeightsSnapshot.of(version, s.model(), new ArrayList<>(ordered.keySet()), new ArrayList<>(ordered.values())), restoredFrom);
  }

  /** Someone waits for the next checkpoint's version (the end of a stage). */
  void await(ActorRef<Long> replyTo) {
    waiters.add(replyTo);
  }

  /** True while a restore or an export waits for the groups. */
  boolean collecting() {
    return collecting;
  }

  /** Asks every group for its state, unless that is under way. */
  void export() {
    if (collecting) return;
    collecting = true;
    exported.clear();
    var replyTo = ctx.messageAdapter(GroupState.class, StateArrived::new);
    for (String g : groups) sharding.entityRefFor(PsGroup.KEY, g).tell(new PsGroup.Export(replyTo));
  }

  /** A group's state arrived; true when it was the last one (the restore or export is complete). */
  boolean arrived(GroupState g) {
    if (!collecting) return false;
    exported.put(g.group(), g);
    if (exported.size() < groups.size()) return false;
    collecting = false;
    return true;
  }

  /** Writes the collected state as {@code version} and answers who waited; a failed write is logged and counted. */
  void write(long version, DurableOffsets offsets, CoordinatorLedger ledger) {
    try {
      CoordinatorCheckpoint.write(s.runDir(), s, version, exported.values(), offsets.view(), ledger.counters());
      if (s.keepCheckpoints() > 0) Checkpoints.keepLast(s.runDir(), s.keepCheckpoints());
      ledger.count("checkpoints", 1);
    } catch (IOException e) {
      ctx.getLog().error("checkpoint of version {} failed: {}", version, e.getMessage());
      ledger.count("checkpoint_failures", 1);
    }
    for (var w : waiters) w.tell(version);
    waiters.clear();
  }
}
