package dev.k2pekko.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Reads user tools from JSON: an array of OpenAI function specs, each with an {@code "x-k2"} object that names
 * the simulator backing it ({@code kind}, {@code op}, optional {@code domain}, {@code category}, {@code noun}).
 * The declared parameters must be the ones that simulator reads, so a spec file can rename and document tools
 * but cannot ask a simulator for something it cannot do.
 */
public final class ToolSpecFiles {
  private static final ObjectMapper JSON = new ObjectMapper();

  private ToolSpecFiles() {}

  public static List<ToolSpec> read(Path file, Stochasticity noise) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readString(file));
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read tool spec file " + file + ": " + e.getMessage(), e);
    }
    if (root == null || !root.isArray()) throw new IllegalArgumentException(file + ": expected a JSON array of tool specs");
    var out = new ArrayList<ToolSpec>();
    var rnd = new java.util.SplittableRandom(file.toString().hashCode());
    for (int i = 0; i < root.size(); i++) {
      try {
        out.add(parse(root.get(i)).withNoise(noise, rnd));
      } catch (RuntimeException e) {
        throw new IllegalArgumentException(file + ": tool #" + i + ": " + e.getMessage(), e);
      }
    }
    return out;
  }

  static ToolSpec parse(JsonNode node) {
    var fn = node.path("function");
    var name = text(fn, "name");
    if (!name.matches("[A-Za-z0-9_.-]{1,128}")) throw new IllegalArgumentException("invalid tool name '" + name + "'");
    var x = node.path("x-k2");
    if (x.isMissingNode()) throw new IllegalArgumentException("'" + name + "' has no \"x-k2\" object naming its simulator");
    SimKind kind;
    try {
      kind = SimKind.valueOf(text(x, "kind").toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("'" + name + "': unknown simulator kind '" + x.path("kind").asText() + "'");
    }
    var op = text(x, "op");
    if (!Simulator.supports(kind, op)) throw new IllegalArgumentException("'" + name + "': simulator " + kind + " has no operation '" + op + "'");
    var category = x.path("category").asText("user");
    var domain = x.path("domain").asText(name);
    var noun = x.path("noun").asText(kind.name().toLowerCase(Locale.ROOT));
    var reference = ToolUniverse.spec(name, fn.path("description").asText(""), category, domain, kind, op, noun);
    var props = fn.path("parameters").path("properties");
    var required = new java.util.HashSet<String>();
    fn.path("parameters").path("required").forEach(r -> required.add(r.asText()));
    var params = new ArrayList<ParamSpec>();
    for (var p : reference.params()) {
      var declared = props.path(p.name());
      if (declared.isMissingNode()) throw new IllegalArgumentException("'" + name + "' must declare parameter '" + p.name() + "' for " + kind + "." + op);
      var type = ParamType.fromJson(declared.path("type").asText());
      if (type != p.type()) throw new IllegalArgumentException("'" + name + "' parameter '" + p.name() + "' must be " + p.type().json);
      var enums = new ArrayList<String>();
      declared.path("enum").forEach(e -> enums.add(e.asText()));
      params.add(new ParamSpec(p.name(), type, declared.path("description").asText(p.description()), required.contains(p.name()) || p.required(),
          declared.path("maxLength").asInt(p.maxLength()), enums));
    }
    var it = props.fieldNames();
    while (it.hasNext()) {
      var f = it.next();
      if (reference.param(f) == null) throw new IllegalArgumentException("'" + name + "' declares parameter '" + f + "' that " + kind + "." + op + " does not read");
    }
    return new ToolSpec(name, reference.description(), category, domain, kind, op, noun, params, Stochasticity.NONE);
  }

  private static String text(JsonNode n, String field) {
    var v = n.path(field);
    if (!v.isTextual() || v.asText().isBlank()) throw new IllegalArgumentException("missing \"" + field + "\"");
    return v.asText();
  }
}
