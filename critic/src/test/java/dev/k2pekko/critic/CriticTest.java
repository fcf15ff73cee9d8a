package dev.k2pekko.critic;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.protocol.Trajectory;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.pattern.StatusReply;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** The Critic actor's protocol, with every message serialized as it would cross nodes (serialize-messages on). */
class CriticTest {
  static final ActorTestKit KIT = ActorTestKit.create(ConfigFactory.parseString("""
      pekko.actor.provider = local
      pekko.actor.serialize-messages = on
      k2.critic { buckets = 4096, hidden = 16, epochs = 6 }
      """).withFallback(ConfigFactory.load()));
  static final Duration WAIT = Duration.ofSeconds(60);

  @AfterAll static void stop() {
    KIT.shutdownTestKit();
  }

  /** Teacher episodes renamed into a stage: trajectory ids {@code <stage>/...}. */
  static List<Trajectory> stage(String stage, List<Trajectory> ts) {
    return ts.stream().map(t -> new Trajectory(stage + "/" + t.trajectoryId(), t.taskId(), t.category(), t.difficulty(), t.seed(), t.system(),
        t.prompt(), t.tools(), t.steps(), t.finalAnswer(), t.verdict(), t.policy())).toList();
  }

  @Test void observesTrainsScoresAndRefusesToEvaluateOnWhatItTrainedOn() {
    var tap = new AtomicReference<ActorRef<Trajectory>>();
    var critic = KIT.spawn(Critic.create(Critic.Settings.fromConfig(KIT.system().settings().config()), tap::set));
    var version = KIT.<Critic.Version>createTestProbe();
    critic.tell(new Critic.GetVersion(version.ref()));
    assertEquals(0, version.receiveMessage(WAIT).version());
    assertNotNull(tap.get(), "the critic subscribed to the judge's tap");

    var synth = stage("r-synth", Teacher.episodes(800, 1, TaskGenerator.Split.TRAIN, 1.0));
    var eval = stage("r-eval-sft", Teacher.episodes(300, 900_000, TaskGenerator.Split.HELD_OUT, 3.0));
    var rl = stage("r-rl1", Teacher.episodes(200, 50_000, TaskGenerator.Split.TRAIN, 2.0));
    synth.forEach(tap.get()::tell);
    eval.forEach(tap.get()::tell);

    var trained = KIT.<StatusReply<Critic.Trained>>createTestProbe();
    critic.tell(new Critic.Retrain(List.of("r-synth"), List.of("r-eval-sft"), trained.ref()));
    var t1 = trained.receiveMessage(WAIT).getValue();
    assertEquals(1, t1.version());
    assertEquals(800, t1.examples());
    assertEquals(300, t1.evaluation().episodes());
    assertTrue(t1.evaluation().auc() >= 0.9, "AUC on held-out episodes after the first training: " + t1.evaluation().auc());

    // scores: one and many, at the new version, without reading the verdict
    var scored = KIT.<Critic.Scored>createTestProbe();
    var good = eval.stream().filter(t -> t.verdict().accepted()).findFirst().orElseThrow();
    critic.tell(new Critic.Score(good, scored.ref()));
    var s = scored.receiveMessage(WAIT);
    assertEquals(good.trajectoryId(), s.trajectoryId());
    assertEquals(1, s.version());
    assertTrue(s.accept() >= 0 && s.accept() <= 1);
    var all = KIT.<Critic.ScoredAll>createTestProbe();
    critic.tell(new Critic.ScoreAll(List.copyOf(eval.subList(0, 5)), all.ref()));
    var sa = all.receiveMessage(WAIT);
    assertEquals(5, sa.accept().length);
    var weights = KIT.<Critic.Weights>createTestProbe();
    critic.tell(new Critic.GetWeights(weights.ref()));
    assertEquals(sa.accept()[0], weights.receiveMessage(WAIT).score(eval.getFirst()), 1e-12, "local weights score as the actor does");

    // a retraining after a round: the round's rollouts plus as many replayed; the version moves on
    rl.forEach(tap.get()::tell);
    critic.tell(new Critic.Retrain(List.of("r-rl1"), List.of("r-eval-sft"), trained.ref()));
    var t2 = trained.receiveMessage(WAIT).getValue();
    assertEquals(2, t2.version());
    assertEquals(400, t2.examples(), "200 fresh rollouts and 200 replayed");
    assertFalse(Double.isNaN(t2.evaluation().auc()));
    // a training without a measurement: no evaluation travels back
    critic.tell(new Critic.Retrain(List.of("r-rl1"), List.of(), trained.ref()));
    var t3 = trained.receiveMessage(WAIT).getValue();
    assertEquals(3, t3.version());
    assertEquals(null, t3.evaluation());

    // never measured on what it trained on; nothing to train on is an error, not a silent version
    critic.tell(new Critic.Retrain(List.of("r-eval-sft"), List.of("r-synth"), trained.ref()));
    assertTrue(trained.receiveMessage(WAIT).isError());
    critic.tell(new Critic.Retrain(List.of("r-rl9"), List.of(), trained.ref()));
    var none = trained.receiveMessage(WAIT);
    assertTrue(none.isError() && none.getError().getMessage().contains("no episode"), none.toString());
    var evaluated = KIT.<StatusReply<Critic.Evaluation>>createTestProbe();
    critic.tell(new Critic.Evaluate(List.of("r-synth"), evaluated.ref()));
    assertTrue(evaluated.receiveMessage(WAIT).isError());
    critic.tell(new Critic.Evaluate(List.of("r-eval-sft"), evaluated.ref()));
    assertEquals(3, evaluated.receiveMessage(WAIT).getValue().version());
    critic.tell(new Critic.GetVersion(version.ref()));
    var v = version.receiveMessage(WAIT);
    assertEquals(3, v.version());
    assertEquals(1300, v.examplesHeld());
    assertEquals(200, v.perStage().get("r-rl1"));

    // a stage handed over from the journal replaces what the tap gave for it; another stage's episodes are not taken
    var kept = KIT.<Integer>createTestProbe();
    var fromJournal = new java.util.ArrayList<>(rl.subList(0, 150));
    fromJournal.add(synth.getFirst());
    critic.tell(new Critic.Replace("r-rl1", fromJournal, kept.ref()));
    assertEquals(150, kept.receiveMessage(WAIT));
    critic.tell(new Critic.GetVersion(version.ref()));
    var after = version.receiveMessage(WAIT);
    assertEquals(1250, after.examplesHeld());
    assertEquals(150, after.perStage().get("r-rl1"));
    assertEquals(800, after.perStage().get("r-synth"));

    // found through the receptionist, as a learner on any node would find it
    var listing = KIT.<Receptionist.Listing>createTestProbe();
    KIT.system().receptionist().tell(Receptionist.find(Critic.KEY, listing.ref()));
    assertTrue(listing.receiveMessage(WAIT).getServiceInstances(Critic.KEY).contains(critic));
  }

  /** As {@link #stage}, every episode made an open task's (category {@code open}): its verdict is the hidden rubric. */
  static List<Trajectory> open(String stage, List<Trajectory> ts) {
    return ts.stream().map(t -> new Trajectory(stage + "/o-" + t.trajectoryId(), t.taskId(), Critic.OPEN_CATEGORY, t.difficulty(), t.seed(),
        t.system(), t.prompt(), t.tools(), t.steps(), t.finalAnswer(), t.verdict(), t.policy())).toList();
  }

  @Test void openTasksEpisodesAreKeptApartMeasuredButNeverTrainedOn() {
    var tap = new AtomicReference<ActorRef<Trajectory>>();
    var critic = KIT.spawn(Critic.create(Critic.Settings.fromConfig(KIT.system().settings().config()), tap::set));
    var synth = stage("o-synth", Teacher.episodes(300, 3, TaskGenerator.Split.TRAIN, 1.0));
    var openSynth = open("o-synth", Teacher.episodes(120, 70_000, TaskGenerator.Split.TRAIN, 2.0));
    var round = stage("o-rl1", Teacher.episodes(80, 80_000, TaskGenerator.Split.TRAIN, 2.0));
    var openRound = open("o-rl1", Teacher.episodes(40, 90_000, TaskGenerator.Split.TRAIN, 2.0));
    synth.forEach(tap.get()::tell);
    openSynth.forEach(tap.get()::tell);
    var version = KIT.<Critic.Version>createTestProbe();
    critic.tell(new Critic.GetVersion(version.ref()));
    var v = version.receiveMessage(WAIT);
    assertEquals(300, v.perStage().get("o-synth"));
    assertEquals(120, v.perStage().get(Critic.openStage("o-synth")));

    // training on the stage takes its verifiable episodes only
    var trained = KIT.<StatusReply<Critic.Trained>>createTestProbe();
    critic.tell(new Critic.Retrain(List.of("o-synth"), List.of(), trained.ref()));
    assertEquals(300, trained.receiveMessage(WAIT).getValue().examples());
    // the open part is refused as training data, by name
    critic.tell(new Critic.Retrain(List.of(Critic.openStage("o-synth")), List.of(), trained.ref()));
    var refused = trained.receiveMessage(WAIT);
    assertTrue(refused.isError() && refused.getError().getMessage().contains("never trained on"), refused.toString());
    // but measured: the hacking watch of open tasks (mean score against the hidden rubric's acceptance)
    var evaluated = KIT.<StatusReply<Critic.Evaluation>>createTestProbe();
    critic.tell(new Critic.Evaluate(List.of(Critic.openStage("o-synth")), evaluated.ref()));
    var ev = evaluated.receiveMessage(WAIT).getValue();
    assertEquals(120, ev.episodes());
    assertEquals(openSynth.stream().filter(t -> t.verdict().accepted()).count(), ev.accepted());
    assertTrue(ev.meanScore() >= 0 && ev.meanScore() <= 1, ev.toString());

    // a round handed over from the journal (both kinds mixed): each goes to its part; retraining sees the verifiable only
    var kept = KIT.<Integer>createTestProbe();
    var fromJournal = new java.util.ArrayList<Trajectory>();
    for (int i = 0; i < 40; i++) {
      fromJournal.add(round.get(2 * i));
      fromJournal.add(round.get(2 * i + 1));
      fromJournal.add(openRound.get(i));
    }
    critic.tell(new Critic.Replace("o-rl1", fromJournal, kept.ref()));
    assertEquals(120, kept.receiveMessage(WAIT));
    critic.tell(new Critic.GetVersion(version.ref()));
    v = version.receiveMessage(WAIT);
    assertEquals(80, v.perStage().get("o-rl1"));
    assertEquals(40, v.perStage().get(Critic.openStage("o-rl1")));
    critic.tell(new Critic.Retrain(List.of("o-rl1"), List.of(), trained.ref()));
    assertEquals(160, trained.receiveMessage(WAIT).getValue().examples(), "80 fresh verifiable rollouts and 80 replayed from the synthesis's");
    // handed over again: the open part is replaced too, not doubled
    critic.tell(new Critic.Replace("o-rl1", fromJournal, kept.ref()));
    assertEquals(120, kept.receiveMessage(WAIT));
    critic.tell(new Critic.GetVersion(version.ref()));
    assertEquals(40, version.receiveMessage(WAIT).perStage().get(Critic.openStage("o-rl1")));
  }
}
