package dev.k2pekko.model;

import static org.junit.jupiter.api.Assertions.*;

import dev.k2pekko.ops.Nd4jOps;
import dev.k2pekko.ops.ReferenceOps;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The policy on ND4J fp32 against the fp64 reference: loss within 1e-5 relative, gradients within 1e-4 norm-wise. */
class Nd4jPolicyTest {
  @Test
  void sameLossAndGradients() {
    var cfg = new ModelConfig(17, 16, 2, 4, 12, 2, 1e-5);
    var ref = new PolicyModel(cfg, ReferenceOps.INSTANCE, 21);
    var nd = new PolicyModel(cfg, new Nd4jOps(), ref.parameters());
    TokenBatch b = PolicyGradientTest.batch(new Random(3), 3, 12, cfg.vocab());
    var r = Losses.nextToken(ref, b);
    var x = Losses.nextToken(nd, b);
    assertEquals(r.loss(), x.loss(), 1e-5 * r.loss());
    for (int l = 0; l < cfg.layers(); l++) assertArrayEquals(r.maxLogit()[l], x.maxLogit()[l], 1e-4);
    for (String name : r.grads().keySet()) {
      double[] a = r.grads().get(name).toDoubles(), c = x.grads().get(name).toDoubles();
      double d = 0, n = 0;
      for (int i = 0; i < a.length; i++) {
        d += (a[i] - c[i]) * (a[i] - c[i]);
        n += a[i] * a[i];
      }
      assertTrue(Math.sqrt(d / n) < 1e-4, name + ": " + Math.sqrt(d / n));
    }
  }
}
