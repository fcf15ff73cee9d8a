package dev.k2pekko.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.agents.JudgeRubric;
import dev.k2pekko.agents.OfflinePlay;
import dev.k2pekko.agents.policy.TeacherPolicy;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.critic.Auc;
import dev.k2pekko.critic.Critic;
import dev.k2pekko.critic.CriticModel;
import dev.k2pekko.critic.CriticTrainer;
import dev.k2pekko.critic.TrajectoryFeatures;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code k2 bench critic}: the critic trained as the pipeline's first training trains it (the teacher's episodes on
 * training tasks with their verdicts, the {@code k2.critic} settings), then measured on the teacher's episodes of
 * held-out tasks with its mistake rates scaled up (other tasks, a different mix of failures): ROC AUC before and
 * after, training time, and the time to featurize and score one trajectory. Offline: no actors, no tool noise.
 */
public final class CriticBench {
  private CriticBench() {}

  public static ObjectNode run(Critic.Settings settings, int trainEpisodes, int heldOutEpisodes, double heldOutMistakes) {
    var universe = ToolUniverse.generate(7, Stochasticity.NONE);
    var train = episodes(universe, trainEpisodes, 1, TaskGenerator.Split.TRAIN, 1.0);
    var held = episodes(universe, heldOutEpisodes, 1_000_000, TaskGenerator.Split.HELD_OUT, heldOutMistakes);
    int buckets = settings.buckets();
    var data = new ArrayList<CriticTrainer.Example>();
    for (var t : train) data.add(new CriticTrainer.Example(TrajectoryFeatures.of(t, buckets), t.verdict().accepted()));
    var initial = CriticModel.init(buckets, settings.hidden(), settings.training().seed());
    double before = auc(initial, held, buckets);
    long t0 = System.nanoTime();
    var trained = CriticTrainer.train(initial, data, settings.training());
    double trainSeconds = (System.nanoTime() - t0) / 1e9;
    double after = auc(trained.model(), held, buckets);
    // featurize and score every held-out episode a few times: the cost of one Score request's work
    int reps = 5;
    long t1 = System.nanoTime();
    double sink = 0;
    for (int r = 0; r < reps; r++) for (var t : held) sink += trained.model().score(TrajectoryFeatures.of(t, buckets));
    double scoreMicros = (System.nanoTime() - t1) / 1e3 / (reps * held.size());
    var o = new ObjectMapper().createObjectNode();
    o.put("train_episodes", train.size());
    o.put("train_rejected", data.stream().filter(e -> !e.accepted()).count());
    o.put("mean_features", data.stream().mapToInt(e -> e.features().length).average().orElse(0));
    o.put("held_out_episodes", held.size());
    o.put("held_out_rejected", held.stream().filter(t -> !t.verdict().accepted()).count());
    o.put("held_out_mistakes_x", heldOutMistakes);
    o.put("auc_untrained", round(before));
    o.put("auc_trained", round(after));
    o.put("steps", trained.steps());
    o.put("loss_first_epoch", round(trained.firstEpochLoss()));
    o.put("loss_last_epoch", round(trained.lastEpochLoss()));
    o.put("train_seconds", round(trainSeconds));
    o.put("score_micros", round(scoreMicros));
    o.put("held_out_mean_score", round(sink / (reps * held.size())));
    return o;
  }

  /**
   * {@code k2 bench critic --open-episodes N}: what a critic trained on verifiable verdicts alone knows of the open
   * tasks, per initial weights. In the noisy world of {@code k2 bench open} (failure 0.12, partial 0.08), the teacher
   * plays {@code trainEpisodes} verifiable training tasks (the critic's data, with their verdicts) and {@code
   * openEpisodes} open training tasks with its mistake rates times {@code mistakes} (the hidden rubric's verdict is the
   * label, read here only to measure). For each of {@code seeds} initial weights: the ROC AUC of the critic's scores of
   * the open episodes against the hidden rubric, with E[f] of buckets it never trained on counting as 0 (the model as
   * it scores) and with them counting (as before the mask), the open episodes' mean score, and how the hidden rubric's
   * accepted episodes score against two doctored copies of each: cut after the first fact written and answered with
   * it, with every {@code notes.append} done as {@code notes.write}, and with the lookups after the first write
   * dropped and {@code ok} appended instead. With {@code appendEpisodes}, the critic also
   * trains on that many teacher episodes of noted tasks ({@link TaskGenerator#notedDraw}'s family: the verifiable
   * tasks that add to a note).
   */
  public static ObjectNode openProbe(Critic.Settings settings, int trainEpisodes, int openEpisodes, double mistakes, int seeds, int appendEpisodes) {
    var universe = ToolUniverse.generate(7, new Stochasticity(0.12, 0.08, 0));
    var train = new TaskGenerator(universe, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN);
    var teacher = new TeacherPolicy(train, new TeacherPolicy.Mistakes(0.03, 0.02, 0.02, 0.01, 0));
    var sloppy = new TeacherPolicy(train, new TeacherPolicy.Mistakes(Math.min(1, 0.03 * mistakes), Math.min(1, 0.02 * mistakes),
        Math.min(1, 0.02 * mistakes), Math.min(1, 0.01 * mistakes), 0));
    var judge = new JudgeRubric(0.8);
    int buckets = settings.buckets();
    var data = new ArrayList<CriticTrainer.Example>();
    for (int i = 0; i < trainEpisodes; i++) {
      long s = TaskGenerator.mix(0x9E3779B97F4A7C15L + i);
      var t = OfflinePlay.play(universe, teacher, judge, train.task(s, "s-" + i), "s-" + i, s, true);
      data.add(new CriticTrainer.Example(TrajectoryFeatures.of(t, buckets), t.verdict().accepted()));
    }
    // noted tasks (look a fact up, write it, calculate, add the result), as k2.tasks.noted-share = 1 draws them: what
    // teaches the critic, from a checker it may read, that "add it to the notes" done with notes.write fails
    var noted = new TaskGenerator(universe, 5).coreOnly(true).withSplit(TaskGenerator.Split.TRAIN).withNotedShares(1, 1);
    for (int i = 0; i < appendEpisodes; i++) {
      long s = TaskGenerator.mix(0x3C6EF372FE94F82BL + i);
      var t = OfflinePlay.play(universe, teacher, judge, noted.notedDraw(s, "a-" + i), "a-" + i, s, true);
      data.add(new CriticTrainer.Example(TrajectoryFeatures.of(t, buckets), t.verdict().accepted()));
    }
    var open = new ArrayList<int[]>();
    var hidden = new ArrayList<Boolean>();
    // the hidden rubric's accepted episodes, and each cut short as seed 7's collapsed RL played them: the first fact
    // written, then answered with it; and each with its notes.append calls done as notes.write (docs/LOOP.md, "Session 16")
    var whole = new ArrayList<int[]>();
    var cut = new ArrayList<int[]>();
    var wholeAppending = new ArrayList<int[]>();
    var written = new ArrayList<int[]>();
    var acked = new ArrayList<int[]>();
    for (int i = 0; i < openEpisodes; i++) {
      long s = TaskGenerator.mix(0x7F4A7C159E3779B9L + i);
      var t = OfflinePlay.play(universe, sloppy, judge, train.openTask(s, "o-" + i, TaskGenerator.openFacts(i)), "o-" + i, s, true);
      open.add(TrajectoryFeatures.of(t, buckets));
      hidden.add(t.verdict().accepted());
      var c = cutAfterFirstWrite(t);
      if (t.verdict().accepted() && c != null) {
        whole.add(open.getLast());
        cut.add(TrajectoryFeatures.of(c, buckets));
      }
      var w = appendsWritten(t);
      if (t.verdict().accepted() && w != null) {
        wholeAppending.add(open.getLast());
        written.add(TrajectoryFeatures.of(w, buckets));
        acked.add(TrajectoryFeatures.of(acksAppended(t), buckets));
      }
    }
    boolean[] y = new boolean[open.size()];
    for (int i = 0; i < y.length; i++) y[i] = hidden.get(i);
    var o = new ObjectMapper().createObjectNode();
    o.put("train_episodes", data.size());
    o.put("open_episodes", open.size());
    o.put("open_hidden_accepted", hidden.stream().filter(b -> b).count());
    var perSeed = o.putArray("seeds");
    for (int k = 0; k < seeds; k++) {
      long seed = settings.training().seed() + k;
      var ts = new CriticTrainer.Settings(settings.training().epochs(), settings.training().batchSize(), settings.training().lr(),
          settings.training().weightDecay(), seed);
      var m = CriticTrainer.train(CriticModel.init(buckets, settings.hidden(), seed), data, ts).model();
      long unseen = 0, total = 0;
      for (int[] x : open) for (int f : x) {
        total++;
        if (!m.isTrained(f)) unseen++;
      }
      var row = perSeed.addObject();
      row.put("init_seed", seed);
      row.put("open_features_untrained", round(unseen / (double) total));
      row.put("auc_open_masked", round(Auc.of(scores(m, open), y)));
      row.put("auc_open_unmasked", round(Auc.of(scores(m.unmasked(), open), y)));
      row.put("mean_open_score_masked", round(java.util.Arrays.stream(scores(m, open)).average().orElse(Double.NaN)));
      row.put("mean_open_score_unmasked", round(java.util.Arrays.stream(scores(m.unmasked(), open)).average().orElse(Double.NaN)));
      double[] sw = scores(m, whole), sc0 = scores(m, cut);
      int cutHigher = 0;
      for (int i = 0; i < sw.length; i++) if (sc0[i] > sw[i]) cutHigher++;
      row.put("cut_pairs", sw.length);
      row.put("mean_score_whole", round(java.util.Arrays.stream(sw).average().orElse(Double.NaN)));
      row.put("mean_score_cut", round(java.util.Arrays.stream(sc0).average().orElse(Double.NaN)));
      row.put("cut_scored_higher", round(cutHigher / (double) Math.max(1, sw.length)));
      double[] sa = scores(m, wholeAppending), sx = scores(m, written);
      int writtenHigher = 0;
      for (int i = 0; i < sa.length; i++) if (sx[i] >= sa[i]) writtenHigher++;
      row.put("written_pairs", sa.length);
      row.put("mean_score_written", round(java.util.Arrays.stream(sx).average().orElse(Double.NaN)));
      row.put("written_scored_as_high", round(writtenHigher / (double) Math.max(1, sa.length)));
      double[] sk = scores(m, acked);
      int ackedHigher = 0;
      for (int i = 0; i < sa.length; i++) if (sk[i] >= sa[i]) ackedHigher++;
      row.put("mean_score_acks_appended", round(java.util.Arrays.stream(sk).average().orElse(Double.NaN)));
      row.put("acks_appended_scored_as_high", round(ackedHigher / (double) Math.max(1, sa.length)));
    }
    return o;
  }

  /** {@code t} up to its first {@code notes.write}, answered with the last successful result before it; null if none. */
  private static Trajectory cutAfterFirstWrite(Trajectory t) {
    var steps = new ArrayList<dev.k2pekko.protocol.Step>();
    String fact = null;
    for (var st : t.steps()) {
      steps.add(st);
      if ("notes.write".equals(st.tool())) {
        return fact == null ? null : doctored(t, "-cut", steps, fact);
      }
      if (st.error() == null && !st.partial() && "web.search".equals(st.tool())) fact = st.result();
    }
    return null;
  }

  /** {@code t} with every {@code notes.append} done as {@code notes.write} (the note then holds the last fact alone); null if it has none. */
  private static Trajectory appendsWritten(Trajectory t) {
    var steps = new ArrayList<dev.k2pekko.protocol.Step>();
    boolean any = false;
    for (var st : t.steps()) {
      if ("notes.append".equals(st.tool())) {
        any = true;
        steps.add(new dev.k2pekko.protocol.Step(st.callId(), "notes.write", st.arguments(), st.result(), st.error(), st.partial()));
      } else steps.add(st);
    }
    return any ? doctored(t, "-written", steps, t.finalAnswer()) : null;
  }

  /**
   * {@code t} up to its first {@code notes.write}, then one {@code notes.append} of {@code ok} (the store's
   * acknowledgement, not a fact) per append the task asks for, answered {@code ok}: the play of a collapsed RL run
   * under the finished gate (docs/LOOP.md, "Session 16").
   */
  private static Trajectory acksAppended(Trajectory t) {
    var steps = new ArrayList<dev.k2pekko.protocol.Step>();
    int appends = 0;
    boolean written = false;
    for (var st : t.steps()) {
      if (!written) steps.add(st);
      if ("notes.write".equals(st.tool())) written = true;
      if ("notes.append".equals(st.tool()) && st.error() == null && !st.partial()) appends++;
    }
    for (int i = 0; i < appends; i++) {
      steps.add(new dev.k2pekko.protocol.Step("ack-" + i, "notes.append", java.util.Map.of("text", "ok"), "ok", null, false));
    }
    return doctored(t, "-acks", steps, "ok");
  }

  /** {@code t} with other steps and answer (the features read nothing else that changes), its id marked. */
  private static Trajectory doctored(Trajectory t, String mark, List<dev.k2pekko.protocol.Step> steps, String answer) {
    return new Trajectory(t.trajectoryId() + mark, t.taskId(), t.category(), t.difficulty(), t.seed(), t.system(), t.prompt(),
        t.tools(), steps, answer, t.verdict(), t.policy());
  }

  private static double[] scores(CriticModel m, List<int[]> xs) {
    double[] s = new double[xs.size()];
    for (int i = 0; i < s.length; i++) s[i] = m.score(xs.get(i));
    return s;
  }

  private static List<Trajectory> episodes(ToolUniverse universe, int n, long seed, TaskGenerator.Split split, double mistakes) {
    var tasks = new TaskGenerator(universe, 5).coreOnly(true).withSplit(split);
    // the default k2.teacher rates, scaled
    var teacher = new TeacherPolicy(tasks, new TeacherPolicy.Mistakes(Math.min(1, 0.03 * mistakes), Math.min(1, 0.02 * mistakes),
        Math.min(1, 0.02 * mistakes), Math.min(1, 0.01 * mistakes), 0.9));
    var judge = new JudgeRubric(0.8);
    var out = new ArrayList<Trajectory>(n);
    for (int i = 0; i < n; i++) out.add(OfflinePlay.play(universe, teacher, judge, tasks.task(seed + i, "t" + i), "bench/" + split + "/" + i));
    return out;
  }

  private static double auc(CriticModel m, List<Trajectory> ts, int buckets) {
    double[] s = new double[ts.size()];
    boolean[] y = new boolean[ts.size()];
    for (int i = 0; i < s.length; i++) {
      s[i] = m.score(TrajectoryFeatures.of(ts.get(i), buckets));
      y[i] = ts.get(i).verdict().accepted();
    }
    return Auc.of(s, y);
  }

  private static double round(double v) {
    return Math.round(v * 10000) / 10000.0;
  }
}
