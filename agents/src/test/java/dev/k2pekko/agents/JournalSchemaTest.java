package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Three `k2 node`s started at once on a fresh PostgreSQL database each find no journal tables and create them: the
 * partition test's nodes did, and one of them failed (`relation "event_journal_ordering_idx" already exists`, reported
 * as an unreachable database, exit 4). Creating the schema is serialized by an advisory lock: one node creates it, the
 * others find it.
 */
class JournalSchemaTest {
  @Test void nodesStartingAtOnceOnAFreshDatabaseCreateTheSchemaOnce() throws Exception {
    try (var database = PostgresTestDatabase.create("k2schema")) {
      var config = TestNodes.postgres(database.url(), Map.of());
      int nodes = 4;
      var start = new CyclicBarrier(nodes);
      var results = new ArrayList<CompletableFuture<String>>();
      for (int i = 0; i < nodes; i++) {
        results.add(CompletableFuture.supplyAsync(() -> {
          try {
            start.await(30, TimeUnit.SECONDS);
          } catch (Exception e) {
            throw new IllegalStateException(e);
          }
          return JournalSchema.ensure(config);
        }, r -> Thread.ofPlatform().start(r)));
      }
      int created = 0;
      for (var r : results) {
        var what = r.get(60, TimeUnit.SECONDS); // a failure here is the race
        if (what.startsWith("journal schema created")) created++;
      }
      assertEquals(1, created, "one node created the schema, the others found it");
    }
  }
}
