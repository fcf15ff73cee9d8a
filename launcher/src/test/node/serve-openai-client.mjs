// Calls `k2 serve` with the official openai npm client (pinned in package-lock.json) and checks every answer is a
// valid chat completion: a tool call of an offered tool with JSON-object arguments, or text content.
// Usage: node serve-openai-client.mjs BASE_URL MODEL. Prints one JSON line of counts; exits 1 on the first problem.
import OpenAI from 'openai';

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'not-checked', timeout: 30_000, maxRetries: 0 });
const fail = (what, x) => { console.error('FAIL ' + what + (x === undefined ? '' : ': ' + JSON.stringify(x))); process.exit(1); };

const fn = (name, params) => ({ type: 'function', function: { name, description: name, parameters: {
  type: 'object', properties: Object.fromEntries(params.map(([p, t]) => [p, { type: t }])), required: params.map(([p]) => p) } } });
const tools = [fn('calc__add', [['a', 'number'], ['b', 'number']]), fn('calc__mul', [['a', 'number'], ['b', 'number']]),
  fn('notes__write', [['text', 'string']])];
const offered = new Set(tools.map(t => t.function.name));
const task = 'Calculate 7 + 5, then write it into the notes. Answer with the final value.';
const counts = { models: 0, completions: 0, tool_calls: 0, contents: 0, lengths: 0 };

const models = await client.models.list();
if (!models.data.some(m => m.id === model && m.object === 'model')) fail('GET /v1/models does not list ' + model, models.data);
counts.models = models.data.length;

function check(r, mustCall, mustNotCall) {
  counts.completions++;
  if (r.object !== 'chat.completion' || r.model !== model || !r.id) fail('not a chat completion', r);
  if (r.choices.length !== 1) fail('one choice expected', r);
  const c = r.choices[0], m = c.message;
  if (m.role !== 'assistant') fail('role', m);
  if (!(r.usage.prompt_tokens > 0) || r.usage.total_tokens !== r.usage.prompt_tokens + r.usage.completion_tokens) fail('usage', r.usage);
  if (m.tool_calls && m.tool_calls.length > 0) {
    if (mustNotCall) fail('tool_choice none, yet a tool call', m);
    if (c.finish_reason !== 'tool_calls') fail('finish_reason of a tool call', c);
    for (const call of m.tool_calls) {
      if (call.type !== 'function' || !call.id) fail('tool call shape', call);
      if (!offered.has(call.function.name)) fail('a tool that was not offered', call);
      const args = JSON.parse(call.function.arguments);
      if (args === null || typeof args !== 'object' || Array.isArray(args)) fail('arguments are not a JSON object', call);
    }
    counts.tool_calls++;
    return m.tool_calls[0];
  }
  if (typeof m.content !== 'string') fail('neither tool calls nor content', m);
  if (c.finish_reason === 'length') counts.lengths++;
  else if (c.finish_reason !== 'stop') fail('finish_reason of content', c);
  else if (mustCall) fail('tool_choice forces a call, yet content', c);
  counts.contents++;
  return null;
}

const messages = [{ role: 'system', content: 'You are a careful agent.' }, { role: 'user', content: task }];
for (const tool_choice of ['auto', 'required', { type: 'function', function: { name: 'calc__add' } }]) {
  for (const temperature of [0, 1]) {
    const r = await client.chat.completions.create({ model, messages, tools, tool_choice, temperature, seed: 7, max_tokens: 32 });
    const call = check(r, tool_choice !== 'auto', false);
    if (typeof tool_choice === 'object' && call && call.function.name !== 'calc__add') fail('tool_choice named calc__add', call);
  }
}
// a conversation under way: the call and its result come back in the messages
const first = await client.chat.completions.create({ model, messages, tools, tool_choice: 'required', temperature: 0, seed: 1 });
const call = check(first, true, false);
if (call) {
  const next = await client.chat.completions.create({ model, tools, temperature: 0, seed: 1, messages: [...messages,
    { role: 'assistant', content: null, tool_calls: [call] }, { role: 'tool', tool_call_id: call.id, content: '12' }] });
  check(next, false, false);
}
check(await client.chat.completions.create({ model, messages, tools, tool_choice: 'none', seed: 3 }), false, true);
check(await client.chat.completions.create({ model, messages: [{ role: 'user', content: task }] }), false, true); // no tools: content

try {
  await client.chat.completions.create({ model: 'no-such-model', messages });
  fail('an unknown model was accepted');
} catch (e) {
  if (!(e instanceof OpenAI.NotFoundError) || e.status !== 404 || e.code !== 'model_not_found') fail('unknown model: ' + e);
}
console.log(JSON.stringify(counts));
