package dev.k2pekko.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ToolUniverseTest {
  static final ToolUniverse U = ToolUniverse.generate(7, new Stochasticity(0.02, 0.05, 0));

  @Test void twentyThousandDistinctToolsInAHierarchyDeterministicFromTheSeed() {
    assertTrue(U.size() >= 20_000, "size " + U.size());
    var names = new HashSet<String>();
    var categories = new HashSet<String>();
    for (var t : U.all()) {
      assertTrue(names.add(t.name()), "duplicate " + t.name());
      categories.add(t.category());
      assertTrue(Simulator.supports(t.kind(), t.op()), t.name());
      var fn = U.get(t.name()).toOpenAi().get("function");
      assertEquals(t.name(), fn.get("name").asText());
      assertEquals("object", fn.get("parameters").get("type").asText());
    }
    assertTrue(categories.containsAll(ToolUniverse.CATEGORIES));
    assertNotNull(U.get("calc.add"));
    assertNotNull(U.get("notes.write"));
    assertNotNull(U.get("web.search"));
    var again = ToolUniverse.generate(7, new Stochasticity(0.02, 0.05, 0));
    assertEquals(U.all(), again.all(), "same seed, same universe");
    assertNotEquals(U.all().stream().map(ToolSpec::name).toList(),
        ToolUniverse.generate(8, Stochasticity.NONE).all().stream().map(ToolSpec::name).toList());
  }

  @Test void argumentsAreCheckedAgainstTheSchema() {
    var add = U.get("calc.add");
    assertNull(ArgumentValidator.validate(add, Map.of("a", 1L, "b", 2.5)));
    assertTrue(ArgumentValidator.validate(add, Map.of("a", "7", "b", 5L)).contains("'a' must be a finite number"));
    assertTrue(ArgumentValidator.validate(add, Map.of("a", 7L)).contains("missing required argument 'b'"));
    assertTrue(ArgumentValidator.validate(add, Map.of("a", 7L, "b", 5L, "c", 1L)).contains("unknown argument 'c'"));
    assertTrue(ArgumentValidator.validate(U.get("notes.write"), Map.of("text", "x".repeat(600))).contains("longer than 512"));
    assertTrue(ArgumentValidator.validate(U.get("cart.add"), Map.of("item", "a", "quantity", 1.5, "price", 2L)).contains("must be an integer"));
  }

  @Test void simulatorsKeepWorldStatePerDomain() {
    var world = new HashMap<String, String>();
    assertEquals("12", Simulator.apply(world, U.get("calc.add"), Map.of("a", 7L, "b", 5L), 7));
    assertEquals("ok", Simulator.apply(world, U.get("notes.write"), Map.of("text", "12"), 7));
    assertEquals("12", Simulator.apply(world, U.get("notes.read"), Map.of(), 7));
    assertEquals("ok", Simulator.apply(world, U.get("cart.add"), Map.of("item", "tea", "quantity", 3L, "price", 2.5), 7));
    assertEquals("7.5", Simulator.apply(world, U.get("cart.total"), Map.of(), 7));
    assertEquals(Map.of("notes:notes", "12", "cart:cart", "7.5"), world);
    var fact = Simulator.apply(world, U.get("web.search"), Map.of("query", "price of gold"), 7);
    assertEquals(fact, Simulator.apply(new HashMap<>(), U.get("web.search"), Map.of("query", "price of gold"), 7), "lookups are fixed by the seed");
  }

  @Test void usersAddToolsFromJsonSpecFiles(@TempDir Path dir) throws Exception {
    var file = dir.resolve("tools.json");
    Files.writeString(file, """
        [{"type":"function","function":{"name":"crm.save_lead","description":"Save a lead",
          "parameters":{"type":"object","properties":{"key":{"type":"string","description":"lead id"},
                                                       "value":{"type":"string"}},"required":["key","value"]}},
          "x-k2":{"kind":"kv","op":"put","domain":"crm","noun":"lead"}}]
        """);
    var tools = ToolSpecFiles.read(file, Stochasticity.NONE);
    assertEquals(1, tools.size());
    var bigger = U.with(tools);
    assertEquals(U.size() + 1, bigger.size());
    var world = new HashMap<String, String>();
    assertEquals("ok", Simulator.apply(world, bigger.get("crm.save_lead"), Map.of("key", "k1", "value", "Ada"), 7));
    assertEquals("Ada", world.get("crm:lead:k1"));

    Files.writeString(file, """
        [{"type":"function","function":{"name":"crm.bad","parameters":{"type":"object","properties":{}}},
          "x-k2":{"kind":"kv","op":"explode"}}]
        """);
    var e = assertThrows(IllegalArgumentException.class, () -> ToolSpecFiles.read(file, Stochasticity.NONE));
    assertTrue(e.getMessage().contains("has no operation 'explode'"), e.getMessage());
    Files.writeString(file, "{not json");
    assertTrue(assertThrows(IllegalArgumentException.class, () -> ToolSpecFiles.read(file, Stochasticity.NONE))
        .getMessage().startsWith("cannot read tool spec file"));
    assertThrows(IllegalArgumentException.class, () -> U.with(U.all().subList(0, 1)), "a tool may not be defined twice");
  }
}
