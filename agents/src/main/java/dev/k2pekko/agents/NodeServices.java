package dev.k2pekko.agents;

import dev.k2pekko.agents.policy.Policy;
import dev.k2pekko.agents.policy.TeacherPolicy;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.tools.ToolDirectory;
import java.time.Duration;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;

/**
 * What the agents of one node share: the task generator, the policy, the judge's settings and the node's judge.
 * A Pekko extension, so there is one per ActorSystem (several test nodes in one JVM each have their own).
 */
public final class NodeServices implements Extension {
  public static final String SYSTEM_PROMPT = "You are an agent that completes tasks by calling the tools you are given. "
      + "Call one tool at a time, use each result, and answer with the final value.";

  public record Settings(Duration toolTimeout, Duration tickInterval, double acceptThreshold, int batchSize,
                         Duration flushInterval, Duration ackTimeout, int collectors, int tags, int dedupWindow) {}

  public static final ExtensionId<NodeServices> ID = new ExtensionId<>() {
    @Override public NodeServices createExtension(ActorSystem<?> system) { return new NodeServices(system); }
  };

  public static NodeServices get(ActorSystem<?> system) { return ID.apply(system); }

  private final TaskGenerator generator;
  private final Policy policy;
  private final JudgeRubric rubric;
  private final Settings settings;
  private volatile ActorRef<Judge.Command> judge;

  private NodeServices(ActorSystem<?> system) {
    var c = system.settings().config().getConfig("k2");
    this.generator = new TaskGenerator(ToolDirectory.get(system).universe(), c.getInt("tasks.max-steps"))
        .withBank(c.getInt("tasks.bank-size"));
    var t = c.getConfig("teacher");
    this.policy = new TeacherPolicy(generator, new TeacherPolicy.Mistakes(t.getDouble("wrong-argument"),
        t.getDouble("skip-step"), t.getDouble("wrong-tool"), t.getDouble("premature-answer"), t.getDouble("recover")));
    this.rubric = new JudgeRubric(c.getDouble("judge.threshold"));
    var timeout = c.getDuration("agent.tool-timeout");
    this.settings = new Settings(timeout, timeout.dividedBy(4), rubric.threshold(), c.getInt("judge.batch-size"),
        c.getDuration("judge.flush-interval"), c.getDuration("judge.ack-timeout"), c.getInt("collector.count"),
        c.getInt("collector.tags"), c.getInt("collector.dedup-window"));
  }

  public TaskGenerator generator() { return generator; }
  public Policy policy() { return policy; }
  public JudgeRubric rubric() { return rubric; }
  public Settings settings() { return settings; }

  public ActorRef<Judge.Command> judge() {
    var j = judge;
    if (j == null) throw new IllegalStateException("this node runs agents but started no judge (role 'agent' missing?)");
    return j;
  }

  void setJudge(ActorRef<Judge.Command> judge) { this.judge = judge; }
}
