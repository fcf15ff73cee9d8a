package dev.k2pekko.agents.policy;

import dev.k2pekko.agents.tasks.PlanStep;
import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.agents.tasks.TaskBuilder;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.protocol.ToolError;
import java.util.LinkedHashMap;
import java.util.SplittableRandom;

/**
 * A noisy scripted teacher, standing in for the paper's LLM generator: it follows the task's plan but makes
 * configurable mistakes (a wrong argument, a skipped step, a wrong tool, a premature answer), and after a tool
 * error or a partial result retries with probability {@code recover}. Mistakes give the judge something to reject.
 */
public final class TeacherPolicy implements Policy {
  /** Per-step chances of each mistake, and the chance to retry after an error. */
  public record Mistakes(double wrongArgument, double skipStep, double wrongTool, double prematureAnswer, double recover) {
    public static final Mistakes NONE = new Mistakes(0, 0, 0, 0, 1);

    public Mistakes {
      for (double p : new double[] {wrongArgument, skipStep, wrongTool, prematureAnswer, recover}) {
        if (!(p >= 0 && p <= 1)) throw new IllegalArgumentException("mistake rates must lie in [0, 1], got " + p);
      }
    }
  }

  private final TaskGenerator generator;
  private final Mistakes mistakes;

  public TeacherPolicy(TaskGenerator generator, Mistakes mistakes) {
    this.generator = generator;
    this.mistakes = mistakes;
  }

  @Override public String name() { return "teacher"; }

  @Override public Episode start(Task task, long seed) { return new Run(task, new SplittableRandom(seed)); }

  private final class Run implements Episode {
    private final Task task;
    private final SplittableRandom rnd;
    private int cursor;
    private String value;
    private Action.Call pending;

    Run(Task task, SplittableRandom rnd) {
      this.task = task;
      this.rnd = rnd;
    }

    @Override public Action next(Step previous) {
      if (previous != null && pending != null) {
        boolean failed = previous.error() != null || previous.partial();
        if (failed && retryable(previous) && rnd.nextDouble() < mistakes.recover()) return pending;
        if (!failed && task.plan().get(cursor).yields()) value = previous.result();
        cursor++;
        pending = null;
      }
      while (cursor < task.plan().size()) {
        if (rnd.nextDouble() < mistakes.prematureAnswer()) return new Action.Answer(value == null ? "" : value);
        if (rnd.nextDouble() < mistakes.skipStep()) {
          cursor++;
          continue;
        }
        pending = call(task.plan().get(cursor));
        return pending;
      }
      // a task none of whose steps yields a value (the knowledge-graph tasks) asks for a fixed answer
      if (value == null && task.plan().stream().noneMatch(PlanStep::yields)) return new Action.Answer(task.rubric().expectedAnswer());
      return new Action.Answer(value == null ? "" : value);
    }

    private boolean retryable(Step s) {
      return s.partial() || ToolError.TRANSIENT_FAILURE.name().equals(s.error()) || ToolError.TIMEOUT.name().equals(s.error());
    }

    private Action.Call call(PlanStep step) {
      var tool = step.tool();
      if (rnd.nextDouble() < mistakes.wrongTool()) {
        var siblings = generator.siblings(tool);
        if (!siblings.isEmpty()) tool = siblings.get(rnd.nextInt(siblings.size())).name();
      }
      var spec = generator.universe().get(tool);
      var args = new LinkedHashMap<String, Object>();
      step.arguments().forEach((k, v) -> {
        var param = spec == null ? null : spec.param(k);
        args.put(k, !PlanStep.PREVIOUS.equals(v) ? v : param == null ? String.valueOf(value) : previousAs(param.type()));
      });
      if (rnd.nextDouble() < mistakes.wrongArgument() && !args.isEmpty()) {
        var keys = args.keySet().toArray(new String[0]);
        var k = keys[rnd.nextInt(keys.length)];
        args.put(k, switch (args.get(k)) {
          case Long l -> l + 1 + rnd.nextInt(9);
          case Double d -> d + 1;
          case String s -> s.isEmpty() ? "?" : s + "x";
          default -> args.get(k);
        });
      }
      return new Action.Call(tool, args);
    }

    private Object previousAs(dev.k2pekko.tools.ParamType type) {
      if (value == null) return "";
      if ((type == dev.k2pekko.tools.ParamType.INTEGER || type == dev.k2pekko.tools.ParamType.NUMBER) && !TaskBuilder.mayBeNumber(value)) {
        return value; // as the catch below, without the exception
      }
      try {
        return switch (type) {
          case INTEGER -> Long.parseLong(value);
          case NUMBER -> TaskBuilder.asNumber(value);
          default -> value;
        };
      } catch (NumberFormatException e) {
        return value; // a non-number where a number belongs: the tool's schema check will say so
      }
    }
  }
}
