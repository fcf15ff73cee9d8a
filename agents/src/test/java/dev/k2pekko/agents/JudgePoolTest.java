package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.Map;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The node's judges: {@code k2.judge.count}, agents spread over them, their backlogs summed for the backpressure,
 * and agents that wait on it woken as soon as it falls below the limit.
 */
class JudgePoolTest {
  @Test void judgeCountIsANumberOrAuto() {
    assertEquals(3, NodeServices.judgeCount(ConfigFactory.parseString("judge.count = 3")));
    assertEquals(Math.max(1, Runtime.getRuntime().availableProcessors() / 2), NodeServices.judgeCount(ConfigFactory.parseString("judge.count = auto")));
    var zero = assertThrows(IllegalArgumentException.class, () -> NodeServices.judgeCount(ConfigFactory.parseString("judge.count = 0")));
    assertTrue(zero.getMessage().contains("k2.judge.count"), zero.getMessage());
    var word = assertThrows(IllegalArgumentException.class, () -> NodeServices.judgeCount(ConfigFactory.parseString("judge.count = many")));
    assertTrue(word.getMessage().contains("'many'"), word.getMessage());
  }

  @Test void agentsSpreadOverTheJudges(@TempDir Path dir) {
    var kit = ActorTestKit.create("k2", TestNodes.h2(dir, Map.of("k2.judge.count", 3)));
    try {
      var services = NodeServices.get(kit.system());
      assertThrows(IllegalStateException.class, () -> services.judgeFor(0), "no judges started yet");
      services.startJudges(kit.system());
      var judges = new HashSet<>();
      for (int agent = 0; agent < 6; agent++) judges.add(services.judgeFor(agent));
      assertEquals(3, judges.size(), "six agents over three judges");
      assertEquals(services.judgeFor(1), services.judgeFor(4), "agent n goes to judge n mod 3");
      assertNotEquals(services.judgeFor(1), services.judgeFor(2));
    } finally {
      kit.shutdownTestKit();
    }
  }

  /** No judges run here, so the backlogs are only the ones the test sets (a judge would set its own at each flush). */
  @Test void waitersWakeWhenTheSummedBacklogFalls(@TempDir Path dir) {
    var kit = ActorTestKit.create("k2", TestNodes.h2(dir, Map.of("k2.judge.count", 3, "k2.judge.max-backlog", 10)));
    try {
      var services = NodeServices.get(kit.system());
      services.backlog(0, 4);
      services.backlog(2, 6);
      assertTrue(services.journalBehind(), "4 + 6 held by two judges reach the limit of 10");
      var agent = kit.<Object>createTestProbe();
      assertFalse(services.awaitCaughtUp(agent.ref()), "behind: the agent waits");
      services.backlog(2, 5);
      agent.expectMessage(Duration.ofSeconds(5), NodeServices.CaughtUp.INSTANCE);
      assertTrue(services.awaitCaughtUp(agent.ref()), "no longer behind: the agent need not wait");
      agent.expectNoMessage(Duration.ofMillis(100));
    } finally {
      kit.shutdownTestKit();
    }
  }
}
