package dev.k2pekko.tools;

import dev.k2pekko.protocol.CallsRefused;
import dev.k2pekko.protocol.ToolCommand;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/**
 * The node's view of the tool universe and of the tool workers that run it. Nodes with the {@code tool} role
 * start workers and register them with the Receptionist; every node resolves an episode to a worker here, by
 * hash of the episode id, preferring its own workers so that tool traffic stays on the node. The Receptionist
 * is consulted once per membership change, never per call.
 */
public final class ToolDirectory implements Extension {
  public static final ServiceKey<ToolCommand> WORKERS = ServiceKey.create(ToolCommand.class, "k2-tool-workers");

  public static final ExtensionId<ToolDirectory> ID = new ExtensionId<>() {
    @Override public ToolDirectory createExtension(ActorSystem<?> system) { return new ToolDirectory(system); }
  };

  public static ToolDirectory get(ActorSystem<?> system) { return ID.apply(system); }

  private final ToolUniverse universe;
  private final ToolWorker.Settings settings;
  private final int workersPerNode;
  private final Firewall firewall;
  private volatile List<ActorRef<ToolCommand>> local = List.of();
  private volatile List<ActorRef<ToolCommand>> remote = List.of();

  private ToolDirectory(ActorSystem<?> system) {
    var c = system.settings().config().getConfig("k2.tools");
    var noise = new Stochasticity(c.getDouble("failure-rate"), c.getDouble("partial-rate"), 0);
    var u = ToolUniverse.generate(c.getLong("seed"), noise);
    var extra = new ArrayList<ToolSpec>();
    for (String f : c.getStringList("spec-files")) extra.addAll(ToolSpecFiles.read(Path.of(f), noise));
    this.universe = extra.isEmpty() ? u : u.with(extra);
    this.settings = new ToolWorker.Settings(c.getLong("seed"), (int) c.getBytes("max-payload").longValue(),
        c.getDuration("episode-idle-timeout"));
    this.firewall = new Firewall(Firewall.Settings.from(c));
    int n = c.getInt("workers-per-node");
    this.workersPerNode = n > 0 ? n : Math.max(2, 2 * Runtime.getRuntime().availableProcessors());
  }

  public ToolUniverse universe() { return universe; }

  /** This node's firewall, shared by its workers. */
  public Firewall firewall() { return firewall; }

  /** Spawns this node's tool workers with refusals logged only (no journal): nodes and tests without persistence. */
  public void startWorkers(ActorSystem<?> system) {
    var log = system.log();
    startWorkers(system, r -> log.info("firewall refused {} of {}: {} ({})", r.tool(), r.episodeId(), r.reason(), r.detail()));
  }

  /**
   * Spawns this node's tool workers (the {@code tool} role) and registers them for the other nodes. Every refusal
   * of the node's firewall is given to {@code audit} (on the refusing worker's thread: it must only enqueue).
   */
  public void startWorkers(ActorSystem<?> system, java.util.function.Consumer<CallsRefused.Refusal> audit) {
    var refs = new ArrayList<ActorRef<ToolCommand>>();
    for (int i = 0; i < workersPerNode; i++) {
      var ref = system.systemActorOf(ToolWorker.create(universe, settings, firewall, audit), "tool-worker-" + i, Props.empty());
      system.receptionist().tell(Receptionist.register(WORKERS, ref));
      refs.add(ref);
    }
    local = List.copyOf(refs);
  }

  /** Follows the cluster's tool workers, for nodes without their own. */
  public void followRemoteWorkers(ActorSystem<?> system) {
    Behavior<Receptionist.Listing> follower = Behaviors.setup(c -> {
      c.getSystem().receptionist().tell(Receptionist.subscribe(WORKERS, c.getSelf()));
      return Behaviors.receiveMessage(listing -> {
        remote = listing.getServiceInstances(WORKERS).stream()
            .sorted(java.util.Comparator.comparing(r -> r.path().toString())).toList();
        return Behaviors.same();
      });
    });
    system.systemActorOf(follower, "tool-worker-follower", Props.empty());
  }

  /** The worker that owns this episode's world state, or null when no node runs tools (yet). */
  public ActorRef<ToolCommand> workerFor(String episodeId) {
    var refs = local.isEmpty() ? remote : local;
    if (refs.isEmpty()) return null;
    return refs.get(Math.floorMod(episodeId.hashCode(), refs.size()));
  }

  public int localWorkers() { return local.size(); }
}
