package dev.k2pekko.agents;

import dev.k2pekko.agents.tasks.Task;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.protocol.Verdict;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Scores an episode against its task's rubric.
 * <ul>
 *   <li>Verifiable score: the fraction of passed checks among the end-state checks, "no other resource was
 *   touched", and the final answer.</li>
 *   <li>Rubric score: adherence of the successful calls to the expected tool pattern (longest common subsequence
 *   over the longer of the two), less 0.1 per redundant call (a call that is neither in the pattern nor a retry
 *   after an error); 0 when a forbidden tool was called.</li>
 * </ul>
 * An episode is accepted when every verifiable check passes, the rubric score reaches the threshold, no
 * forbidden tool was called, every tool error was recovered from, and the step budget held. Each reason starts
 * with its kind ("end-state: ..."), which the run summary counts.
 */
public final class JudgeRubric {
  private final double threshold;

  public JudgeRubric(double threshold) { this.threshold = threshold; }

  public Verdict judge(Task task, List<Step> steps, String finalAnswer, Map<String, String> world, boolean budgetExceeded) {
    var r = task.rubric();
    var reasons = new ArrayList<String>();
    int checks = 0, passed = 0, present = 0;
    for (var c : r.checks()) {
      checks++;
      var got = world.get(c.key());
      if (got != null) present++;
      if (c.expected().equals(got)) passed++;
      else reasons.add("end-state: " + c.key() + " is " + (got == null ? "missing" : "'" + clip(got) + "'") + ", expected '" + clip(c.expected()) + "'");
    }
    checks++;
    // The checks name distinct keys: the world holds nothing else exactly when it holds only those it has.
    if (world.size() == present) passed++;
    else reasons.add("side-effect: touched " + unexpectedKeys(world, r.checks()));
    checks++;
    if (finalAnswer == null) reasons.add("no-answer: the episode ended without an answer");
    else if (sameValue(finalAnswer, r.expectedAnswer())) passed++;
    else reasons.add("wrong-answer: '" + clip(finalAnswer) + "', expected '" + clip(r.expectedAnswer()) + "'");
    double verifiable = (double) passed / checks;

    var called = new ArrayList<String>();
    int redundant = 0;
    boolean forbidden = false, unrecovered = false;
    for (int i = 0; i < steps.size(); i++) {
      var s = steps.get(i);
      if (r.forbiddenTools().contains(s.tool())) {
        forbidden = true;
        reasons.add("forbidden-tool: " + s.tool());
      }
      boolean failed = s.error() != null || s.partial();
      if (failed) {
        boolean retried = i + 1 < steps.size() && steps.get(i + 1).tool().equals(s.tool());
        if (!retried) {
          unrecovered = true;
          reasons.add("unrecovered-error: " + s.tool() + " " + (s.error() == null ? "partial result" : s.error()));
        }
        continue;
      }
      if (!r.expectedTools().contains(s.tool())) redundant++;
      called.add(s.tool());
    }
    double adherence = lcs(called, r.expectedTools()) / (double) Math.max(1, Math.max(called.size(), r.expectedTools().size()));
    double rubric = forbidden ? 0 : Math.max(0, adherence - 0.1 * redundant);
    if (rubric < threshold && !forbidden) reasons.add("off-pattern: rubric score " + String.format("%.2f", rubric) + " < " + threshold);
    if (budgetExceeded) reasons.add("step-budget: more than " + r.stepBudget() + " steps");
    boolean accepted = verifiable == 1.0 && rubric >= threshold && !forbidden && !unrecovered && !budgetExceeded;
    return new Verdict(accepted, verifiable, rubric, List.copyOf(reasons));
  }

  private static List<String> unexpectedKeys(Map<String, String> world, List<dev.k2pekko.agents.tasks.EndStateCheck> checks) {
    var expected = new java.util.HashSet<String>();
    for (var c : checks) expected.add(c.key());
    var extra = new ArrayList<String>();
    for (var k : world.keySet()) if (!expected.contains(k)) extra.add(k);
    extra.sort(null);
    return extra;
  }

  /** Numbers compare by value ("12" equals "12.0"); anything else as trimmed text. */
  static boolean sameValue(String a, String b) {
    var x = a.trim();
    var y = b.trim();
    if (x.equals(y)) return true;
    if (!dev.k2pekko.agents.tasks.TaskBuilder.mayBeNumber(x) || !dev.k2pekko.agents.tasks.TaskBuilder.mayBeNumber(y)) return false;
    try {
      return Double.parseDouble(x) == Double.parseDouble(y);
    } catch (NumberFormatException e) {
      return false;
    }
  }

  static int lcs(List<String> a, List<String> b) {
    int[][] t = new int[a.size() + 1][b.size() + 1];
    for (int i = 1; i <= a.size(); i++) {
      for (int j = 1; j <= b.size(); j++) {
        t[i][j] = a.get(i - 1).equals(b.get(j - 1)) ? t[i - 1][j - 1] + 1 : Math.max(t[i - 1][j], t[i][j - 1]);
      }
    }
    return t[a.size()][b.size()];
  }

  private static String clip(String s) { return s.length() > 40 ? s.substring(0, 40) + "…" : s; }

  public double threshold() { return threshold; }

  /**
   * The kinds of reason only the task's checker can give: the end state, side effects, the answer's value and the
   * tool pattern. The rest (a tool error left unrecovered, the step budget, a forbidden tool, no answer) any harness
   * sees without the checker. An open task's checker is hidden from training: its synthesis data is kept by the public
   * checks alone ({@link #passesPublicChecks}).
   */
  public static final java.util.Set<String> CHECKER_KINDS = java.util.Set.of("end-state", "side-effect", "wrong-answer", "off-pattern");

  /** Whether no reason of the verdict is one a harness could see without the task's checker. */
  public static boolean passesPublicChecks(Verdict v) {
    for (var r : v.reasons()) if (!CHECKER_KINDS.contains(kind(r))) return false;
    return true;
  }

  /**
   * Whether a judged episode of a task of {@code category} is kept as accepted data ({@code --persist accepted}: the
   * synthesis that SFT trains on): a verifiable task's when the judge accepts it; an open task's when it passes the
   * public checks alone, never by its hidden rubric (docs/LOOP.md, "Open tasks").
   */
  public static boolean keptAsAccepted(String category, Verdict v) {
    return dev.k2pekko.agents.tasks.TaskBuilder.OPEN.equals(category) ? passesPublicChecks(v) : v.accepted();
  }

  /** The kind of a reason: the part before the first colon. */
  public static String kind(String reason) {
    int i = reason.indexOf(':');
    return i < 0 ? reason : reason.substring(0, i);
  }
}
