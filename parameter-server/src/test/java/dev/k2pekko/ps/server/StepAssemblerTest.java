package dev.k2pekko.ps.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.PsProtocol.LearnerAt;
import dev.k2pekko.protocol.PsProtocol.Pushed;
import dev.k2pekko.protocol.PsProtocol.StageKind;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Which pushes make a step, without actors. */
class StepAssemblerTest {
  static Pushed push(long version, String learner) {
    return new Pushed(version, learner, new ArrayList<>(List.of(learner + "/t")), new HashMap<>(), 1.0, 10, StageKind.SFT, Double.NaN, null);
  }

  static List<String> learners(List<Pushed> ps) {
    return ps.stream().map(Pushed::learnerId).sorted().toList();
  }

  @Test void synchronousAdmitsOnlyTheCurrentVersionAndNotTheStepUnderWay() {
    var a = new StepAssembler(PsSettings.Mode.SYNC, 2);
    assertEquals(StepAssembler.Admission.ADMITTED, a.admit(5, -1, 5));
    assertEquals(StepAssembler.Admission.STALE, a.admit(5, -1, 4));
    assertEquals(StepAssembler.Admission.STALE, a.admit(5, -1, 6), "from the future");
    assertEquals(StepAssembler.Admission.STALE, a.admit(5, 5, 5), "too late for the step under way");
  }

  @Test void asynchronousAdmitsWithinTheStalenessBound() {
    var a = new StepAssembler(PsSettings.Mode.ASYNC, 2);
    assertEquals(StepAssembler.Admission.ADMITTED, a.admit(5, 5, 5));
    assertEquals(StepAssembler.Admission.ADMITTED, a.admit(5, -1, 3));
    assertEquals(StepAssembler.Admission.STALE, a.admit(5, -1, 2));
  }

  @Test void aSynchronousStepWaitsForEveryLearnerThenTheTimeout() {
    var a = new StepAssembler(PsSettings.Mode.SYNC, 0);
    var all = Set.of("a", "b", "c");
    assertTrue(a.add(push(3, "a")), "the first pending push starts the sync timeout");
    assertFalse(a.add(push(3, "b")));
    assertNull(a.take(3, all, false), "c has neither pushed nor passed");
    a.pass("c", 0);
    var ready = a.take(3, all, false);
    assertEquals(List.of("a", "b"), learners(ready.good()));
    assertFalse(ready.timedOutWithoutAll());
    assertFalse(a.anyPending());

    a.add(push(4, "a"));
    a.stepApplied();
    assertNull(a.take(4, all, false), "b and c have neither pushed nor passed at version 4");
    a.pass("b", 0);
    a.pass("c", 0);
    assertEquals(List.of("a"), learners(a.take(4, all, false).good()));
  }

  static Pushed push(long version, String learner, long sealed) {
    return new Pushed(version, learner, new ArrayList<>(List.of(learner + "/t")), new HashMap<>(), 1.0, 10, StageKind.SFT, Double.NaN, null, sealed);
  }

  @Test void aPassBeforeTheLatestSealedPartDoesNotCountAndContributorsComeByLearnerId() {
    var a = new StepAssembler(PsSettings.Mode.SYNC, 0);
    var all = Set.of("a", "b", "c");
    a.pass("b", 1);
    a.pass("c", 1);
    assertNull(a.take(7, all, false), "passes alone make no step");
    a.add(push(7, "c", 2)); // c read part 2's seal and pushes
    assertNull(a.take(7, all, false), "a has done nothing, b passed before it read part 2's seal: it may hold some of it");
    a.add(push(7, "a", 2));
    assertNull(a.take(7, all, false));
    a.pass("b", 2);
    var ready = a.take(7, all, false);
    assertEquals(List.of("a", "c"), ready.good().stream().map(Pushed::learnerId).toList(), "the groups sum in learner order");
    assertFalse(ready.timedOutWithoutAll());
  }

  @Test void aStepWaitsForTheExpectedLearnersToRegisterUpToTheTimeout() {
    var a = new StepAssembler(PsSettings.Mode.SYNC, 0, 2);
    a.add(push(40, "a"));
    assertNull(a.take(40, Set.of("a"), false), "b has not registered yet: a resumed run must not start with a alone");
    assertEquals(List.of("a"), learners(a.take(40, Set.of("a"), true).good()), "the sync timeout: what is there");
    a.add(push(41, "a"));
    a.pass("b", 0);
    assertEquals(List.of("a"), learners(a.take(41, Set.of("a", "b"), false).good()));
  }

  @Test void theTimeoutTakesWhatIsThereAndRejectedPushesSplitOff() {
    var a = new StepAssembler(PsSettings.Mode.SYNC, 0);
    var all = Set.of("a", "b", "c");
    a.add(push(0, "a"));
    a.add(push(0, "b"));
    a.reject(new LearnerAt("b", 0));
    assertNull(a.take(0, all, false));
    var ready = a.take(0, all, true);
    assertTrue(ready.timedOutWithoutAll());
    assertEquals(List.of("a"), learners(ready.good()));
    assertEquals(List.of("b"), learners(ready.rejected()));
    assertNull(a.take(0, all, true), "nothing pending: no step, even at the timeout");
  }

  @Test void aDroppedLearnerIsNotWaitedForAndItsPushesAreGone() {
    var a = new StepAssembler(PsSettings.Mode.ASYNC, 1);
    a.add(push(2, "a"));
    a.add(push(1, "b"));
    a.drop("b");
    var ready = a.take(2, Set.of("a"), false);
    assertEquals(List.of("a"), learners(ready.good()));
  }
}
