// A deliberately bad MCP server for the bridge's tests, speaking just enough JSON-RPC over stdio.
// usage: node bad-mcp-server.mjs MODE, MODE one of:
//   crash    tools: ping (answers "pong"), crash (the process exits mid-call), huge (a 1 MB result),
//            hang (never answers), bad (listed with an input schema that is not an object: skipped by k2)
//   garbage  prints non-JSON lines instead of answering anything
import readline from "node:readline";

const mode = process.argv[2] ?? "crash";
if (mode === "garbage") {
  setInterval(() => process.stdout.write("this is not JSON-RPC\n"), 50);
} else {
  const send = (msg) => process.stdout.write(JSON.stringify(msg) + "\n");
  const schema = { type: "object", properties: {} };
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
    const m = JSON.parse(line);
    if (m.method === "initialize") {
      send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} },
        serverInfo: { name: "bad", version: "0" } } });
    } else if (m.method === "tools/list") {
      send({ jsonrpc: "2.0", id: m.id, result: { tools: [
        { name: "ping", description: "answers pong", inputSchema: schema },
        { name: "crash", description: "exits mid-call", inputSchema: schema },
        { name: "huge", description: "a 1 MB result", inputSchema: schema },
        { name: "hang", description: "never answers", inputSchema: schema },
        { name: "bad", description: "invalid schema", inputSchema: { type: "string" } }] } });
    } else if (m.method === "tools/call") {
      const name = m.params.name;
      if (name === "crash") process.exit(3);
      if (name === "hang") return;
      const text = name === "huge" ? "x".repeat(1 << 20) : "pong";
      send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text }] } });
    } else if (m.id !== undefined) {
      send({ jsonrpc: "2.0", id: m.id, result: {} });
    }
  });
}
