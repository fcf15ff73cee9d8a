package dev.k2pekko.tools;

import dev.k2pekko.protocol.EndEpisode;
import dev.k2pekko.protocol.ToolCall;
import dev.k2pekko.protocol.ToolCommand;
import dev.k2pekko.protocol.ToolError;
import dev.k2pekko.protocol.ToolResult;
import dev.k2pekko.protocol.WorldSnapshot;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;

/**
 * Runs tool calls. Each episode is bound to one worker (by hash of its id, see {@link ToolDirectory}), which keeps
 * that episode's world state, so every call of an episode sees the effects of the ones before it. Bad calls get
 * a structured error result; nothing a caller sends can stop the worker.
 */
public final class ToolWorker extends AbstractBehavior<ToolCommand> {
  public record Settings(long knowledgeSeed, int maxPayloadBytes, Duration episodeIdleTimeout) {}

  private static final class Episode {
    final HashMap<String, String> world = new HashMap<>();
    long lastTouch;
  }

  private final ToolUniverse universe;
  private final Settings settings;
  private final HashMap<String, Episode> episodes = new HashMap<>();
  private long calls;
  private long lastSweepNanos = System.nanoTime();
  private long lastSweepMark = -1;

  public static Behavior<ToolCommand> create(ToolUniverse universe, Settings settings) {
    return Behaviors.setup(ctx -> new ToolWorker(ctx, universe, settings));
  }

  private ToolWorker(ActorContext<ToolCommand> ctx, ToolUniverse universe, Settings settings) {
    super(ctx);
    this.universe = universe;
    this.settings = settings;
  }

  @Override public Receive<ToolCommand> createReceive() {
    return newReceiveBuilder()
        .onMessage(ToolCall.class, call -> { call.replyTo().tell(run(call)); return this; })
        .onMessage(EndEpisode.class, this::onEnd)
        .build();
  }

  private Behavior<ToolCommand> onEnd(EndEpisode end) {
    var ep = episodes.remove(end.episodeId());
    end.replyTo().tell(new WorldSnapshot(end.episodeId(), ep == null ? Map.of() : ep.world));
    return this;
  }

  /**
   * What a call's noise follows: the episode id without its run id ({@code run/agent-3/0} -> {@code agent-3/0}), so
   * two runs of one seed meet the same failures (run ids hold the start time) and a redone episode the same ones.
   */
  static String noiseKey(String episodeId) {
    return episodeId.substring(episodeId.indexOf('/') + 1);
  }

  ToolResult run(ToolCall call) {
    if ((++calls & 0xFFF) == 0) maybeSweep();
    var spec = universe.get(call.tool());
    if (spec == null) return ToolResult.failed(call.callId(), ToolError.UNKNOWN_TOOL, "unknown tool '" + call.tool() + "'");
    if (ArgumentValidator.payloadBytes(call.arguments()) > settings.maxPayloadBytes()) {
      return ToolResult.failed(call.callId(), ToolError.PAYLOAD_TOO_LARGE,
          "arguments exceed " + settings.maxPayloadBytes() + " bytes");
    }
    var invalid = ArgumentValidator.validate(spec, call.arguments());
    if (invalid != null) return ToolResult.failed(call.callId(), ToolError.INVALID_ARGUMENTS, invalid);
    var noise = spec.stochasticity();
    var noiseKey = noiseKey(call.episodeId());
    if (noise.failureRate() > 0 && KnowledgeTable.uniform(settings.knowledgeSeed(), noiseKey, call.callId()) < noise.failureRate()) {
      return ToolResult.failed(call.callId(), ToolError.TRANSIENT_FAILURE, spec.name() + " is temporarily unavailable, retry");
    }
    var ep = episodes.get(call.episodeId());
    if (ep == null) episodes.put(call.episodeId(), ep = new Episode());
    ep.lastTouch = calls;
    try {
      var result = Simulator.apply(ep.world, spec, call.arguments(), settings.knowledgeSeed());
      if (noise.partialRate() > 0 && KnowledgeTable.uniform(settings.knowledgeSeed() + 1, noiseKey, call.callId()) < noise.partialRate()) {
        return ToolResult.partial(call.callId(), result.substring(0, result.length() / 2) + "…");
      }
      return ToolResult.ok(call.callId(), result);
    } catch (RuntimeException e) {
      getContext().getLog().warn("tool {} failed on {}: {}", spec.name(), call.arguments(), e.toString());
      return ToolResult.failed(call.callId(), ToolError.INTERNAL, spec.name() + " failed: " + e.getMessage());
    }
  }

  /**
   * Forget episodes whose agent went away without ending them: no call for one idle timeout. Checked every
   * 4096 calls, so an idle worker does no work (and, idle, gains no new episodes either).
   */
  private void maybeSweep() {
    long now = System.nanoTime();
    if (now - lastSweepNanos < settings.episodeIdleTimeout().toNanos()) return;
    long mark = lastSweepMark;
    episodes.values().removeIf(ep -> ep.lastTouch <= mark);
    lastSweepMark = calls;
    lastSweepNanos = now;
  }
}
