package dev.k2pekko.ps.server;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.protocol.PsProtocol.Pushed;
import dev.k2pekko.protocol.PsProtocol.RescaleQK;
import dev.k2pekko.ps.server.PsGroup.GroupApplied;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The state of the step {@link TwoPhaseStep} runs: its contributors, the clip decision and the groups' answers so far. */
final class StepInFlight {
  final long version;
  final List<Pushed> contributors;
  /** The clip decision's rescales, once {@code clipDone}. */
  ArrayList<RescaleQK> rescales;
  boolean clipDone;
  /** Every group prepared: phase two is under way. */
  boolean applied;
  /** When the first prepare went out (System.nanoTime), 0 before. */
  long prepareStarted;
  final Map<String, GroupApplied> replies = new HashMap<>();
  final Map<String, PsGroup.Prepared> prepared = new HashMap<>();

  StepInFlight(long version, List<Pushed> contributors) {
    this.version = version;
    this.contributors = contributors;
  }

  /** The same step with fewer contributors; what the clip decided and when the prepare began carry over. */
  StepInFlight without(List<Pushed> keep) {
    var next = new StepInFlight(version, keep);
    next.rescales = rescales;
    next.clipDone = clipDone;
    next.prepareStarted = prepareStarted;
    return next;
  }

  ArrayList<String> learnerIds() {
    var out = new ArrayList<String>();
    for (var p : contributors) out.add(p.learnerId());
    return out;
  }

  ArrayList<Long> gradientVersions() {
    var out = new ArrayList<Long>();
    for (var p : contributors) out.add(p.version());
    return out;
  }

  /** Every group's new weights, in the model's spec order, as version {@code next}. */
  WeightsSnapshot snapshot(long next, ModelConfig model) {
    var all = new HashMap<String, float[]>();
    for (var r : replies.values()) all.putAll(r.weights());
    var names = new ArrayList<String>();
    var data = new ArrayList<float[]>();
    for (var spec : PolicyModel.specsOf(model)) {
      names.add(spec.name());
      data.add(all.get(spec.name()));
    }
    return WeightsSnapshot.of(next, model, names, data);
  }

  String describe() {
    return version + (clipDone ? " clip done" : " waiting for clip") + (applied ? " applied" : "");
  }
}
