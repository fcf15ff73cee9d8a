package dev.k2pekko.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.protocol.PartSealed;
import dev.k2pekko.protocol.PsProtocol;
import dev.k2pekko.protocol.PsProtocol.StageKind;
import dev.k2pekko.protocol.PsProtocol.TagOffset;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.Verdict;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** A learner's sealed SFT parts: the same batches whatever the arrival order, offsets that lose nothing, restarts. */
class SealedPartsTest {
  static final String A = "trajectories-0", B = "trajectories-2";
  static final Set<String> TAGS = Set.of(A, B);
  static final long SEAL_OFFSET = 90;

  /** The part's trajectories as the journal holds them: events (offset, tag) of one to three trajectories each. */
  static List<LearnerBuffer.Item> journal() {
    var out = new ArrayList<LearnerBuffer.Item>();
    int n = 0;
    long[] offsets = {10, 20, 30, 40, 50, 60, 70};
    for (int e = 0; e < offsets.length; e++) {
      String tag = e % 2 == 0 ? A : B;
      for (int i = 0; i < 1 + e % 3; i++) out.add(item(tag, offsets[e], i + 1, "run-synth/agent-" + (n++ * 7 % 13) + "/0"));
    }
    return out;
  }

  static LearnerBuffer.Item item(String tag, long offset, int index, String id) {
    var t = new Trajectory(id, "task", "core", 1, 1, "", "p", List.of(), List.of(), null, new Verdict(true, 1, 1, List.of()), "teacher", null);
    return new LearnerBuffer.Item(tag, offset, index, t, StageKind.SFT);
  }

  static void seal(SealedParts p) {
    for (var tag : TAGS) p.sealRead(tag, new PartSealed("run-synth", 1, 0), SEAL_OFFSET);
  }

  static List<List<String>> drain(SealedParts p, int batchSize, List<Map<String, TagOffset>> pushed) {
    var out = new ArrayList<List<String>>();
    for (LearnerBuffer.Batch b; (b = p.next(batchSize)) != null; ) {
      out.add(b.items().stream().map(i -> i.use().trajectoryId()).toList());
      pushed.add(p.offsets(b, Map.of(), t -> null));
      p.applied(b);
    }
    return out;
  }

  @Test void theSameBatchesWhateverOrderTheJournalDeliveredIn() {
    List<List<String>> first = null;
    for (long seed = 0; seed < 5; seed++) {
      var items = new ArrayList<>(journal());
      Collections.shuffle(items, new Random(seed));
      var p = new SealedParts("run", TAGS);
      for (var it : items) assertTrue(p.offer(it));
      assertNull(p.next(4), "nothing before the seal");
      p.sealRead(A, new PartSealed("run-synth", 1, 0), SEAL_OFFSET);
      assertNull(p.next(4), "sealed on one of its two tags only");
      p.sealRead(B, new PartSealed("run-synth", 1, 0), SEAL_OFFSET);
      var batches = drain(p, 4, new ArrayList<>());
      if (first == null) first = batches;
      assertEquals(first, batches);
      assertFalse(p.holding());
    }
    var ids = first.stream().flatMap(List::stream).toList();
    assertEquals(journal().size(), ids.size());
    assertEquals(ids.stream().sorted().toList(), ids, "sorted by trajectory id");
  }

  @Test void noTagMovesPastAHeldTrajectoryAndTheLastBatchMovesPastTheSeal() {
    var p = new SealedParts("run", TAGS);
    for (var it : journal()) p.offer(it);
    // a batch of the usual kind read up to (70, 1) in A while the part is held: A stops before its first held item
    var usual = p.offsets(new LearnerBuffer.Batch(List.of(), StageKind.RL), Map.of(A, new TagOffset(70, 1)), t -> null);
    assertEquals(new TagOffset(10, 0), usual.get(A));
    seal(p);
    var pushed = new ArrayList<Map<String, TagOffset>>();
    var batches = drain(p, 4, pushed);
    for (int i = 0; i < pushed.size() - 1; i++) {
      assertNull(pushed.get(i).get(A), "no real offset before the part is done");
      assertNull(pushed.get(i).get(B));
    }
    var last = pushed.getLast();
    assertEquals(new TagOffset(SEAL_OFFSET, 0), last.get(A));
    assertEquals(new TagOffset(SEAL_OFFSET, 0), last.get(B));
    assertEquals(new TagOffset(1, 0), last.get(PsProtocol.SEALED_KEY));
    long inA = journal().stream().filter(i -> i.tag().equals(A)).count();
    assertEquals(new TagOffset(inA, 1), last.get(SealedParts.key("run-synth", A)), "the count, and done");
    var restarted = new SealedParts("run", TAGS);
    restarted.restore(last);
    assertFalse(restarted.holding(), "a part done is not waited for");
    assertEquals(journal().size(), batches.stream().mapToInt(List::size).sum());
  }

  @Test void aLearnerThatStartsAgainSkipsWhatWasTrainedAndGoesOnWithTheSameBatches() {
    var whole = new SealedParts("run", TAGS);
    for (var it : journal()) whole.offer(it);
    seal(whole);
    var pushed = new ArrayList<Map<String, TagOffset>>();
    var all = drain(whole, 3, pushed);
    assertTrue(all.size() >= 4);
    // it stopped after its second push was applied: the offsets it starts from are that push's
    var durable = new HashMap<String, TagOffset>();
    for (int i = 0; i < 2; i++) pushed.get(i).forEach((k, v) -> durable.merge(k, v, TagOffset::later));
    var again = new SealedParts("run", TAGS);
    again.restore(durable);
    assertEquals(1, again.sealed());
    assertTrue(again.holding(), "a part trained partly is held before its stream delivers anything: no pass meanwhile");
    var items = new ArrayList<>(journal());
    Collections.reverse(items);
    for (var it : items) again.offer(it);
    seal(again);
    assertEquals(all.subList(2, all.size()), drain(again, 3, new ArrayList<>()));
  }

  @Test void aBatchPutBackComesAgainAndOtherDataGoesTheUsualWay() {
    var p = new SealedParts("run", TAGS);
    for (var it : journal()) p.offer(it);
    assertFalse(p.offer(item(A, 95, 1, "run-rl1/x#0")), "not a synthesis part");
    assertFalse(p.offer(item(A, 95, 1, "other-synth/agent-1/0")), "another run's part");
    seal(p);
    assertFalse(p.offer(item(A, 95, 1, "run-synth/agent-99/0")), "after its seal: trained as it comes");
    var b = p.next(2);
    p.putBack(b);
    assertEquals(b.items(), p.next(2).items());
    assertTrue(p.holding());
  }
}
