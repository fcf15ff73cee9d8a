package dev.k2pekko.launcher;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2pekko.pipeline.Pipeline;
import java.io.PrintStream;

/** Progress and summary of the whole pipeline (`k2 run`). */
final class PipelineReport {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final PrintStream err;
  private final boolean tty = System.console() != null;
  private long lastLine;
  private String lastStage = "";

  PipelineReport(PrintStream err) {
    this.err = err;
  }

  void progress(Pipeline.Progress p) {
    long now = System.nanoTime();
    boolean done = p.done() >= p.total();
    boolean newStage = !p.stage().equals(lastStage);
    if (!tty && !newStage && !done && now - lastLine < 2_000_000_000L) return;
    if (tty && newStage && !lastStage.isEmpty()) err.println();
    lastStage = p.stage();
    lastLine = now;
    int width = 30;
    int filled = (int) Math.min(width, p.total() == 0 ? width : p.done() * width / p.total());
    var line = String.format("%-10s [%s%s] %,d/%,d %s", p.stage(), "#".repeat(filled), ".".repeat(width - filled), p.done(), p.total(), p.detail());
    if (tty) err.print("\r" + line);
    else err.println(line);
  }

  /** The summary table; {@code clipMode} is how the run's parameter server clipped (k2.ps.qk-clip). */
  static void table(Pipeline.Result r, dev.k2pekko.optim.QkClip.Mode clipMode, PrintStream out) {
    if (System.console() != null) System.err.println();
    out.println("stage  version  held-out success  pass^1  pass^2  pass^3  pass^4   by difficulty (1..5)");
    var rows = new java.util.ArrayList<Pipeline.Eval>();
    rows.add(r.init());
    rows.addAll(r.sftCurve()); // SFT's evaluations after each part: held-out success against SFT steps, the last is sft
    rows.add(r.rl());
    for (var e : rows) {
      var sb = new StringBuilder();
      e.byDifficulty().forEach((d, nc) -> sb.append(String.format(" %.0f%%", 100 * nc[1] / nc[0])));
      out.printf("%-5s  %7d  %15.1f%%  %s  %s%n", e.stage(), e.version(), 100 * e.success(), passK(e.passK()), sb);
    }
    var rounds = new StringBuilder();
    for (double x : r.roundSuccess()) rounds.append(Double.isNaN(x) ? " -" : String.format(" %.1f%%", 100 * x));
    var c = r.status().counters();
    out.printf("%nRL rollouts accepted by the judge, round by round (training tasks, sampled):%s%n", rounds);
    var mix = new StringBuilder();
    for (double[] w : r.roundDifficultyWeights()) {
      if (w == null) { mix.append("  uniform"); continue; }
      double sum = 0;
      for (double x : w) sum += x;
      mix.append("  ");
      for (int d = 0; d < w.length; d++) mix.append(d == 0 ? "" : "/").append(Math.round(100 * w[d] / sum));
    }
    out.printf("RL task mix by difficulty 1..5, %% per round:%s%n", mix);
    out.printf("synthesis: %,d accepted trajectories persisted; RL: %,d rollouts persisted%n", r.synthesized(), r.rollouts());
    out.printf("parameter server: %,d steps, version %d, %,d trajectories consumed (%,d duplicates), %,d tokens; "
            + "%d refused as stale, %d rejected as non-finite%n", c.getOrDefault("steps", 0L), r.status().version(),
        c.getOrDefault("trajectories", 0L), c.getOrDefault("duplicates", 0L), c.getOrDefault("tokens", 0L),
        c.getOrDefault("refused_stale", 0L), c.getOrDefault("rejected_non_finite", 0L));
    var h = r.clip();
    out.printf("QK-Clip %s: tau %s, %,d rescale commands over %,d steps; largest head max logit %.1f, after a step %.1f "
            + "(%d step%s with a head over tau)%s%n", clipMode.name().toLowerCase(java.util.Locale.ROOT), fmt(h.tau()), c.getOrDefault("heads_clipped", 0L),
        h.steps().size(), h.largest(), h.largestAfterStep(), h.stepsOverTauAfterStep(), h.stepsOverTauAfterStep() == 1 ? "" : "s", reclipped(h));
    out.println(criticLine(r.critic()));
    out.println(rewardLines(r.reward()));
    out.println(openLines(r.open()));
    var sb = new StringBuilder();
    r.times().forEach((k, v) -> sb.append(String.format("%s %.1fs  ", k, v.toMillis() / 1000.0)));
    out.println("wall time: " + sb.toString().trim());
    if (!r.resumed().isEmpty()) {
      out.println("resumed run:");
      for (var line : r.resumed()) out.println("  " + line);
    }
  }

  /** The critic's AUC after each (re)training on the held-out sft evaluation episodes, and its last weights' on the rl evaluation's. */
  static String criticLine(Pipeline.CriticReport c) {
    var sb = new StringBuilder("critic (learned, judge's acceptance): ROC AUC on held-out evaluation episodes it never trained on");
    Pipeline.CriticRound held = null;
    for (var t : c.trainings()) if (t.problem() == null && held == null) held = t;
    if (held != null) {
      sb.append(String.format(" (eval-sft: %,d episodes, %,d rejected)", held.heldOutEpisodes(), held.heldOutEpisodes() - held.heldOutAccepted()));
    }
    sb.append(", after training on");
    for (var t : c.trainings()) sb.append(String.format(" %s %s;", t.trainedOn(), auc(t)));
    var rl = c.onRlEval();
    sb.append(String.format(" last version on eval-rl (%,d episodes, %,d rejected) %s", rl.heldOutEpisodes(), rl.heldOutEpisodes() - rl.heldOutAccepted(), auc(rl)));
    double seconds = 0;
    for (var t : c.trainings()) seconds += t.took().toMillis() / 1000.0;
    sb.append(String.format("; %.1f s of training in all", seconds));
    for (var t : c.trainings()) if (t.problem() != null) sb.append(String.format("%n  critic, %s: %s", t.trainedOn(), t.problem()));
    if (rl.problem() != null) sb.append(String.format("%n  critic, eval-rl: %s", rl.problem()));
    return sb.toString();
  }

  /** The reward's weights, and per RL round the critic's mean score next to the hidden success on the same rollouts, flagged rounds marked. */
  static String rewardLines(Pipeline.RewardReport rr) {
    var w = rr.weights();
    var sb = new StringBuilder(String.format("reward: verifiable %s + critic %s - cost %s per call - safety %s per violation%n", weight(w.verifiable()),
        weight(w.critic()), weight(w.cost()), weight(w.safety())));
    sb.append("reward hacking watch, per RL round: critic's mean score / hidden success (judge) on the round's rollouts:");
    int flagged = 0;
    for (var x : rr.rounds()) {
      if (x.problem() != null) {
        sb.append(String.format(" %s -;", x.round()));
        continue;
      }
      sb.append(String.format(" %s %.3f / %.1f%%%s;", x.round(), x.criticMean(), 100 * x.hiddenSuccess(), x.flagged() ? " FLAGGED" : ""));
      if (x.flagged()) flagged++;
    }
    if (rr.rounds().isEmpty()) sb.append(" no rounds");
    sb.append(flagged == 0 ? " no round flagged" : String.format(" %d round(s) flagged: the critic rose while the hidden success fell", flagged));
    for (var x : rr.rounds()) if (x.problem() != null) sb.append(String.format("%n  hacking watch, %s: %s", x.round(), x.problem()));
    return sb.toString();
  }

  /**
   * Open tasks: the held-out open set's success by the hidden rubric after SFT and after RL (with pass^k), the
   * synthesis's open episodes and how many the public checks kept, and per RL round the hacking watch on the open rollouts.
   */
  static String openLines(Pipeline.OpenReport o) {
    var st = o.settings();
    var sb = new StringBuilder(String.format("open tasks (success by the hidden rubric; synthesis share %s, rl share %s): ", weight(st.synthesisShare()),
        weight(st.rlShare())));
    if (o.sft() == null && o.rl() == null) {
      sb.append("no open evaluation (k2.open.eval-tasks = 0)");
    } else {
      var any = o.sft() != null ? o.sft() : o.rl();
      sb.append(String.format("held-out open set, %d tasks x %d trials:", any.tasks(), any.trials()));
      for (var e : new Pipeline.Eval[] {o.sft(), o.rl()}) {
        if (e == null) continue;
        sb.append(String.format(" %s %.1f%% (pass^%d %.3f);", e.stage().substring("open-".length()), 100 * e.success(), e.passK().length,
            e.passK()[e.passK().length - 1]));
      }
      if (o.sft() != null && o.rl() != null) sb.append(String.format(" RL - SFT %+.1f points", 100 * (o.rl().success() - o.sft().success())));
    }
    if (st.synthesisShare() > 0) {
      sb.append(o.synthesisEpisodes() < 0 ? "; synthesis: open episodes not known (a resumed part)"
          : String.format("; synthesis: %,d open episodes, %,d kept for SFT by the public checks", o.synthesisEpisodes(), o.synthesisKept()));
    }
    if (st.rlShare() > 0) {
      sb.append(String.format("%nopen hacking watch, per RL round: critic's mean score / hidden success on the round's open rollouts:"));
      int flagged = 0;
      for (var x : o.rounds()) {
        if (x.problem() != null) {
          sb.append(String.format(" %s -;", x.round()));
          continue;
        }
        sb.append(String.format(" %s %.3f / %.1f%% (%d)%s;", x.round(), x.criticMean(), 100 * x.hiddenSuccess(), x.episodes(), x.flagged() ? " FLAGGED" : ""));
        if (x.flagged()) flagged++;
      }
      sb.append(flagged == 0 ? " no round flagged" : String.format(" %d round(s) flagged: the critic rose while the hidden success fell", flagged));
      for (var x : o.rounds()) if (x.problem() != null) sb.append(String.format("%n  open hacking watch, %s: %s", x.round(), x.problem()));
    }
    return sb.toString();
  }

  private static String auc(Pipeline.CriticRound t) {
    if (t.problem() != null) return "-";
    if (t.heldOutEpisodes() == 0) return "n/a (no held-out episodes)";
    return Double.isNaN(t.auc()) ? "n/a (one verdict only)" : String.format("%.3f", t.auc());
  }

  private static String passK(double[] p) {
    var sb = new StringBuilder();
    for (int k = 0; k < 4; k++) sb.append(k < p.length ? String.format("%6.3f", p[k]) : "     -").append(k < 3 ? "  " : "");
    return sb.toString();
  }

  /** The learners' re-clips (k2.ps.enforce-at-learners), when there were any: how many steps, and the largest logit trained on. */
  private static String reclipped(dev.k2pekko.protocol.ClipMonitorProtocol.History h) {
    int n = h.reclippedSteps();
    if (n == 0) return "";
    return String.format(java.util.Locale.ROOT, "; re-clipped by the learners before the gradient in %d step%s: largest logit trained on %.1f (%d step%s over tau)",
        n, n == 1 ? "" : "s", h.largestTrained(), h.stepsOverTauTrained(), h.stepsOverTauTrained() == 1 ? "" : "s");
  }

  /**
   * The summary as JSON. {@code clip}: the mode, tau, {@code rescales} (the RescaleQK commands the coordinator ordered),
   * the largest head max logit of any step and of the steps after the first ({@code largest_after_step}, with
   * {@code steps_over_tau_after_step}: how often a step's weights still had a head over tau), the same for the forward
   * passes the gradients came from after the learners' re-clips ({@code largest_trained}, {@code steps_over_tau_trained},
   * {@code learner_reclipped_steps}), the quantiles of every
   * (step, head) max logit, and per head the steps whose max exceeded tau.
   */
  static ObjectNode json(Pipeline.Result r, dev.k2pekko.optim.QkClip.Mode clipMode) {
    var root = JSON.createObjectNode();
    for (var e : new Pipeline.Eval[] {r.init(), r.sft(), r.rl()}) {
      var n = root.putObject(e.stage());
      n.put("version", e.version());
      n.put("weights", e.weights());
      n.put("success", round(e.success()));
      var pk = n.putArray("pass_k");
      for (double v : e.passK()) pk.add(round(v));
      n.put("tasks", e.tasks());
      n.put("trials", e.trials());
      var bd = n.putObject("by_difficulty");
      e.byDifficulty().forEach((d, nc) -> bd.put(Integer.toString(d), round(nc[1] / nc[0])));
    }
    // held-out success in points gained by RL over SFT, and SFT's curve (success against SFT steps, by version)
    root.put("rl_gain", round(100 * (r.rl().success() - r.sft().success())));
    var curve = root.putArray("sft_curve");
    for (var e : r.sftCurve()) curve.addObject().put("stage", e.stage()).put("version", e.version()).put("success", round(e.success()));
    var c = r.status().counters();
    var ps = root.putObject("ps");
    ps.put("version", r.status().version());
    c.forEach(ps::put);
    root.put("synthesized", r.synthesized());
    root.put("rollouts", r.rollouts());
    var mixes = root.putArray("rl_round_difficulty_weights");
    for (double[] w : r.roundDifficultyWeights()) {
      if (w == null) { mixes.addNull(); continue; }
      var a = mixes.addArray();
      for (double x : w) a.add(round(x));
    }
    var rs = root.putArray("rl_round_success");
    for (double x : r.roundSuccess()) {
      if (Double.isNaN(x)) rs.addNull();
      else rs.add(round(x));
    }
    var clip = root.putObject("clip");
    clip.put("mode", clipMode.name().toLowerCase(java.util.Locale.ROOT));
    clip.put("tau", r.clip().tau());
    clip.put("rescales", c.getOrDefault("heads_clipped", 0L));
    putOrNull(clip, "largest_max_logit", r.clip().largest());
    putOrNull(clip, "largest_after_step", r.clip().largestAfterStep());
    clip.put("steps_over_tau_after_step", r.clip().stepsOverTauAfterStep());
    putOrNull(clip, "largest_trained", r.clip().largestTrained());
    clip.put("steps_over_tau_trained", r.clip().stepsOverTauTrained());
    clip.put("learner_reclipped_steps", r.clip().reclippedSteps());
    clip.put("steps", r.clip().steps().size());
    var q = clip.putObject("head_max_quantiles");
    for (double p : new double[] {0.5, 0.9, 0.99, 0.999, 1.0}) putOrNull(q, "p" + new java.math.BigDecimal(Double.toString(100 * p)).stripTrailingZeros().toPlainString(), r.clip().quantile(p));
    var counts = clip.putArray("clip_counts");
    var h = r.clip();
    var maxima = h.steps().stream().map(dev.k2pekko.protocol.ClipMonitorProtocol.StepMaxLogits::maxLogit).toList();
    for (int[] row : dev.k2pekko.optim.QkClip.clipCounts(maxima, h.tau(), h.layers(), h.heads())) {
      var a = counts.addArray();
      for (int x : row) a.add(x);
    }
    var critic = root.putObject("critic");
    var auc = critic.putArray("auc");
    var trainedOn = critic.putArray("trained_on");
    var versions = critic.putArray("versions");
    var examples = critic.putArray("examples");
    for (var x : r.critic().trainings()) {
      if (Double.isNaN(x.auc())) auc.addNull();
      else auc.add(round(x.auc()));
      trainedOn.add(x.trainedOn());
      versions.add(x.version());
      examples.add(x.examples());
    }
    critic.put("held_out", "eval-sft");
    var first = r.critic().trainings().stream().filter(x -> x.problem() == null).findFirst();
    critic.put("held_out_episodes", first.map(Pipeline.CriticRound::heldOutEpisodes).orElse(0));
    critic.put("held_out_rejected", first.map(x -> x.heldOutEpisodes() - x.heldOutAccepted()).orElse(0));
    var onRl = r.critic().onRlEval();
    if (Double.isNaN(onRl.auc())) critic.putNull("auc_eval_rl");
    else critic.put("auc_eval_rl", round(onRl.auc()));
    critic.put("eval_rl_rejected", onRl.heldOutEpisodes() - onRl.heldOutAccepted());
    critic.put("seconds", round(r.critic().trainings().stream().mapToLong(x -> x.took().toMillis()).sum() / 1000.0));
    var problems = critic.putArray("problems");
    for (var x : r.critic().trainings()) if (x.problem() != null) problems.add(x.trainedOn() + ": " + x.problem());
    if (onRl.problem() != null) problems.add("eval-rl: " + onRl.problem());
    var rw = root.putObject("reward_weights");
    var w = r.reward().weights();
    rw.put("verifiable", w.verifiable()).put("critic", w.critic()).put("cost", w.cost()).put("safety", w.safety());
    watch(root.putArray("rl_round_watch"), r.reward().rounds());
    open(root.putObject("open"), r.open());
    var resumed = root.putArray("resumed");
    r.resumed().forEach(resumed::add);
    var t = root.putObject("seconds");
    r.times().forEach((k, v) -> t.put(k, round(v.toMillis() / 1000.0)));
    return root;
  }

  /** The hacking watch's rows, one object per RL round. */
  private static void watch(com.fasterxml.jackson.databind.node.ArrayNode watch, java.util.List<dev.k2pekko.pipeline.HackingFlag.Round> rounds) {
    for (var x : rounds) {
      var o = watch.addObject();
      o.put("round", x.round());
      putOrNull(o, "critic_mean", x.criticMean());
      putOrNull(o, "hidden_success", x.hiddenSuccess());
      o.put("flagged", x.flagged());
      o.put("critic_version", x.criticVersion());
      o.put("episodes", x.episodes());
      if (x.problem() != null) o.put("problem", x.problem());
    }
  }

  /**
   * {@code open}: the settings, the held-out open set's evaluations {@code sft} and {@code rl} (null without one:
   * version, weights, success by the hidden rubric, pass_k, tasks, trials), {@code rl_gain} in points, the synthesis's
   * open episodes and those kept by the public checks (null: not known), and {@code rl_round_watch} on the open rollouts.
   */
  private static void open(ObjectNode n, Pipeline.OpenReport o) {
    n.put("synthesis_share", o.settings().synthesisShare()).put("rl_share", o.settings().rlShare()).put("eval_tasks", o.settings().evalTasks());
    var evals = new Pipeline.Eval[] {o.sft(), o.rl()};
    for (int i = 0; i < 2; i++) {
      var e = evals[i];
      String key = i == 0 ? "sft" : "rl";
      if (e == null) {
        n.putNull(key);
        continue;
      }
      var x = n.putObject(key);
      x.put("version", e.version()).put("weights", e.weights()).put("success", round(e.success()));
      var pk = x.putArray("pass_k");
      for (double v : e.passK()) pk.add(round(v));
      x.put("tasks", e.tasks()).put("trials", e.trials());
    }
    if (o.sft() != null && o.rl() != null) n.put("rl_gain", round(100 * (o.rl().success() - o.sft().success())));
    else n.putNull("rl_gain");
    if (o.synthesisEpisodes() < 0) n.putNull("synthesis_episodes");
    else n.put("synthesis_episodes", o.synthesisEpisodes());
    if (o.synthesisKept() < 0) n.putNull("synthesis_kept");
    else n.put("synthesis_kept", o.synthesisKept());
    watch(n.putArray("rl_round_watch"), o.rounds());
  }

  /** NaN (no step measured) as null, not as a number. */
  private static void putOrNull(ObjectNode n, String key, double v) {
    if (Double.isNaN(v)) n.putNull(key);
    else n.put(key, round(v));
  }

  private static String weight(double v) {
    return new java.math.BigDecimal(Double.toString(v)).stripTrailingZeros().toPlainString();
  }

  private static String fmt(double v) {
    return v == Math.rint(v) ? String.format("%.0f", v) : String.format("%.2f", v);
  }

  private static double round(double v) {
    return Math.round(v * 10000) / 10000.0;
  }
}
