package dev.k2pekko.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.k2pekko.model.ModelConfig;
import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.protocol.PsProtocol;
import org.junit.jupiter.api.Test;

/** What a learner makes of a published version: the parameter server's snapshot again, or a refusal. */
class PublishedWeightsTest {
  static final ModelConfig CFG = new ModelConfig(12, 8, 1, 2, 6, 2, 1e-5);

  static PsProtocol.Weights wire(WeightsSnapshot s, PsProtocol.Weights.Shape shape) {
    return new PsProtocol.Weights(s.version(), shape, s.names(), s.data(), s.sha256());
  }

  static PsProtocol.Weights.Shape shape(int heads) {
    return new PsProtocol.Weights.Shape(CFG.vocab(), CFG.dModel(), CFG.layers(), heads, CFG.context(), CFG.mlpRatio(), CFG.normEps());
  }

  @Test void aPublishedVersionIsTheSnapshotItWasMadeFrom() {
    var sent = WeightsSnapshot.of(3, new PolicyModel(CFG, new ReferenceOps(), 5));
    var got = Learner.snapshot(wire(sent, shape(CFG.heads()))).verify();
    assertEquals(3, got.version());
    assertEquals(CFG, got.config());
    assertEquals(sent.names(), got.names());
    assertEquals(sent.sha256(), got.sha256());
    for (int i = 0; i < sent.data().size(); i++) assertArrayEquals(sent.data().get(i), got.data().get(i), sent.names().get(i));
  }

  @Test void aShapeNoModelCanHaveOrAnotherShapeIsRefused() {
    var sent = WeightsSnapshot.of(3, new PolicyModel(CFG, new ReferenceOps(), 5));
    // dModel 8 over 3 heads: no model
    var e = assertThrows(WeightsSnapshot.CorruptWeightsException.class, () -> Learner.snapshot(wire(sent, shape(3))));
    assertTrue(e.getMessage().contains("version 3"), e.getMessage());
    // 4 heads is a model, but not the one the checksum was computed for
    var other = Learner.snapshot(wire(sent, shape(4)));
    assertThrows(WeightsSnapshot.CorruptWeightsException.class, other::verify);
  }
}
