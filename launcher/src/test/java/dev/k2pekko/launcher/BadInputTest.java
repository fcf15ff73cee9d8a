package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The bad-input table of issue 13, as a user types it: each row is refused with its exit code and one line on
 * stderr that names what is wrong, no stack trace, nothing booted and nothing created ({@code {dir}} is a fresh
 * directory that must still hold only the fixtures afterwards).
 */
class BadInputTest {
  @TempDir static Path dir;

  @BeforeAll static void fixtures() throws Exception {
    Files.writeString(dir.resolve("broken.conf"), "k2.pipeline { rl-rounds = [ }\n");
    Files.writeString(dir.resolve("type.conf"), "k2.pipeline { rl-rounds = \"abc\" }\n");
    Files.writeString(dir.resolve("fraction.conf"), "k2.pipeline.rl-rounds = 2.5\n");
    Files.writeString(dir.resolve("objective.conf"), "k2.learner.rl-objective = ppo\n");
    Files.writeString(dir.resolve("groups.conf"), "k2.learner.rl-groups-count = some\n");
    Files.writeString(dir.resolve("negative.conf"), "k2.pipeline.rl-rounds = -3\n");
    Files.writeString(dir.resolve("duration.conf"), "k2.pipeline.stage-timeout = soon\n");
    Files.writeString(dir.resolve("switch.conf"), "k2.pipeline.rl-prioritized = maybe\n");
    Files.writeString(dir.resolve("critic.conf"), "k2.critic.epochs = 0\n");
    Files.writeString(dir.resolve("clip-mode.conf"), "k2.ps.qk-clip = sometimes\n");
    Files.writeString(dir.resolve("tau.conf"), "k2.ps.tau = -5\n");
    Files.writeString(dir.resolve("reward-negative.conf"), "k2.reward.cost = -0.1\n");
    Files.writeString(dir.resolve("reward-nothing.conf"), "k2.reward { verifiable = 0, critic = 0, cost = 0.05 }\n");
    Files.writeString(dir.resolve("open-share.conf"), "k2.open.rl-share = 1.5\n");
    Files.writeString(dir.resolve("adaptive.conf"), "k2.ps.adaptive.decay = 1.5\n");
    Files.writeString(dir.resolve("ps-mode.conf"), "k2.ps.mode = maybe\n");
    Files.writeString(dir.resolve("tiny-limits.conf"), "k2.tools.spec-file-limits { max-bytes = 1 KiB, max-tools = 2 }\n");
    var tool = "{\"type\":\"function\",\"function\":{\"name\":\"crm.save_lead_%d\",\"parameters\":{\"type\":\"object\",\"properties\":"
        + "{\"key\":{\"type\":\"string\"},\"value\":{\"type\":\"string\"}}}},\"x-k2\":{\"kind\":\"kv\",\"op\":\"put\",\"domain\":\"crm\"}}";
    Files.writeString(dir.resolve("three-tools.json"), "[" + tool.formatted(1) + "," + tool.formatted(2) + "," + tool.formatted(3) + "]");
    Files.writeString(dir.resolve("big.json"), "[" + tool.formatted(1) + " ".repeat(2000) + "]");
    Files.writeString(dir.resolve("not-a-list.json"), "{\"tools\": []}");
    Files.writeString(dir.resolve("serial.conf"), "k2.mcp.one-at-a-time = [mem]\n");
    Files.writeString(dir.resolve("graph.conf"), "k2.mcp.knowledge-graph = mem\n");
    Files.writeString(dir.resolve("openai.conf"), "k2.policy.openai { base-url = \"http://127.0.0.1:9/v1\", model = m, max-concurrent = 0 }\n");
  }

  static Stream<Arguments> table() {
    return Stream.of(
        Arguments.of("run --config {dir}/broken.conf", 2, "--config {dir}/broken.conf line 1: List should have ]"),
        Arguments.of("run --config {dir}/type.conf", 2, "k2.pipeline.rl-rounds must be an integer, got \"abc\""),
        Arguments.of("run --config {dir}/objective.conf", 2, "k2.learner.rl-objective must be one of k2, filtered, got \"ppo\""),
        Arguments.of("run --config {dir}/groups.conf", 2, "k2.learner.rl-groups-count must be one of signal, all, got \"some\""),
        Arguments.of("run --synthesis-only --config {dir}/type.conf", 2, "k2.pipeline.rl-rounds must be an integer"),
        Arguments.of("run --config {dir}/fraction.conf", 2, "k2.pipeline.rl-rounds must be an integer, got 2.5"),
        Arguments.of("run --config {dir}/negative.conf", 2, "k2.pipeline.rl-rounds must be >= 0, got -3"),
        Arguments.of("run --config {dir}/duration.conf", 2, "k2.pipeline.stage-timeout must be a duration like \"20 minutes\", got \"soon\""),
        Arguments.of("run --config {dir}/switch.conf", 2, "k2.pipeline.rl-prioritized must be on/off"),
        Arguments.of("run --config {dir}/critic.conf", 2, "k2.critic.epochs and batch-size must be at least 1"),
        Arguments.of("run --config {dir}/clip-mode.conf", 2, "k2.ps.qk-clip must be one of on, off, adaptive, got \"sometimes\""),
        Arguments.of("bench open --open-reward critic,maybe", 2, "--open-reward must be critic, oracle or none (comma-separated), got 'maybe'"),
        Arguments.of("bench pareto --weightings 1,0,0", 2, "--weightings: '1,0,0' is not verifiable,critic,cost,safety"),
        Arguments.of("bench pareto --weightings 0,0,0.1,0", 2, "--weightings: '0,0,0.1,0': k2.reward.verifiable + k2.reward.critic must be > 0"),
        Arguments.of("bench open --sft-steps 0", 2, "--episodes must be at least 10, --sft-steps and --eval-trials at least 1"),
        Arguments.of("run --config {dir}/reward-negative.conf", 2, "--config {dir}/reward-negative.conf: k2.reward.cost must be a finite number >= 0, got -0.1"),
        Arguments.of("run --config {dir}/reward-nothing.conf", 2, "k2.reward.verifiable + k2.reward.critic must be > 0"),
        Arguments.of("run --config {dir}/open-share.conf", 2, "k2.open.rl-share must lie in [0, 1], got 1.5"),
        Arguments.of("run --config {dir}/tau.conf", 2, "--config {dir}/tau.conf: k2.ps.tau must be > 0, got -5.0"),
        Arguments.of("run --config {dir}/adaptive.conf", 2, "k2.ps.adaptive.decay must lie in (0, 1), got 1.5"),
        Arguments.of("run --config {dir}/ps-mode.conf", 2, "k2.ps.mode must be one of sync, async, got \"maybe\""),
        Arguments.of("run --config {dir}/missing.conf", 2, "--config: no such file"),
        Arguments.of("run --agents -5", 2, "--agents applies to --synthesis-only"),
        Arguments.of("run --episodes 0", 2, "--episodes applies to --synthesis-only"),
        Arguments.of("run --synthesis-only --agents -5", 2, "--agents must be at least 1, got -5"),
        Arguments.of("run --synthesis-only --episodes 0", 2, "--episodes must be at least 1, got 0"),
        Arguments.of("run --synthesis-only --rl-rounds 2", 2, "--rl-rounds applies to the pipeline"),
        Arguments.of("run --synthesis-only --resume", 2, "--resume applies to the pipeline"),
        Arguments.of("run --synthesis-only --persist sometimes", 2, "--persist must be accepted, all or none"),
        Arguments.of("run --synthesis-only --policy openai --data-dir {dir}/none", 2, "--policy openai needs --base-url URL"),
        Arguments.of("run --synthesis-only --policy learned", 2, "--policy must be teacher or openai, got 'learned'"),
        Arguments.of("run --synthesis-only --base-url http://127.0.0.1:9/v1", 2, "--base-url applies to --policy openai"),
        Arguments.of("run --synthesis-only --policy openai --base-url ftp://x --model m --data-dir {dir}/none", 2,
            "--base-url must be an http:// or https:// URL with a host, got ftp://x"),
        Arguments.of("run --synthesis-only --policy openai --base-url http://127.0.0.1:9/v1 --data-dir {dir}/none", 2,
            "k2.policy.openai.model must name the served model (--model)"),
        Arguments.of("run --synthesis-only --tasks all", 2, "--tasks must be universe, core, kg or fs, got 'all'"),
        Arguments.of("run --policy openai", 2, "--policy applies to --synthesis-only; the pipeline's synthesis is the teacher's"),
        Arguments.of("run --synthesis-only --config {dir}/openai.conf --data-dir {dir}/none", 2, "k2.policy.openai.max-concurrent must be at least 1, got 0"),
        Arguments.of("bench sim --policy openai --model m --data-dir {dir}/none", 2, "--policy openai needs --base-url URL"),
        Arguments.of("run --synthesis-only --tasks kg --data-dir {dir}/none", 2, "--tasks kg needs k2.mcp.knowledge-graph = NAME"),
        Arguments.of("run --synthesis-only --tasks fs --data-dir {dir}/none", 2, "--tasks fs needs k2.mcp.files = NAME"),
        Arguments.of("run --policy-tasks all --data-dir {dir}/none", 2, "--policy-tasks must be core, kg or fs, got 'all'"),
        Arguments.of("run --policy-tasks fs --data-dir {dir}/none", 2, "--policy-tasks fs needs k2.mcp.files = NAME"),
        Arguments.of("run --policy-tasks kg --data-dir {dir}/none", 2, "--policy-tasks kg needs k2.mcp.knowledge-graph = NAME"),
        Arguments.of("run --synthesis-only --policy-tasks kg --data-dir {dir}/none", 2, "--policy-tasks applies to the pipeline, not to --synthesis-only"),
        Arguments.of("run --synthesis-only --config {dir}/graph.conf --data-dir {dir}/none", 2,
            "k2.mcp.knowledge-graph names mem, which is not among the MCP servers []"),
        Arguments.of("run --synthesis-only --config {dir}/serial.conf --data-dir {dir}/none", 2,
            "k2.mcp.one-at-a-time names mem, which is not among the MCP servers []"),
        Arguments.of("node --port 2551 --seeds 127.0.0.1:2551 --journal h2 --data-dir {dir}/none --policy openai --base-url http://x:1/v1", 2,
            "k2.policy.openai.model must name the served model"),
        Arguments.of("run --agents many", 2, "Invalid value for option '--agents'"),
        Arguments.of("run --bogus", 2, "Unknown option: '--bogus'"),
        Arguments.of("run --mode sometimes", 2, "--mode must be sync or async"),
        Arguments.of("run --backend tpu", 2, "--backend must be one of"),
        Arguments.of("run --resume --data-dir {dir}/empty", 2, "--resume: no earlier pipeline run in"),
        Arguments.of("run --tool-specs {dir}/big.json --config {dir}/tiny-limits.conf --synthesis-only", 2,
            "over the limit of 1,024 (k2.tools.spec-file-limits.max-bytes)"),
        Arguments.of("run --tool-specs {dir}/three-tools.json --config {dir}/tiny-limits.conf --synthesis-only", 2,
            "more than 2 tools (k2.tools.spec-file-limits.max-tools)"),
        Arguments.of("run --tool-specs {dir}/nope.json --synthesis-only", 2, "--tool-specs {dir}/nope.json: cannot read it"),
        Arguments.of("run --tool-specs {dir}/not-a-list.json --synthesis-only", 2, "expected a JSON array of tool specs"),
        Arguments.of("export --out /proc/x.jsonl --data-dir {dir}/none", 2, "--out /proc/x.jsonl: cannot create a file in /proc"),
        Arguments.of("export --out {dir} --data-dir {dir}/none", 2, "--out {dir} is a directory"),
        Arguments.of("export --out {dir}/x/y.jsonl --data-dir {dir}/none", 2, "--out {dir}/x/y.jsonl: no directory"),
        Arguments.of("export --format csv --out {dir}/t.csv", 2, "--format must be jsonl"),
        Arguments.of("replay --count --data-dir {dir}/none", 5, "no journal at {dir}/none/k2-journal.mv.db"),
        Arguments.of("export --out {dir}/t.jsonl --data-dir {dir}/none", 5, "no journal at {dir}/none/k2-journal.mv.db"),
        Arguments.of("journal check --data-dir {dir}/none", 5, "no journal at {dir}/none/k2-journal.mv.db"),
        Arguments.of("replay --count --timeout 0 --data-dir {dir}/none", 2, "--timeout must be at least 1 second"),
        Arguments.of("report --data-dir {dir}/none", 2, "--data-dir {dir}/none: no such directory"),
        Arguments.of("report --data-dir {dir}", 2, "no pipeline run in"),
        Arguments.of("journal", 2, "give a subcommand: k2 journal check"),
        Arguments.of("node --port 2551 --seeds nonsense --journal h2", 2, "--seeds takes host:port"),
        Arguments.of("run --http-port -1", 2, "--http-port must be 0..65535 (0: any free port), got -1"),
        Arguments.of("run --synthesis-only --http-port 70000", 2, "--http-port must be 0..65535"),
        Arguments.of("node --port 2551 --seeds 127.0.0.1:2551 --http-port -1", 2, "--http-port must be 0..65535"),
        Arguments.of("run --http-host 0.0.0.0", 2, "--http-host needs --http-port"),
        Arguments.of("run --http-port x", 2, "Invalid value for option '--http-port'"),
        Arguments.of("run --http-port 0 --http-host 0.0.0.0", 2, "--http-host 0.0.0.0 is not a loopback address: the endpoint then needs a bearer token"),
        Arguments.of("run --http-port 0 --http-token-file {dir}/none", 2, "--http-token-file {dir}/none: cannot read it"),
        Arguments.of("node --port 2551 --seeds 127.0.0.1:2551 --journal h2 --tls {dir}/none", 2, "k2.cluster.tls: {dir}/none has no node.p12"),
        Arguments.of("certs --out {dir}/c --ca {dir}/none", 2, "--ca {dir}/none holds no authority"),
        Arguments.of("serve --checkpoint {dir}/none --port 0 --host 0.0.0.0", 2, "--host 0.0.0.0 is not a loopback address: the endpoint then needs a bearer token (--api-key-file FILE, or K2_API_KEY)"));
  }

  @ParameterizedTest(name = "k2 {0} -> exit {1}")
  @MethodSource("table")
  void oneLineAndAnExitCode(String command, int code, String says) throws Exception {
    var before = listing();
    var args = command.replace("{dir}", dir.toString()).split(" ");
    var r = K2CliTest.k2(args);
    var lines = r.err().lines().filter(l -> !l.isBlank()).toList();
    assertEquals(code, r.code(), r.err());
    assertEquals(1, lines.size(), "one line: " + r.err());
    assertTrue(lines.getFirst().contains(says.replace("{dir}", dir.toString())), lines.getFirst());
    assertTrue(lines.getFirst().startsWith("k2 "), lines.getFirst());
    assertFalse(r.err().contains("Exception:") || r.err().contains("\tat "), "no stack trace: " + r.err());
    assertEquals("", r.out(), "nothing on stdout");
    assertEquals(before, listing(), "nothing created");
  }

  @org.junit.jupiter.api.Test void aPortInUseIsOneLineBeforeAnythingBoots() throws Exception {
    try (var taken = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
      int port = taken.getLocalPort();
      for (var command : java.util.List.of("run --synthesis-only --data-dir " + dir + "/none", "node --port 2551 --seeds 127.0.0.1:2551")) {
        var r = K2CliTest.k2((command + " --http-port " + port).split(" "));
        var lines = r.err().lines().filter(l -> !l.isBlank()).toList();
        assertEquals(2, r.code(), r.err());
        assertEquals(1, lines.size(), "one line: " + r.err());
        assertTrue(lines.getFirst().contains("--http-port " + port + ": cannot listen on 127.0.0.1:" + port), lines.getFirst());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        assertFalse(Files.exists(dir.resolve("none")), "nothing created");
      }
    }
  }

  private static java.util.List<String> listing() throws Exception {
    try (var s = Files.walk(dir)) {
      return s.map(p -> dir.relativize(p).toString()).sorted().toList();
    }
  }
}
