package dev.k2pekko.launcher;

import com.typesafe.config.Config;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code k2 bench sft-plateau|open|pareto}: the offline RL experiments (SFT then RL in one process, no actors). */
final class BenchRl {
  private BenchRl() {}

  @Command(name = "sft-plateau", mixinStandardHelpOptions = true,
      description = "SFT of the default policy on the default world's teacher data, offline, trained well past the pipeline's SFT "
          + "steps, with k2 run's held-out evaluation every so many steps: is SFT at its plateau? (docs/LOOP.md)")
  static final class SftPlateauCommand implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--seed", defaultValue = "42", description = "run seed: the held-out tasks of k2 run --seed (default ${DEFAULT-VALUE})") long seed;
    @Option(names = "--steps", defaultValue = "1600", description = "SFT steps (default ${DEFAULT-VALUE})") int steps;
    @Option(names = "--eval-every", defaultValue = "200", description = "(default ${DEFAULT-VALUE})") int evalEvery;
    @Option(names = "--rl-rounds", defaultValue = "0", description = "RL rounds after the SFT steps, as k2 run's (default ${DEFAULT-VALUE})") int rlRounds;
    @Option(names = "--sft-control", description = "also, from the same SFT model, as many further SFT steps on the teacher data as RL took "
        + "in each round (the same budget, paired)") boolean sftControl;
    @Option(names = "--episodes", description = "teacher episodes on verifiable training tasks (default: the default run's synthesis)") Integer episodes;
    @Option(names = "--noted-share", description = "share of the synthesis's verifiable tasks drawn as noted tasks as k2.tasks.noted-share does in a run (default 0, the run's default)")
    Double notedShare;
    @Option(names = "--open-episodes", description = "teacher episodes on open training tasks on top of them, kept by the public checks alone "
        + "(default: the default run's synthesis; 0: none, as before session 14)") Integer openEpisodes;
    @Option(names = "--eval-tasks", description = "held-out tasks per evaluation (default: the default run's; 100 before session 14)") Integer evalTasks;
    @Option(names = "--failure-rate", description = "the world's k2.tools.failure-rate (default: the default run's)") Double failureRate;
    @Option(names = "--partial-rate", description = "the world's k2.tools.partial-rate (default: the default run's)") Double partialRate;
    @Option(names = "--rl-lr", description = "RL learning rate (default: the default run's)") Double rlLr;
    @Option(names = "--rl-tasks", description = "training tasks per RL round (default: the default run's)") Integer rlTasks;
    @Option(names = "--rl-groups", description = "task groups per RL step (default: the default run's)") Integer rlGroups;
    @Option(names = "--rl-epochs", defaultValue = "1", description = "passes over each round's groups (default ${DEFAULT-VALUE})") int rlEpochs;
    @Option(names = "--rl-lr-decay", defaultValue = "1", description = "the RL rate falls linearly over the rounds to this fraction of --rl-lr "
        + "(default ${DEFAULT-VALUE}: constant)") double rlLrDecay;
    @Option(names = "--eval-trials", description = "trials per held-out task (default: the default run's)") Integer evalTrials;
    @Option(names = "--rl-rollouts", description = "rollouts per training task (default: the default run's)") Integer rlRollouts;
    @Option(names = "--rl-ptx", defaultValue = "0", description = "teacher trajectories (of the SFT data) added to each RL step (default ${DEFAULT-VALUE})") int rlPtx;
    @Option(names = "--rl-advantage", description = "weigh each success by 1 - its group's success share (by repetition)") boolean rlAdvantage;
    @Option(names = "--rl-replay", defaultValue = "0", description = "earlier rounds' groups trained on again with each round's, this "
        + "many times as many as the round has (-1: all of them; default ${DEFAULT-VALUE})") double rlReplay;
    @Option(names = "--rl-temperature", defaultValue = "1", description = "sampling temperature of the RL rollouts; evaluation stays at 1 "
        + "(default ${DEFAULT-VALUE})") double rlTemperature;
    @Option(names = "--rl-recovery-weight", defaultValue = "1", description = "each action of an accepted rollout whose view shows a failed "
        + "call counts this many times (default ${DEFAULT-VALUE})") int rlRecoveryWeight;
    @Option(names = "--json") boolean json;

    @Override public Integer call() {
      if (rlRecoveryWeight < 1 || rlRecoveryWeight > 100) throw new NodeConfig.UsageError("--rl-recovery-weight must lie in [1, 100], got " + rlRecoveryWeight);
      if (!(rlTemperature > 0 && rlTemperature <= 5)) throw new NodeConfig.UsageError("--rl-temperature must lie in (0, 5], got " + rlTemperature);
      if (steps < 1 || evalEvery < 1 || rlRounds < 0) throw new NodeConfig.UsageError("--steps and --eval-every must be positive, --rl-rounds >= 0");
      var d = dev.k2pekko.bench.SftPlateau.Config.defaults();
      double fr = failureRate == null ? d.failureRate() : failureRate, pr = partialRate == null ? d.partialRate() : partialRate;
      if (!(fr >= 0 && fr <= 0.5) || !(pr >= 0 && pr <= 0.5)) throw new NodeConfig.UsageError("--failure-rate and --partial-rate must lie in [0, 0.5]");
      int ep = episodes == null ? d.episodes() : episodes, tr = evalTrials == null ? d.evalTrials() : evalTrials;
      int openEp = openEpisodes == null ? d.openEpisodes() : openEpisodes, et = evalTasks == null ? d.evalTasks() : evalTasks;
      if (openEp < 0 || et < 1) throw new NodeConfig.UsageError("--open-episodes must be >= 0 and --eval-tasks >= 1");
      int tasks = rlTasks == null ? d.rl().tasks() : rlTasks;
      double lr = rlLr == null ? d.rl().lr() : rlLr;
      int groups = rlGroups == null ? d.rl().groupsPerStep() : rlGroups;
      if (!(rlLrDecay > 0 && rlLrDecay <= 1)) throw new NodeConfig.UsageError("--rl-lr-decay must lie in (0, 1], got " + rlLrDecay);
      int rollouts = rlRollouts == null ? d.rl().rollouts() : rlRollouts;
      if (notedShare != null && !(notedShare >= 0 && notedShare <= 1)) throw new NodeConfig.UsageError("--noted-share must lie in [0, 1], got " + notedShare);
      if (rollouts < 2 || rlPtx < 0) throw new NodeConfig.UsageError("--rl-rollouts >= 2 and --rl-ptx >= 0");
      if (ep < 10 || tr < 1 || tasks < 1 || groups < 1 || rlEpochs < 1 || !(lr > 0)) throw new NodeConfig.UsageError("--episodes >= 10, --eval-trials, --rl-tasks, --rl-groups, --rl-epochs and --rl-lr > 0");
      var cfg = new dev.k2pekko.bench.SftPlateau.Config(seed, ep, openEp, steps, evalEvery, et, tr, fr, pr, d.lr(), d.warmup(), d.decaySteps(),
          new dev.k2pekko.bench.SftPlateau.Rl(rlRounds, tasks, rollouts, groups, lr, rlEpochs, sftControl, rlLrDecay,
              rlPtx, rlAdvantage, rlReplay, rlTemperature, rlRecoveryWeight), notedShare == null ? d.notedShare() : notedShare);
      var r = dev.k2pekko.bench.SftPlateau.run(cfg, p -> {
        if (!json) {
          System.out.printf("  %-11s step %5d  held-out success %5.1f%%  (met a tool failure: %4.1f%% of trials, success %5.1f%% there, %5.1f%% elsewhere)  loss %.4f%n",
              p.arm(), p.step(), 100 * p.success(), 100 * p.metFailure(), 100 * p.successMet(), 100 * p.successClean(), p.loss());
          if (!Double.isNaN(p.trainAccepted())) System.out.printf("              round's rollouts accepted %5.1f%%%n", 100 * p.trainAccepted());
          System.out.println("              rejected where a failure was met, by what followed the first failure: " + p.whyMet());
          System.out.flush();
        }
      });
      if (json) System.out.println(r.toJson());
      else System.out.printf("  %d accepted teacher trajectories of %d verifiable, %d open of %d kept by the public checks, %d examples, %.0f s%n",
          r.accepted(), cfg.episodes(), r.openKept(), cfg.openEpisodes(), r.examples(), r.seconds());
      return 0;
    }
  }

  /** The sizes and settings {@code bench open} and {@code bench pareto} share (RewardExperiment.Config). */
  static final class ExperimentOptions {
    @Option(names = "--seed", defaultValue = "42", description = "run seed (default ${DEFAULT-VALUE})") long seed;
    @Option(names = "--episodes", defaultValue = "6000", description = "teacher episodes on verifiable training tasks (default ${DEFAULT-VALUE})") int episodes;
    @Option(names = "--open-episodes", defaultValue = "1500", description = "teacher episodes on open training tasks (default ${DEFAULT-VALUE})") int openEpisodes;
    @Option(names = "--sft-steps", defaultValue = "800", description = "SFT steps of 8 trajectories (default ${DEFAULT-VALUE})") int sftSteps;
    @Option(names = "--eval-tasks", defaultValue = "100", description = "held-out verifiable tasks (default ${DEFAULT-VALUE})") int evalTasks;
    @Option(names = "--open-eval-tasks", defaultValue = "60", description = "held-out open tasks (default ${DEFAULT-VALUE})") int openEvalTasks;
    @Option(names = "--eval-trials", defaultValue = "4", description = "trials per held-out task (default ${DEFAULT-VALUE})") int evalTrials;
    @Option(names = "--rl-rounds", defaultValue = "3", description = "(default ${DEFAULT-VALUE})") int rlRounds;
    @Option(names = "--rl-tasks", defaultValue = "200", description = "verifiable training tasks per round (default ${DEFAULT-VALUE})") int rlTasks;
    @Option(names = "--rl-open-tasks", defaultValue = "100", description = "open training tasks per round (default ${DEFAULT-VALUE})") int rlOpenTasks;

    dev.k2pekko.bench.RewardExperiment.Config config(dev.k2pekko.trainer.Reward.Weights w, dev.k2pekko.bench.RewardExperiment.OpenReward open) {
      if (episodes < 10 || openEpisodes < 0 || sftSteps < 1 || evalTasks < 0 || openEvalTasks < 0 || evalTrials < 1 || rlRounds < 0 || rlTasks < 0 || rlOpenTasks < 0) {
        throw new NodeConfig.UsageError("--episodes must be at least 10, --sft-steps and --eval-trials at least 1, the other sizes >= 0");
      }
      var d = dev.k2pekko.bench.RewardExperiment.Config.defaults();
      return new dev.k2pekko.bench.RewardExperiment.Config(seed, episodes, openEpisodes, sftSteps, evalTasks, openEvalTasks, evalTrials, rlRounds,
          rlTasks, rlOpenTasks, d.rollouts(), d.groupsPerStep(), d.lrSft(), d.lrRl(), w, open);
    }
  }

  /** Runs the branches from one prepared SFT side by side on {@code parallel} threads; results in the branches' order. */
  static List<dev.k2pekko.bench.RewardExperiment.Result> branches(dev.k2pekko.bench.RewardExperiment.Prepared prep,
      List<java.util.Map.Entry<dev.k2pekko.trainer.Reward.Weights, dev.k2pekko.bench.RewardExperiment.OpenReward>> runs,
      dev.k2pekko.critic.Critic.Settings critic, int parallel, java.util.function.BiConsumer<Integer, dev.k2pekko.bench.RewardExperiment.Point> progress) {
    var pool = java.util.concurrent.Executors.newFixedThreadPool(Math.max(1, Math.min(parallel, runs.size())));
    try {
      var futures = new java.util.ArrayList<java.util.concurrent.Future<dev.k2pekko.bench.RewardExperiment.Result>>();
      for (int i = 0; i < runs.size(); i++) {
        int b = i;
        var run = runs.get(i);
        futures.add(pool.submit(() -> dev.k2pekko.bench.RewardExperiment.rl(prep, run.getKey(), run.getValue(), critic, p -> progress.accept(b, p))));
      }
      var out = new java.util.ArrayList<dev.k2pekko.bench.RewardExperiment.Result>();
      for (var f : futures) out.add(f.get());
      return out;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    } catch (java.util.concurrent.ExecutionException e) {
      throw new IllegalStateException("a branch failed: " + e.getCause(), e.getCause());
    } finally {
      pool.shutdownNow();
    }
  }

  @Command(name = "open", mixinStandardHelpOptions = true,
      description = "Open tasks rewarded by the critic alone, offline: SFT on teacher data (open tasks kept by the public checks only), then RL "
          + "where an open rollout's reward is the learned critic's score; hidden-rubric success on the fixed held-out open tasks after SFT and "
          + "after each round (docs/LOOP.md, \"Open tasks\"). Several --open-reward modes start from the same SFT weights.")
  static final class OpenTasks implements java.util.concurrent.Callable<Integer> {
    @picocli.CommandLine.Mixin ExperimentOptions sizes = new ExperimentOptions();
    @Option(names = "--open-reward", split = ",", defaultValue = "critic,none", description = "how open rollouts are rewarded, one branch each: critic "
        + "(the learned critic's score), none (not trained on: what verifiable RL alone carries over), oracle (the hidden verdict: an upper "
        + "bound); default ${DEFAULT-VALUE}") List<String> openReward;
    @Option(names = "--parallel", defaultValue = "1", description = "branches run side by side (default ${DEFAULT-VALUE})") int parallel;
    @Option(names = "--json") boolean json;

    @Override public Integer call() {
      var modes = new java.util.ArrayList<dev.k2pekko.bench.RewardExperiment.OpenReward>();
      for (var m : openReward) {
        try {
          modes.add(dev.k2pekko.bench.RewardExperiment.OpenReward.valueOf(m.trim().toUpperCase(java.util.Locale.ROOT)));
        } catch (IllegalArgumentException e) {
          throw new NodeConfig.UsageError("--open-reward must be critic, oracle or none (comma-separated), got '" + m + "'");
        }
      }
      if (parallel < 1) throw new NodeConfig.UsageError("--parallel must be at least 1");
      var config = com.typesafe.config.ConfigFactory.load();
      var weights = dev.k2pekko.trainer.Reward.Weights.fromConfig(config);
      var cfg = sizes.config(weights, modes.getFirst());
      var critic = dev.k2pekko.critic.Critic.Settings.fromConfig(config);
      var prep = dev.k2pekko.bench.RewardExperiment.prepare(cfg, critic);
      if (!json) {
        System.out.printf("  SFT data: %d verifiable, %d open trajectories (open ones kept by the public checks); %.0f s%n", prep.sftData(), prep.openSftData(), prep.seconds());
        line("sft", prep.sftPoint());
      }
      var runs = new java.util.ArrayList<java.util.Map.Entry<dev.k2pekko.trainer.Reward.Weights, dev.k2pekko.bench.RewardExperiment.OpenReward>>();
      for (var m : modes) runs.add(java.util.Map.entry(weights, m));
      var results = branches(prep, runs, critic, parallel, (b, p) -> {
        if (!json) line(modes.get(b).name().toLowerCase(java.util.Locale.ROOT), p);
      });
      if (json) {
        var o = new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode();
        var a = o.putArray("branches");
        for (var r : results) a.add(r.toJson());
        System.out.println(o);
      }
      return 0;
    }

    private static void line(String branch, dev.k2pekko.bench.RewardExperiment.Point p) {
      System.out.printf("  %-7s %-5s open (hidden rubric) %5.1f%%  verifiable %5.1f%%  critic on the round's open rollouts %s, their hidden success %s; critic AUC %.3f%n",
          branch, p.round() == 0 ? "sft" : "rl " + p.round(), 100 * p.eval().openSuccess(), 100 * p.eval().success(),
          Double.isNaN(p.openCriticMean()) ? "-" : String.format("%.3f", p.openCriticMean()),
          Double.isNaN(p.openHiddenSuccess()) ? "-" : String.format("%.1f%%", 100 * p.openHiddenSuccess()), p.criticAuc());
    }
  }

  @Command(name = "pareto", mixinStandardHelpOptions = true,
      description = "Several reward weightings (k2.reward: verifiable, critic, cost, safety), each RL from the same SFT weights offline, a small "
          + "budget each: held-out success against tool calls and safety violations per episode, the Pareto front; writes pareto.csv and "
          + "pareto.svg to --out (docs/LOOP.md, \"RL: reward and objective\").")
  static final class Pareto implements java.util.concurrent.Callable<Integer> {
    @picocli.CommandLine.Mixin ExperimentOptions sizes = new ExperimentOptions();
    @Option(names = "--weightings", split = ";", defaultValue = "1,0,0,0;1,0.5,0,0;0.5,1,0,0;1,0,0.02,0;1,0,0.05,0;1,0,0,0.5;1,0.5,0.02,0.5",
        description = "weightings 'verifiable,critic,cost,safety' separated by ';' (default ${DEFAULT-VALUE})") List<String> weightings;
    @Option(names = "--parallel", defaultValue = "1", description = "weightings trained side by side (default ${DEFAULT-VALUE})") int parallel;
    @Option(names = "--out", defaultValue = "out/pareto", description = "where pareto.csv and pareto.svg go (default ${DEFAULT-VALUE})") java.nio.file.Path out;
    @Option(names = "--json") boolean json;

    @Override public Integer call() throws Exception {
      var ws = new java.util.ArrayList<dev.k2pekko.trainer.Reward.Weights>();
      for (var w : weightings) {
        var parts = w.split(",");
        if (parts.length != 4) throw new NodeConfig.UsageError("--weightings: '" + w + "' is not verifiable,critic,cost,safety");
        try {
          ws.add(new dev.k2pekko.trainer.Reward.Weights(Double.parseDouble(parts[0].trim()), Double.parseDouble(parts[1].trim()),
              Double.parseDouble(parts[2].trim()), Double.parseDouble(parts[3].trim())));
        } catch (IllegalArgumentException e) {
          throw new NodeConfig.UsageError("--weightings: '" + w + "': " + e.getMessage());
        }
      }
      if (parallel < 1) throw new NodeConfig.UsageError("--parallel must be at least 1");
      var config = com.typesafe.config.ConfigFactory.load();
      var critic = dev.k2pekko.critic.Critic.Settings.fromConfig(config);
      var cfg = sizes.config(ws.getFirst(), dev.k2pekko.bench.RewardExperiment.OpenReward.CRITIC);
      var prep = dev.k2pekko.bench.RewardExperiment.prepare(cfg, critic);
      var runs = new java.util.ArrayList<java.util.Map.Entry<dev.k2pekko.trainer.Reward.Weights, dev.k2pekko.bench.RewardExperiment.OpenReward>>();
      for (var w : ws) runs.add(java.util.Map.entry(w, dev.k2pekko.bench.RewardExperiment.OpenReward.CRITIC));
      var results = branches(prep, runs, critic, parallel, (b, p) -> {
        if (!json) System.err.printf("  %s rl %d: success %.1f%%, %.2f calls, %.3f violations per episode%n", label(ws.get(b)), p.round(),
            100 * p.eval().success(), p.eval().calls(), p.eval().violations());
      });
      var sp = prep.sftPoint().eval();
      var sft = new dev.k2pekko.bench.ParetoFront.Outcome("sft", sp.success(), sp.openSuccess(), sp.calls(), sp.violations());
      var outcomes = new java.util.ArrayList<dev.k2pekko.bench.ParetoFront.Outcome>();
      for (int i = 0; i < ws.size(); i++) {
        var e = results.get(i).points().getLast().eval();
        outcomes.add(new dev.k2pekko.bench.ParetoFront.Outcome(label(ws.get(i)), e.success(), e.openSuccess(), e.calls(), e.violations()));
      }
      dev.k2pekko.bench.ParetoFront.write(out, String.format("Reward weightings after %d RL rounds (seed %d, offline): held-out success vs cost and safety",
          cfg.rlRounds(), cfg.seed()), sft, outcomes);
      var front = dev.k2pekko.bench.ParetoFront.front(outcomes);
      if (json) {
        var o = new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode();
        var a = o.putArray("branches");
        for (var r : results) a.add(r.toJson());
        var f = o.putArray("on_front");
        for (boolean b : front) f.add(b);
        System.out.println(o);
      } else {
        System.out.println(dev.k2pekko.bench.ParetoFront.csv(sft, outcomes));
        System.out.println("written: " + out.resolve("pareto.csv") + ", " + out.resolve("pareto.svg"));
      }
      return 0;
    }

    static String label(dev.k2pekko.trainer.Reward.Weights w) {
      return "verifiable " + num(w.verifiable()) + ", critic " + num(w.critic()) + ", cost " + num(w.cost()) + ", safety " + num(w.safety());
    }

    private static String num(double v) {
      return new java.math.BigDecimal(Double.toString(v)).stripTrailingZeros().toPlainString();
    }
  }
}
