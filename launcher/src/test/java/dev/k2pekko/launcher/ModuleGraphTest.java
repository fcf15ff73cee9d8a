package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Element;

/**
 * The module rule, enforced: every k2 dependency in every module's pom.xml (any scope) must be allowed by the module
 * table of docs/DESIGN.md ("may depend on" and "also, until it moves"), and the table must name exactly the modules
 * of the root pom.
 */
class ModuleGraphTest {
  static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
  static final Pattern MODULE = Pattern.compile("`([a-z-]+)`");

  @Test void everyPomDependsOnlyOnWhatTheDesignTableAllows() throws Exception {
    var allowed = table(Files.readString(ROOT.resolve("docs/DESIGN.md")));
    var modules = childrenOf(ROOT.resolve("pom.xml"), "module");
    assertEquals(new TreeSet<>(modules), new TreeSet<>(allowed.keySet()), "the table in docs/DESIGN.md and the root pom's modules");
    var deps = new LinkedHashMap<String, List<String>>();
    for (String m : modules) deps.put(m, k2Dependencies(ROOT.resolve(m).resolve("pom.xml")));
    var violations = violations(allowed, deps);
    assertTrue(violations.isEmpty(), "dependencies docs/DESIGN.md does not allow: " + violations);
  }

  @Test void aDependencyOutsideTheTableIsReported() {
    var allowed = table("""
        <!-- module-table -->
        | module | owns | may depend on | also, until it moves |
        | --- | --- | --- | --- |
        | `protocol` | messages | — | |
        | `clip-monitor` | maxima | `protocol` | |
        | `model` | policy | `cuda-ops` | `protocol` (for now) |

        """);
    assertEquals(Set.of("cuda-ops", "protocol"), allowed.get("model"));
    assertEquals(Set.of(), allowed.get("protocol"));
    var deps = Map.of("clip-monitor", List.of("protocol", "parameter-server"), "protocol", List.<String>of(), "model", List.of("protocol"));
    assertEquals(List.of("clip-monitor -> parameter-server"), violations(allowed, deps));
  }

  /** module -> the modules it may depend on, from the rows after the module-table marker up to the next blank line. */
  static Map<String, Set<String>> table(String markdown) {
    var out = new TreeMap<String, Set<String>>();
    var lines = markdown.lines().toList();
    int i = 0;
    while (i < lines.size() && !lines.get(i).startsWith("<!-- module-table")) i++;
    if (i == lines.size()) throw new IllegalStateException("no module table (<!-- module-table ... -->) in docs/DESIGN.md");
    for (i++; i < lines.size() && !lines.get(i).isBlank(); i++) {
      String[] cells = lines.get(i).split("\\|", -1);
      if (cells.length < 6) throw new IllegalStateException("a module-table row needs 4 columns: " + lines.get(i));
      Matcher m = MODULE.matcher(cells[1]);
      if (!m.find()) continue; // the header and the separator
      var may = new TreeSet<String>();
      for (String cell : List.of(cells[3], cells[4])) {
        Matcher d = MODULE.matcher(cell);
        while (d.find()) may.add(d.group(1));
      }
      out.put(m.group(1), may);
    }
    return out;
  }

  static List<String> violations(Map<String, Set<String>> allowed, Map<String, List<String>> deps) {
    var out = new ArrayList<String>();
    deps.forEach((module, ds) -> {
      for (String d : ds) if (!allowed.getOrDefault(module, Set.of()).contains(d)) out.add(module + " -> " + d);
    });
    return out;
  }

  static List<String> childrenOf(Path pom, String tag) throws Exception {
    var doc = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(pom.toFile());
    var out = new ArrayList<String>();
    var nodes = doc.getElementsByTagName(tag);
    for (int i = 0; i < nodes.getLength(); i++) out.add(nodes.item(i).getTextContent().trim());
    return out;
  }

  /** The dev.k2pekko artifacts a module's pom declares under project/dependencies. */
  static List<String> k2Dependencies(Path pom) throws Exception {
    if (!Files.isRegularFile(pom)) throw new IOException("no pom " + pom);
    var doc = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(pom.toFile());
    var out = new ArrayList<String>();
    var nodes = doc.getElementsByTagName("dependency");
    for (int i = 0; i < nodes.getLength(); i++) {
      var e = (Element) nodes.item(i);
      if (e.getParentNode().getParentNode() != doc.getDocumentElement()) continue; // plugin or dependencyManagement entries
      if (!"dev.k2pekko".equals(text(e, "groupId"))) continue;
      out.add(text(e, "artifactId"));
    }
    return out;
  }

  private static String text(Element e, String tag) {
    var n = e.getElementsByTagName(tag);
    return n.getLength() == 0 ? null : n.item(0).getTextContent().trim();
  }
}
