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

  /**
   * Limits on one tool-spec file ({@code k2.tools.spec-file-limits}): a file over them is refused before it is
   * parsed into tools, so a huge file is one clear error instead of a long silent startup.
   */
  public record Limits(long maxBytes, int maxTools, long progressBytes) {
    public static Limits of(com.typesafe.config.Config tools) {
      var l = tools.getConfig("spec-file-limits");
      return new Limits(l.getBytes("max-bytes"), l.getInt("max-tools"), l.getBytes("progress-over"));
    }
  }

  /**
   * Reads and checks a file as {@link #read} does, within {@code limits}, saying how far it got on {@code progress}
   * (a line every 10% for files over {@code progressBytes}). Throws IllegalArgumentException naming the file.
   */
  public static int check(Path file, Limits limits, java.util.function.Consumer<String> progress) {
    long size;
    try {
      size = Files.size(file);
    } catch (IOException e) {
      String why = e instanceof java.nio.file.NoSuchFileException ? "no such file" : e instanceof java.nio.file.AccessDeniedException ? "permission denied" : e.getMessage();
      throw new IllegalArgumentException("--tool-specs " + file + ": cannot read it (" + why + ")");
    }
    if (Files.isDirectory(file)) throw new IllegalArgumentException("--tool-specs " + file + " is a directory, not a JSON file");
    if (size > limits.maxBytes()) {
      throw new IllegalArgumentException(String.format("--tool-specs %s: %,d bytes, over the limit of %,d (k2.tools.spec-file-limits.max-bytes)",
          file, size, limits.maxBytes()));
    }
    boolean show = size > limits.progressBytes();
    int tools = 0;
    try (var p = JSON.getFactory().createParser(file.toFile())) {
      if (p.nextToken() != com.fasterxml.jackson.core.JsonToken.START_ARRAY) throw new IllegalArgumentException(file + ": expected a JSON array of tool specs");
      var names = new java.util.HashSet<String>();
      int shownTenth = 0;
      while (p.nextToken() == com.fasterxml.jackson.core.JsonToken.START_OBJECT) {
        JsonNode node = JSON.readTree(p);
        if (++tools > limits.maxTools()) {
          throw new IllegalArgumentException(String.format("--tool-specs %s: more than %,d tools (k2.tools.spec-file-limits.max-tools)", file, limits.maxTools()));
        }
        ToolSpec spec;
        try {
          spec = parse(node);
        } catch (RuntimeException e) {
          throw new IllegalArgumentException(file + ": tool #" + (tools - 1) + ": " + e.getMessage(), e);
        }
        if (!names.add(spec.name())) throw new IllegalArgumentException(file + ": tool #" + (tools - 1) + ": '" + spec.name() + "' is defined twice");
        int tenth = (int) (10 * p.currentLocation().getByteOffset() / Math.max(1, size));
        if (show && tenth > shownTenth) {
          shownTenth = tenth;
          progress.accept(String.format("k2: reading %s: %d%% (%,d tools)", file, 10 * tenth, tools));
        }
      }
      if (p.currentToken() != com.fasterxml.jackson.core.JsonToken.END_ARRAY) throw new IllegalArgumentException(file + ": tool #" + tools + " is not a JSON object");
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read tool spec file " + file + ": " + e.getMessage().lines().findFirst().orElse(""), e);
    }
    return tools;
  }

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
