package dev.k2pekko.tools;

import java.util.Map;

/**
 * What a tool does to the episode's world state. Pure given (state, spec, args): the same call on the same
 * state gives the same result, so the task generator can compute expected end states with the same code.
 * World-state keys are {@code <domain>:<noun>[:<key>]}, so every application domain has its own resources.
 */
public final class Simulator {
  private Simulator() {}

  public static String apply(Map<String, String> world, ToolSpec spec, Map<String, Object> args, long knowledgeSeed) {
    String base = spec.domain() + ":" + spec.noun();
    return switch (spec.kind()) {
      case CALC -> {
        double a = num(args.get("a")), b = num(args.get("b"));
        yield format(switch (spec.op()) {
          case "add" -> a + b;
          case "sub" -> a - b;
          case "mul" -> a * b;
          case "max" -> Math.max(a, b);
          case "min" -> Math.min(a, b);
          default -> throw new IllegalStateException("calc op " + spec.op());
        });
      }
      case NOTES -> switch (spec.op()) {
        case "write" -> { world.put(base, (String) args.get("text")); yield "ok"; }
        case "append" -> {
          var old = world.get(base);
          world.put(base, old == null || old.isEmpty() ? (String) args.get("text") : old + "\n" + args.get("text"));
          yield "ok";
        }
        case "read" -> world.getOrDefault(base, "");
        case "clear" -> { world.remove(base); yield "ok"; }
        default -> throw new IllegalStateException("notes op " + spec.op());
      };
      case FILES -> {
        var key = base + ":" + args.get("path");
        yield switch (spec.op()) {
          case "write" -> { world.put(key, (String) args.get("content")); yield "ok"; }
          case "read" -> world.getOrDefault(key, "not found");
          case "delete" -> world.remove(key) != null ? "deleted" : "not found";
          default -> throw new IllegalStateException("files op " + spec.op());
        };
      }
      case KV -> {
        var key = base + ":" + args.get("key");
        yield switch (spec.op()) {
          case "put" -> { world.put(key, (String) args.get("value")); yield "ok"; }
          case "get" -> world.getOrDefault(key, "not found");
          case "delete" -> world.remove(key) != null ? "deleted" : "not found";
          default -> throw new IllegalStateException("kv op " + spec.op());
        };
      }
      case CART -> {
        var key = spec.domain() + ":cart";
        yield switch (spec.op()) {
          case "add" -> {
            double line = ((Number) args.get("quantity")).longValue() * num(args.get("price"));
            world.put(key, format(num(world.getOrDefault(key, "0")) + line));
            yield "ok";
          }
          case "total" -> world.getOrDefault(key, "0");
          case "clear" -> { world.remove(key); yield "ok"; }
          default -> throw new IllegalStateException("cart op " + spec.op());
        };
      }
      case CALENDAR -> {
        var key = spec.domain() + ":calendar:" + args.get("date");
        yield switch (spec.op()) {
          case "create" -> {
            var old = world.get(key);
            world.put(key, old == null ? (String) args.get("title") : old + "; " + args.get("title"));
            yield "ok";
          }
          case "list" -> world.getOrDefault(key, "no events");
          default -> throw new IllegalStateException("calendar op " + spec.op());
        };
      }
      case LOOKUP -> KnowledgeTable.answer(knowledgeSeed, spec.domain() + ":" + spec.noun(), (String) args.get("query"));
    };
  }

  /** Whether a simulator of this kind has this operation. */
  public static boolean supports(SimKind kind, String op) {
    return switch (kind) {
      case CALC -> java.util.Set.of("add", "sub", "mul", "max", "min").contains(op);
      case NOTES -> java.util.Set.of("write", "append", "read", "clear").contains(op);
      case FILES, KV -> java.util.Set.of("write", "put", "read", "get", "delete").contains(op)
          && (kind == SimKind.FILES ? !op.equals("put") && !op.equals("get") : !op.equals("write") && !op.equals("read"));
      case CART -> java.util.Set.of("add", "total", "clear").contains(op);
      case CALENDAR -> java.util.Set.of("create", "list").contains(op);
      case LOOKUP -> op.equals("search");
    };
  }

  static double num(Object o) {
    return o instanceof Number n ? n.doubleValue() : Double.parseDouble(String.valueOf(o));
  }

  /** Integral values print without a fraction ("12", not "12.0"), so results read like a calculator's. */
  public static String format(double v) {
    if (v == Math.rint(v) && Math.abs(v) < 1e15) return Long.toString((long) v);
    return Double.toString(v);
  }
}
