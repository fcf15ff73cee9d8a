package dev.k2pekko.tools;

/**
 * The seeded facts behind lookup tools: every (source, query) has one fixed answer, a number from 1 to 999, so
 * that tasks can ask for a fact and check what was done with it.
 */
public final class KnowledgeTable {
  private KnowledgeTable() {}

  public static String answer(long seed, String source, String query) {
    long h = mix(seed ^ mix(source.hashCode()) ^ (mix(query.hashCode()) * 31));
    return Long.toString(1 + Math.floorMod(h, 999));
  }

  static long mix(long z) {
    z = (z ^ (z >>> 33)) * 0xff51afd7ed558ccdL;
    z = (z ^ (z >>> 33)) * 0xc4ceb9fe1a85ec53L;
    return z ^ (z >>> 33);
  }

  /** A uniform draw in [0, 1) fixed by its inputs: tool noise is reproducible from the episode and call ids. */
  public static double uniform(long seed, String a, String b) {
    return (mix(seed ^ mix(a.hashCode()) ^ mix(b.hashCode() + 0x9E3779B97F4A7C15L)) >>> 11) * 0x1.0p-53;
  }
}
