package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.k2pekko.protocol.CallsRefused;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.Done;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The audit trail keeps every refusal of a burst: 20,000 arrive while its first batch is being written (an
 * event-sourced actor taking them itself stashed them then, and its stash of 4,096 dropped the rest at 1.5 million
 * tool calls a second), and all 20,000 are in the journal after a flush.
 */
class FirewallAuditTest {
  @Test void aBurstOfRefusalsIsWrittenWhole(@TempDir Path dir) throws Exception {
    var config = TestNodes.h2(dir, Map.of());
    JournalSchema.ensure(config);
    var kit = ActorTestKit.create("k2", config);
    try {
      var audit = kit.spawn(FirewallAudit.create("test-node"));
      int n = 20_000;
      for (int i = 0; i < n; i++) {
        audit.tell(new FirewallAudit.Record(new CallsRefused.Refusal("run/agent-" + (i % 100) + "/" + i, "agent-" + (i % 100), "c" + i, "calc.max",
            "RATE_LIMITED", "per-agent limit", i)));
      }
      var flushed = kit.<Done>createTestProbe();
      audit.tell(new FirewallAudit.Flush(flushed.ref()));
      flushed.expectMessage(Duration.ofSeconds(60), Done.getInstance());
      var ids = new HashSet<String>();
      FirewallAudit.replay(kit.system()).runForeach(r -> ids.add(r.callId()), kit.system()).toCompletableFuture().get(60, TimeUnit.SECONDS);
      assertEquals(n, ids.size(), "refusals in the journal");
    } finally {
      kit.shutdownTestKit();
    }
  }
}
