package dev.k2pekko.ps.server;

import dev.k2pekko.model.PolicyModel;
import dev.k2pekko.model.WeightsSnapshot;
import dev.k2pekko.ops.ReferenceOps;
import dev.k2pekko.ops.Tensor;
import dev.k2pekko.protocol.PsProtocol.TagOffset;
import dev.k2pekko.ps.checkpoint.Checkpoints;
import dev.k2pekko.ps.server.PsGroup.GroupState;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The parameter server's checkpoint: every group's weights and optimizer state (safetensors, {@link Checkpoints}) with
 * the version, the durable journal offsets, the optimizer step count and the coordinator's counters in its metadata;
 * written by the coordinator every {@code checkpoint-every} versions and at the end of a stage, restored when it starts.
 */
final class CoordinatorCheckpoint {
  private CoordinatorCheckpoint() {}

  /** What a restored checkpoint gives back (weights and optimizer state by name, as fp32 values). */
  record Restored(long version, Map<String, float[]> weights, Map<String, float[]> optimizerState, Map<String, TagOffset> offsets,
                  long steps, Map<String, Long> counters, String describe) {}

  /** The newest good checkpoint of a run, if any. */
  static Optional<Restored> latest(Path runDir) throws IOException {
    var ck = Checkpoints.loadLatest(runDir, new ReferenceOps());
    if (ck.isEmpty()) return Optional.empty();
    var c = ck.get();
    var weights = new HashMap<String, float[]>();
    var opt = new HashMap<String, float[]>();
    c.weights().forEach((k, v) -> weights.put(k, WeightsSnapshot.toFloats(v)));
    c.optimizerState().forEach((k, v) -> opt.put(k, WeightsSnapshot.toFloats(v)));
    var extra = c.metadata().info().extra();
    var offsets = new TreeMap<String, TagOffset>();
    if (extra.get("offsets") instanceof Map<?, ?> m) {
      m.forEach((tag, o) -> {
        var parts = String.valueOf(o).split(":"); // "eventOffset:consumedInEvent", as write stores it
        offsets.put(String.valueOf(tag), new TagOffset(Long.parseLong(parts[0]), Integer.parseInt(parts[1])));
      });
    }
    long steps = extra.get("steps") instanceof Number n ? n.longValue() : 0;
    var counters = new TreeMap<String, Long>();
    if (extra.get("counters") instanceof Map<?, ?> m) m.forEach((k, v) -> counters.put(String.valueOf(k), ((Number) v).longValue()));
    return Optional.of(new Restored(c.version(), weights, opt, offsets, steps, counters, String.valueOf(c.metadata().json())));
  }

  /** Writes version {@code version} from the groups' exported state. */
  static void write(Path runDir, PsSettings s, long version, Collection<GroupState> groups, Map<String, TagOffset> offsets,
                    Map<String, Long> counters) throws IOException {
    var ops = new ReferenceOps();
    var weights = new LinkedHashMap<String, Tensor>();
    var opt = new LinkedHashMap<String, Tensor>();
    long steps = 0;
    for (var g : groups) {
      steps = Math.max(steps, g.steps());
      g.weights().forEach((k, v) -> weights.put(k, tensor(s, ops, k, v)));
      g.optimizer().forEach((k, v) -> opt.put(k, tensor(s, ops, k.substring(0, k.lastIndexOf('/')), v)));
    }
    var offs = new TreeMap<String, Object>();
    offsets.forEach((k, o) -> offs.put(k, o.eventOffset() + ":" + o.consumedInEvent()));
    var cfg = s.model();
    var modelMap = Map.<String, Object>of("vocab", cfg.vocab(), "d_model", cfg.dModel(), "layers", cfg.layers(), "heads", cfg.heads(),
        "context", cfg.context(), "mlp_ratio", cfg.mlpRatio(), "norm_eps", cfg.normEps());
    var o = s.optimizer();
    var hyper = Map.<String, Object>of("lr_sft", s.lrSft(), "lr_rl", s.lrRl(), "weight_decay", o.weightDecay(), "momentum", o.momentum(),
        "beta1", o.beta1(), "beta2", o.beta2(), "qk_clip", o.clip(), "tau", o.tau(), "alpha", o.alpha());
    var extra = Map.<String, Object>of("offsets", offs, "steps", steps, "run_id", s.runId(), "counters", new TreeMap<>(counters));
    Checkpoints.write(runDir, version, weights, opt, new Checkpoints.Info(modelMap, "MuonClip", hyper, extra));
  }

  private static Tensor tensor(PsSettings s, ReferenceOps ops, String name, float[] f) {
    var spec = PolicyModel.specsOf(s.model()).stream().filter(x -> x.name().equals(name)).findFirst()
        .orElseThrow(() -> new IllegalStateException("unknown parameter " + name));
    double[] d = new double[f.length];
    for (int i = 0; i < f.length; i++) d[i] = f[i];
    return ops.tensor(spec.rows(), spec.cols(), d);
  }
}
