package dev.k2pekko.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.k2pekko.ops.ReferenceOps;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class DecoderTest {
  private final ModelConfig cfg = new ModelConfig(40, 16, 2, 4, 24, 4, 1e-5);
  private final PolicyModel model = new PolicyModel(cfg, new ReferenceOps(), 11);

  @Test void incrementalLogitsEqualTheFullForwardAtEveryPosition() {
    var rnd = new Random(3);
    int[] ids = new int[20];
    for (int i = 0; i < ids.length; i++) ids[i] = rnd.nextInt(cfg.vocab());
    var full = model.forward(ids, 1, ids.length).logits().toDoubles();
    var session = new Decoder(model).session();
    for (int t = 0; t < ids.length; t++) {
      double[] got = session.feed(ids[t]);
      double[] want = Arrays.copyOfRange(full, t * cfg.vocab(), (t + 1) * cfg.vocab());
      assertArrayEquals(want, got, 1e-9, "position " + t);
    }
    assertEquals(20, session.length());
  }

  @Test void feedingPiecesEqualsFeedingAllAtOnce() {
    var d = new Decoder(model);
    var a = d.session();
    a.feed(new int[] {1, 2, 3});
    double[] x = a.feed(new int[] {4, 5});
    double[] y = d.session().feed(new int[] {1, 2, 3, 4, 5});
    assertArrayEquals(y, x, 0.0);
  }

  @Test void aFullContextAndBadTokensAreErrors() {
    var s = new Decoder(model).session();
    for (int i = 0; i < cfg.context(); i++) s.feed(1);
    assertThrows(IllegalStateException.class, () -> s.feed(1));
    assertThrows(IllegalArgumentException.class, () -> new Decoder(model).session().feed(cfg.vocab()));
  }

  @Test void snapshotsVerifyAndRefuseDamage() {
    var snap = WeightsSnapshot.of(7, model);
    snap.verify();
    var back = snap.toModel(new ReferenceOps());
    assertArrayEquals(WeightsSnapshot.toFloats(model.parameter("layer1.wq")), WeightsSnapshot.toFloats(back.parameter("layer1.wq")));
    float[] damaged = snap.data().get(3).clone();
    damaged[5] += 1e-3f;
    var data = new java.util.ArrayList<>(snap.data());
    data.set(3, damaged);
    var bad = new WeightsSnapshot(7, cfg, snap.names(), data, snap.sha256());
    var e = assertThrows(WeightsSnapshot.CorruptWeightsException.class, bad::verify);
    assertEquals(true, e.getMessage().contains("checksum"));
    var relabelled = new WeightsSnapshot(8, cfg, snap.names(), snap.data(), snap.sha256());
    assertThrows(WeightsSnapshot.CorruptWeightsException.class, relabelled::verify);
    var shortList = WeightsSnapshot.of(7, cfg, List.of("tok_emb"), List.of(snap.data().get(0)));
    assertThrows(WeightsSnapshot.CorruptWeightsException.class, shortList::verify);
  }
}
