package dev.k2pekko.agents;

import dev.k2pekko.protocol.KryoWire;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * A cohort of agents: the Cluster Sharding entity agents live in. Agent {@code agent-n} is a child actor of cohort
 * {@code n mod k2.agent.cohorts}, started by the first message for it. Sharding places and moves cohorts (so it still
 * spreads agents over the nodes and restarts them elsewhere when a node dies); within a cohort an agent is a plain
 * actor, which costs about half of what a sharded entity of its own did (docs/DESIGN.md, "Agents and cohorts").
 * Only a run's assignments come through here; a running episode talks to its tool worker by {@code ActorRef}.
 *
 * <p>When sharding stops a cohort (its shard moves, or it was idle for the passivation timeout), its agents stop
 * with it, and each one that had a run under way hands it back to its tracker ({@link Agent}, on {@code PostStop}).
 */
public final class AgentCohort extends AbstractBehavior<AgentCohort.Command> {
  public static final EntityTypeKey<Command> KEY = EntityTypeKey.create(Command.class, "agent-cohort");

  public sealed interface Command {}

  /** For agent {@code agent-<agent>} of this cohort, which is started if it does not run yet. */
  public record ToAgent(int agent, Agent.RunEpisodes run) implements Command, KryoWire {}

  /** How many agents this cohort runs. */
  public record CountAgents(ActorRef<AgentCount> replyTo) implements Command, KryoWire {}

  public record AgentCount(String cohort, int agents) implements KryoWire {}

  /** Sharding stops the cohort: its agents stop with it. */
  private enum Stop implements Command, LocalOnly { INSTANCE }

  public static void init(ActorSystem<?> system) {
    ClusterSharding.get(system).init(Entity.of(KEY, ctx -> create(ctx.getEntityId())).withRole("agent").withStopMessage(Stop.INSTANCE));
  }

  /** The entity id of the cohort agent {@code agent} lives in, with {@code cohorts} cohorts (the same on every node). */
  public static String entityId(int agent, int cohorts) {
    return "cohort-" + Math.floorMod(agent, cohorts);
  }

  /** Sends {@code run} to agent {@code agent} through its cohort's shard region (a run's assignment, never per call). */
  public static void tell(ActorSystem<?> system, int agent, Agent.RunEpisodes run) {
    int cohorts = NodeServices.get(system).settings().cohorts();
    ClusterSharding.get(system).entityRefFor(KEY, entityId(agent, cohorts)).tell(new ToAgent(agent, run));
  }

  static Behavior<Command> create(String cohortId) {
    return Behaviors.setup(ctx -> new AgentCohort(ctx, cohortId));
  }

  private final String cohortId;

  private AgentCohort(ActorContext<Command> ctx, String cohortId) {
    super(ctx);
    this.cohortId = cohortId;
  }

  @Override public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(ToAgent.class, this::onToAgent)
        .onMessage(CountAgents.class, this::onCount)
        .onMessageEquals(Stop.INSTANCE, Behaviors::stopped)
        .build();
  }

  private Behavior<Command> onToAgent(ToAgent m) {
    String name = "agent-" + m.agent();
    ActorRef<Agent.Command> child = getContext().getChild(name).map(ActorRef::<Agent.Command>unsafeUpcast).orElse(null);
    if (child == null) {
      // one Props for all agents (Agent.PROPS); no watch: an agent stops only with its cohort or by a failure, and a
      // later assignment starts it again
      child = Adapter.toTyped(Adapter.actorOf(getContext(), Agent.PROPS, name));
    }
    child.tell(m.run());
    return this;
  }

  private Behavior<Command> onCount(CountAgents c) {
    c.replyTo().tell(new AgentCount(cohortId, getContext().getChildren().size()));
    return this;
  }
}
