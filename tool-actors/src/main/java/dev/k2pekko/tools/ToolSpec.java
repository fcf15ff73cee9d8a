package dev.k2pekko.tools;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * A tool in OpenAI function-calling form plus what backs it: the simulator kind, its operation, and the
 * namespace ({@code domain}) of world state it touches. {@code category} and {@code domain} place it in the
 * hierarchy category → application domain → tool.
 */
public record ToolSpec(String name, String description, String category, String domain, SimKind kind, String op,
                       String noun, List<ParamSpec> params, Stochasticity stochasticity) {

  private static final ObjectMapper JSON = new ObjectMapper();

  public ParamSpec param(String name) {
    for (var p : params) if (p.name().equals(name)) return p;
    return null;
  }

  /** {"type":"function","function":{"name","description","parameters":{JSON Schema}}}. */
  public ObjectNode toOpenAi() {
    var root = JSON.createObjectNode();
    root.put("type", "function");
    var fn = root.putObject("function");
    fn.put("name", name);
    fn.put("description", description);
    var schema = fn.putObject("parameters");
    schema.put("type", "object");
    var props = schema.putObject("properties");
    var required = schema.putArray("required");
    for (var p : params) {
      var prop = props.putObject(p.name());
      prop.put("type", p.type().json);
      prop.put("description", p.description());
      if (p.maxLength() > 0) prop.put("maxLength", p.maxLength());
      if (!p.enumValues().isEmpty()) p.enumValues().forEach(prop.putArray("enum")::add);
      if (p.required()) required.add(p.name());
    }
    schema.put("additionalProperties", false);
    return root;
  }

  /** This tool with seeded noise: each rate is the given one times a per-tool factor in [0, 2). */
  public ToolSpec withNoise(Stochasticity noise, java.util.SplittableRandom rnd) {
    double f = rnd.nextDouble() * 2, p = rnd.nextDouble() * 2;
    var mine = new Stochasticity(Math.min(1, noise.failureRate() * f),
        kind == SimKind.LOOKUP ? Math.min(1, noise.partialRate() * p) : 0, noise.latencyMicros());
    return new ToolSpec(name, description, category, domain, kind, op, noun, params, mine);
  }
}
