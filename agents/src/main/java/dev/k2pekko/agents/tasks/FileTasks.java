package dev.k2pekko.agents.tasks;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Tasks on a real MCP tool server: files in the episode's sandbox directory through
 * {@code @modelcontextprotocol/server-filesystem} (the server named by {@code k2.mcp.files}, given the directory of
 * {@code k2.tools.firewall.sandbox}). Difficulty 1 writes a file; 2 writes it and renames it; 3 creates a directory,
 * writes the file and moves it there. The end state the judge checks is the episode's directory as the server left it
 * on disk ({@code fs:PATH} -> content, every regular file), read by the tool worker when the episode ends; a file the
 * task did not ask for, or one left under its old name, is a side effect. Each episode has a directory of its own
 * (the tool worker resolves relative paths there), so concurrent episodes with the same file names never meet.
 */
public final class FileTasks {
  public static final String CATEGORY = "fs";
  static final String[] NAMES = {"report", "notes", "todo", "plan", "budget", "minutes"};
  static final String[] CONTENTS = {"status: draft", "total 42", "ship on friday", "call the bank", "buy more tea", "review at noon"};
  static final String[] DIRECTORIES = {"archive", "done", "outbox"};

  private final String server;

  /** {@code server}: the MCP server's name, the prefix of its tools ({@code fs} for {@code fs.write_file}). */
  public FileTasks(String server) {
    if (server == null || server.isEmpty()) throw new IllegalArgumentException("file tasks need k2.mcp.files (the filesystem server's name)");
    this.server = server;
  }

  /** The tools every task offers. */
  public List<String> tools() {
    return List.of(server + ".write_file", server + ".move_file", server + ".create_directory", server + ".read_text_file");
  }

  /** A task of {@code split}, as {@link KnowledgeGraphTasks#task(long, String, int, TaskGenerator.Split)}: the split is the prompt's own. */
  public Task task(long seed, String id, int difficulty, TaskGenerator.Split split) {
    return TaskGenerator.firstOf(split, seed, "file task", s -> task(s, id, difficulty));
  }

  /**
   * What the learned policy needs to play these tasks (k2.policy.tasks = fs): the offered tools (their calls written
   * as nested arguments, flat here) and one token per recurring piece of their calls, results and prompts.
   */
  public dev.k2pekko.agents.policy.PolicyFormat.TaskVocabulary vocabulary() {
    var words = new java.util.LinkedHashSet<String>();
    for (String k : List.of("path", "content", "source", "destination")) words.addAll(List.of(k + "=", "|" + k + "="));
    for (String[] pool : new String[][] {NAMES, CONTENTS, DIRECTORIES}) words.addAll(List.of(pool));
    for (String n : NAMES) words.addAll(List.of(n + ".txt", n + "-final.txt"));
    words.addAll(List.of(".txt", "-final.txt", "done", "Write \"", "\" into the file ", ", then rename it to ", "Create the directory ",
        ", then write \"", "write \"", ", then move it into ", "move it into ", ". Answer with done.", "Successfully wrote to ", "Successfully moved ", " to ",
        "Successfully created directory "));
    return new dev.k2pekko.agents.policy.PolicyFormat.TaskVocabulary(tools(), List.copyOf(words));
  }

  public Task task(long seed, String id, int difficulty) {
    if (difficulty < 1 || difficulty > 3) throw new IllegalArgumentException("file tasks have difficulty 1..3, got " + difficulty);
    var rnd = new SplittableRandom(seed);
    String name = NAMES[rnd.nextInt(NAMES.length)], content = CONTENTS[rnd.nextInt(CONTENTS.length)];
    String dir = DIRECTORIES[rnd.nextInt(DIRECTORIES.length)];
    String file = name + ".txt";
    var plan = new ArrayList<PlanStep>();
    String sentence;
    String finalPath;
    switch (difficulty) {
      case 1 -> {
        sentence = "Write \"" + content + "\" into the file " + file;
        plan.add(new PlanStep(server + ".write_file", Map.of("path", file, "content", content), false));
        finalPath = file;
      }
      case 2 -> {
        finalPath = name + "-final.txt";
        sentence = "Write \"" + content + "\" into the file " + file + ", then rename it to " + finalPath;
        plan.add(new PlanStep(server + ".write_file", Map.of("path", file, "content", content), false));
        plan.add(new PlanStep(server + ".move_file", Map.of("source", file, "destination", finalPath), false));
      }
      default -> {
        finalPath = dir + "/" + file;
        // one clause per step, joined by ", then ": the learned policy's harness shows the clause it is on
        // (PolicyFormat.checklist), and with ", write" the content was out of sight once the directory existed
        sentence = "Create the directory " + dir + ", then write \"" + content + "\" into the file " + file + ", then move it into " + dir;
        plan.add(new PlanStep(server + ".create_directory", Map.of("path", dir), false));
        plan.add(new PlanStep(server + ".write_file", Map.of("path", file, "content", content), false));
        plan.add(new PlanStep(server + ".move_file", Map.of("source", file, "destination", finalPath), false));
      }
    }
    var checks = List.of(new EndStateCheck("fs:" + finalPath, content, finalPath + " holds \"" + content + "\""));
    var used = plan.stream().map(PlanStep::tool).toList();
    var rubric = new Rubric(checks, "done", used, 2 * plan.size() + 2, java.util.Set.of());
    return new Task(id, CATEGORY, difficulty, seed, sentence + ". Answer with done.", List.copyOf(plan), rubric, tools());
  }
}
