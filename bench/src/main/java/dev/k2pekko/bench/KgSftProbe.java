package dev.k2pekko.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.k2pekko.agents.policy.Action;
import dev.k2pekko.agents.policy.LearnedPolicy;
import dev.k2pekko.agents.policy.PolicyFormat;
import dev.k2pekko.agents.tasks.KnowledgeGraphTasks;
import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.model.Decoder;
import dev.k2pekko.model.Losses;
import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.Sequence;
import dev.k2pekko.model.TokenBatch;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.optim.MuonClip;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Offline SFT probe of the learned policy on the knowledge-graph tasks (no actors, no server): the teacher's plans
 * with results as the memory server writes them (pretty-printed JSON of what was created), SFT on their examples, and
 * every held-out task's actions decoded greedily after the right history, compared with the plan. How many steps
 * and examples the nested calls need, before a pipeline run measures it for real. Arguments: tasks, steps, batch
 * (examples), lr; e.g. {@code java -cp ... dev.k2pekko.bench.KgSftProbe 400 300 16 0.01}.
 */
public final class KgSftProbe {
  public static void main(String[] a) throws Exception {
    int tasks = Integer.parseInt(a[0]), steps = Integer.parseInt(a[1]), batch = Integer.parseInt(a[2]);
    double lr = Double.parseDouble(a[3]);
    var u = ToolUniverse.generate(7, Stochasticity.NONE);
    var kg = new KnowledgeGraphTasks("mem");
    var fmt = new PolicyFormat(u, kg.vocabulary());
    var seqs = new ArrayList<Sequence>();
    for (int i = 0; i < tasks; i++) {
      var t = kg.task(1000L + i, "t" + i, 1 + i % 3, TaskGenerator.Split.TRAIN);
      seqs.addAll(fmt.examples(new Trajectory("x" + i, t.id(), t.category(), t.difficulty(), t.seed(), "", t.prompt(), t.toolsOffered(),
          played(t), "done", null, "teacher", null, null)));
    }
    System.out.printf("%d examples, vocab %d%n%s%n", seqs.size(), fmt.tokenizer().vocabSize(), fmt.tokenizer().decode(seqs.get(4).tokens()));
    var cfg = new ModelConfig(fmt.tokenizer().vocabSize(), 64, 2, 4, 192, 4, 1e-5);
    var model = new PolicyModel(cfg, new ReferenceOps(), 1);
    var opt = new MuonClip(MuonClip.Config.defaults().withClip(true, 100).withWeightDecay(0.0), model);
    var rnd = new Random(3);
    for (int step = 1; step <= steps; step++) {
      var b = new ArrayList<Sequence>();
      for (int i = 0; i < batch; i++) b.add(seqs.get(rnd.nextInt(seqs.size())));
      var r = Losses.nextToken(model, TokenBatch.of(b, 0));
      opt.step(model, r.grads(), r.maxLogit(), lr * Math.min(1.0, step / 10.0));
      if (step % 50 == 0 || step == steps) {
        System.out.printf("step %d loss %.4f%n", step, r.loss());
        eval(fmt, kg, model);
      }
    }
  }

  /** The plan's steps with the results the memory server gives (the created items, pretty-printed JSON). */
  static List<Step> played(Task t) throws Exception {
    var out = new ArrayList<Step>();
    for (var p : t.plan()) {
      Object created = p.arguments().values().iterator().next();
      if (p.tool().endsWith("add_observations")) {
        var o = (Map<?, ?>) ((List<?>) created).getFirst();
        created = List.of(Map.of("entityName", o.get("entityName"), "addedObservations", o.get("contents")));
      }
      out.add(new Step("call_" + out.size(), p.tool(), p.arguments(), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(created), null, false));
    }
    return out;
  }

  static void eval(PolicyFormat fmt, KnowledgeGraphTasks kg, PolicyModel model) throws Exception {
    var policy = new LearnedPolicy(fmt, new Decoder(model), 0, 0.0);
    int[] ok = new int[4], n = new int[4];
    String wrong = null;
    for (int i = 0; i < 30; i++) {
      var t = kg.task(77_000L + i, "h" + i, 1 + i % 3, TaskGenerator.Split.HELD_OUT);
      var steps = played(t);
      boolean all = true;
      for (int k = 0; k <= steps.size(); k++) {
        var run = policy.resume(t.prompt(), steps.subList(0, k), 1);
        Action got = run.next(null);
        Action want = k < steps.size() ? new Action.Call(steps.get(k).tool(), steps.get(k).arguments()) : new Action.Answer("done");
        if (!got.equals(want)) {
          all = false;
          if (wrong == null) wrong = t.prompt() + " @" + k + ": " + fmt.tokenizer().decode(run.lastAction());
        }
      }
      n[t.difficulty()]++;
      if (all) ok[t.difficulty()]++;
    }
    System.out.printf("  held-out tasks right by difficulty: %d/%d %d/%d %d/%d; first wrong: %s%n", ok[1], n[1], ok[2], n[2], ok[3], n[3], wrong);
  }
}
