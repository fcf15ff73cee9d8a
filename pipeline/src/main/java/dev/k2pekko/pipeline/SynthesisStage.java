package dev.k2pekko.pipeline;

import dev.k2pekko.agents.Agent;
import dev.k2pekko.agents.PartSeal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.typed.ActorSystem;

/**
 * Synthesis and SFT in {@code sft-parts} parts: the teacher's episodes of part p (accepted ones persisted) are
 * synthesized once the learners have consumed those of part p-1, each part is sealed in the journal (the learners
 * train a part only once it is sealed, sorted by trajectory id: the same seed gives the same SFT weights), and the
 * policy is evaluated on the held-out tasks after each part but the last (whose evaluation is the sft one, the
 * pipeline's next stage): held-out success against SFT steps, in the run report.
 */
final class SynthesisStage {
  /**
   * The trajectories persisted in all parts, the evaluations after all parts but the last, and the parts' run names;
   * of the open tasks' episodes ({@code k2.open.synthesis-share}), how many were played and how many kept by the public
   * checks (-1 when a resumed run's record does not say).
   */
  record Done(long trajectories, List<Pipeline.Eval> curve, List<String> parts, long openEpisodes, long openKept) {}

  private final ActorSystem<?> system;
  private final Pipeline.Spec spec;
  private final RunLedger ledger;
  private final ClusterProbe probe;
  private final JournalStats journal;
  private final EpisodeRuns episodes;
  private final Evaluation evaluation;
  private final PolicyTasks tasks;

  SynthesisStage(ActorSystem<?> system, Pipeline.Spec spec, RunLedger ledger, ClusterProbe probe, JournalStats journal, EpisodeRuns episodes,
                 Evaluation evaluation) {
    this.system = system;
    this.spec = spec;
    this.ledger = ledger;
    this.probe = probe;
    this.journal = journal;
    this.episodes = episodes;
    this.evaluation = evaluation;
    this.tasks = PolicyTasks.of(system.settings().config());
  }

  Done run() throws Exception {
    long synthesized = 0;
    long[] open = {0, 0};
    var curve = new ArrayList<Pipeline.Eval>();
    var parts = new ArrayList<String>();
    for (int part = 1; part <= spec.sftParts(); part++) {
      String name = name(part), key = part == 1 ? "synthesis" : "synthesis-" + part;
      parts.add(name);
      synthesized += synthesize(part, name, key, open);
      // sealed again on a resume: a crash may have come between the part's last trajectory and its seal
      PartSeal.seal(system, name, part, Duration.ofSeconds(30));
      probe.awaitConsumed(synthesized, "sft");
      if (part < spec.sftParts()) {
        probe.awaitPublished();
        curve.add(evaluation.of("sft-" + part));
      }
    }
    return new Done(synthesized, List.copyOf(curve), List.copyOf(parts), open[0], open[1]);
  }

  /**
   * The trajectories of part {@code part} in the journal: from the record, or synthesized (completed on a resume) and
   * recorded. Adds the part's open episodes played and kept to {@code open} (-1 once one part does not know them).
   */
  private long synthesize(int part, String name, String key, long[] open) throws Exception {
    var recorded = ledger.done(key);
    if (recorded != null) {
      long made = recorded.get("trajectories").asLong();
      ledger.note(String.format("%s: done before (%,d trajectories)", key, made));
      addOpen(open, recorded.has("open-episodes") ? recorded.get("open-episodes").asLong() : -1,
          recorded.has("open-kept") ? recorded.get("open-kept").asLong() : -1);
      return made;
    }
    // the parts share synth-episodes between them, the remainder spread so that they sum to it
    int count = (int) ((long) spec.synthEpisodes() * part / spec.sftParts() - (long) spec.synthEpisodes() * (part - 1) / spec.sftParts());
    long before = ledger.again() ? journal.count(name + "/") : 0;
    // open tasks among the teacher's (k2.open.synthesis-share): the judge keeps those by the public checks alone
    var synth = episodes.run(name, spec.synthAgents(), count, new Agent.EpisodeSpec(tasks.train(), "teacher", 0, 1, null, tasks.core() ? spec.open().synthesisShare() : 0),
        Agent.PersistMode.ACCEPTED, spec.sftParts() == 1 ? "synthesis" : "synthesis " + part + "/" + spec.sftParts());
    long made = before > 0 ? journal.count(name + "/") : synth.get("persisted");
    if (before > 0) ledger.note(String.format("%s: completed (%,d of its trajectories were in the journal, now %,d)", key, before, made));
    // a completed part's counters miss what was done before the restart: its open counts are not known
    long openEpisodes = before > 0 ? -1 : synth.get("category/open/episodes"), openKept = before > 0 ? -1 : synth.get("category/open/persisted");
    addOpen(open, openEpisodes, openKept);
    ledger.save(key, PipelineRecord.object().put("trajectories", made).put("open-episodes", openEpisodes).put("open-kept", openKept));
    return made;
  }

  private static void addOpen(long[] open, long episodes, long kept) {
    open[0] = open[0] < 0 || episodes < 0 ? -1 : open[0] + episodes;
    open[1] = open[1] < 0 || kept < 0 ? -1 : open[1] + kept;
  }

  /** The run name of the synthesis's part {@code part} (the first keeps the name of a run in one part). */
  private String name(int part) {
    return spec.runId() + "-synth" + (part == 1 ? "" : "-" + part);
  }
}
