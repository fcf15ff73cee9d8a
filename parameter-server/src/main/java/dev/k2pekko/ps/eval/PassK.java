package dev.k2pekko.ps.eval;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Success rate and pass^k as tau2-bench defines them: a task tried n times with c successes has
 * pass^k = C(c,k) / C(n,k), the chance that k trials drawn without replacement all succeed (0 when c < k);
 * both figures are averaged over tasks, each task weighing the same whatever its n. pass^1 equals the
 * success rate, mean c/n.
 *
 * @param tasks the number of tasks
 * @param success mean over tasks of c/n
 * @param passK pass^k for k = 1..kMax, at index k-1
 */
public record PassK(int tasks, double success, List<Double> passK) {
  public PassK {
    passK = List.copyOf(passK);
  }

  /** One trial of one task. */
  public record Outcome(String taskId, boolean success) {}

  /** pass^k for k in 1..kMax. */
  public double at(int k) {
    if (k < 1 || k > passK.size()) throw new IllegalArgumentException("pass^" + k + " not computed: k runs from 1 to " + passK.size());
    return passK.get(k - 1);
  }

  /**
   * From each task's {n, c}: n trials (at least kMax, so that every pass^k is defined) with c successes.
   */
  public static PassK of(Map<String, int[]> trialsAndSuccesses, int kMax) {
    if (kMax < 1) throw new IllegalArgumentException("kMax must be at least 1, got " + kMax);
    if (trialsAndSuccesses.isEmpty()) throw new IllegalArgumentException("no tasks to evaluate");
    double success = 0;
    double[] sum = new double[kMax];
    for (var e : trialsAndSuccesses.entrySet()) {
      int[] nc = e.getValue();
      if (nc == null || nc.length != 2) throw new IllegalArgumentException("task " + e.getKey() + ": expected {n, c}, got " + (nc == null ? null : nc.length + " numbers"));
      int n = nc[0], c = nc[1];
      if (n < 1 || c < 0 || c > n) throw new IllegalArgumentException("task " + e.getKey() + ": n = " + n + " trials and c = " + c + " successes, need 0 <= c <= n and n >= 1");
      if (kMax > n) {
        throw new IllegalArgumentException("task " + e.getKey() + " has n = " + n + " trials, fewer than k = " + kMax
            + ": pass^k needs at least k trials of every task");
      }
      success += (double) c / n;
      for (int k = 1; k <= kMax; k++) sum[k - 1] += passHat(n, c, k);
    }
    var passK = new ArrayList<Double>(kMax);
    for (double s : sum) passK.add(s / trialsAndSuccesses.size());
    return new PassK(trialsAndSuccesses.size(), success / trialsAndSuccesses.size(), passK);
  }

  /** From single trials, grouped by task id. */
  public static PassK ofOutcomes(List<Outcome> outcomes, int kMax) {
    var counts = new LinkedHashMap<String, int[]>();
    for (Outcome o : outcomes) {
      int[] nc = counts.computeIfAbsent(o.taskId(), id -> new int[2]);
      nc[0]++;
      if (o.success()) nc[1]++;
    }
    return of(Collections.unmodifiableMap(counts), kMax);
  }

  /** C(c,k)/C(n,k) as the product over i < k of (c-i)/(n-i): no factorials, no overflow, every factor in [0,1]. */
  static double passHat(int n, int c, int k) {
    if (c < k) return 0;
    double p = 1;
    for (int i = 0; i < k; i++) p *= (double) (c - i) / (n - i);
    return p;
  }
}
