// The OpenAI-compatible server, in process: the official `openai` client against it, every kind of
// bad request, the busy limit, client disconnects and the API key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import OpenAI from 'openai';
import type { CausalLM } from '../src/model/model.js';
import { InferenceServer, type ServerOptions } from '../src/serve/server.js';
import type { Tokenizer } from '../src/tokenizer/index.js';
import { fixtureTokenizer, randomModel, SCRIPT, scriptedModel } from './serve-fixture.js';

const MODEL = 'nano-test';

async function start(model: CausalLM, tokenizer: Tokenizer, extra: Partial<ServerOptions> = {}): Promise<{ server: InferenceServer; url: string }> {
  const server = new InferenceServer({ model, tokenizer, modelId: MODEL, ...extra });
  const { port } = await server.listen(0);
  return { server, url: `http://127.0.0.1:${port}` };
}

async function post(url: string, path: string, body: string | object, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(url + path, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

const ASK = [{ role: 'user' as const, content: 'What is 2+2?' }];

test('the openai client: chat with reasoning_content (plain and streamed), text completions, models', async () => {
  const tok = await fixtureTokenizer();
  const { server, url } = await start(scriptedModel(tok), tok);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  try {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), [MODEL]);
    const info = (await client.models.retrieve(MODEL)) as unknown as Record<string, any>;
    assert.equal(info.architecture, 'DeepseekV3ForCausalLM');
    assert.ok(info.parameters.total > info.parameters.active);
    assert.equal(info.context_length, 512);

    const r = await client.chat.completions.create({ model: MODEL, messages: ASK, temperature: 0 });
    const message = r.choices[0].message as typeof r.choices[0]['message'] & { reasoning_content?: string };
    assert.equal(message.content, SCRIPT.content);
    assert.equal(message.reasoning_content, SCRIPT.reasoning);
    assert.equal(r.choices[0].finish_reason, 'stop');
    const completionTokens = tok.encode(SCRIPT.completion).length + 1; // and EOS
    assert.equal(r.usage?.completion_tokens, completionTokens);
    assert.equal(r.usage?.total_tokens, r.usage!.prompt_tokens + completionTokens);
    // "Two and two make four." is 9 tokens, then </think>.
    assert.equal(r.usage?.completion_tokens_details?.reasoning_tokens, 10);

    const stream = await client.chat.completions.create({ model: MODEL, messages: ASK, stream: true, temperature: 0.6, seed: 3 });
    let reasoning = '';
    let content = '';
    let chunks = 0;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string | null } | undefined;
      if (delta?.reasoning_content) {
        assert.equal(content, '', 'reasoning deltas come before content deltas');
        reasoning += delta.reasoning_content;
      }
      if (delta?.content) content += delta.content;
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
      chunks++;
    }
    assert.equal(reasoning, SCRIPT.reasoning);
    assert.equal(content, SCRIPT.content);
    assert.ok(chunks > 10, `streamed in ${chunks} chunks`);
    assert.equal(finish, 'stop');
    assert.equal(usage?.completion_tokens_details?.reasoning_tokens, 10);

    // A stop string ends the reasoning early; there is no answer.
    const cut = await client.chat.completions.create({ model: MODEL, messages: ASK, stop: ['four'], temperature: 0 });
    assert.deepEqual([cut.choices[0].message.content, (cut.choices[0].message as { reasoning_content?: string }).reasoning_content], ['', 'Two and two make']);

    const c = await client.completions.create({ model: MODEL, prompt: 'Two and', max_tokens: 5, temperature: 0 });
    assert.equal(c.choices[0].text, ' two make four');
    assert.equal(c.choices[0].finish_reason, 'length');
    let streamed = '';
    for await (const chunk of await client.completions.create({ model: MODEL, prompt: 'Two and', max_tokens: 5, temperature: 0, stream: true })) streamed += chunk.choices[0]?.text ?? '';
    assert.equal(streamed, ' two make four');

    // Chats with one system prompt: the second copies its KV rows (OpenAI's cached_tokens says how many).
    const system = { role: 'system' as const, content: 'A reasoning model thinks before it answers: it works through the problem, then states the result.' };
    const first = await client.chat.completions.create({ model: MODEL, messages: [system, ...ASK], temperature: 0 });
    const second = await client.chat.completions.create({ model: MODEL, messages: [system, { role: 'user', content: 'Count them.' }], temperature: 0 });
    assert.equal(second.choices[0].message.content, SCRIPT.content);
    assert.equal(first.usage?.prompt_tokens_details?.cached_tokens, 0);
    const cached = second.usage?.prompt_tokens_details?.cached_tokens ?? 0;
    assert.ok(cached >= 16 && cached < second.usage!.prompt_tokens, `${cached} of ${second.usage!.prompt_tokens} prompt tokens cached`);

    const page = await fetch(url);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await page.text(), /<title>nanoseek chat<\/title>/);
    const health = (await (await fetch(`${url}/health`)).json()) as Record<string, unknown>;
    assert.equal(health.status, 'ok');
    assert.equal(health.running, 0);
    assert.ok((health.cached_prompt_tokens as number) >= cached);
  } finally {
    await server.close();
  }
});

test('bad requests get a 4xx naming the field, and the server keeps serving', async () => {
  const tok = await fixtureTokenizer();
  const { server, url } = await start(scriptedModel(tok), tok, { maxTokens: 300 });
  const chat = (extra: object) => ({ model: MODEL, messages: ASK, ...extra });
  const cases: [string, string | object, number, string | null, RegExp][] = [
    ['/v1/chat/completions', '{"messages": [', 400, null, /malformed JSON/],
    ['/v1/chat/completions', '', 400, null, /empty/],
    ['/v1/chat/completions', '[1, 2]', 400, null, /JSON object/],
    ['/v1/chat/completions', { model: MODEL }, 400, 'messages', /required/],
    ['/v1/chat/completions', chat({ messages: 'hi' }), 400, 'messages', /array/],
    ['/v1/chat/completions', chat({ messages: [] }), 400, 'messages', /empty/],
    ['/v1/chat/completions', chat({ messages: [null] }), 400, 'messages[0]', /object/],
    ['/v1/chat/completions', chat({ messages: [{ role: 'robot', content: 'x' }] }), 400, 'messages[0].role', /unknown role/],
    ['/v1/chat/completions', chat({ messages: [{ role: 'user', content: 5 }] }), 400, 'messages[0].content', /string/],
    ['/v1/chat/completions', chat({ messages: [{ role: 'user', content: [{ type: 'image_url' }] }] }), 400, 'messages[0].content[0]', /text parts/],
    ['/v1/chat/completions', chat({ temperature: 3 }), 400, 'temperature', /\[0, 2\]/],
    ['/v1/chat/completions', chat({ temperature: 'hot' }), 400, 'temperature', /number/],
    ['/v1/chat/completions', chat({ top_p: 1.5 }), 400, 'top_p', /\[0, 1\]/],
    ['/v1/chat/completions', chat({ max_tokens: 0 }), 400, 'max_tokens', /\[1, 300\]/],
    ['/v1/chat/completions', chat({ max_tokens: 100000 }), 400, 'max_tokens', /\[1, 300\]/],
    ['/v1/chat/completions', chat({ max_tokens: 2.5 }), 400, 'max_tokens', /integer/],
    ['/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'word '.repeat(600) }] }), 400, 'messages', /maximum context length is 512/],
    ['/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'word '.repeat(150) }], max_tokens: 300 }), 400, 'max_tokens', /you requested/],
    ['/v1/chat/completions', chat({ stop: 5 }), 400, 'stop', /string/],
    ['/v1/chat/completions', chat({ stop: [''] }), 400, 'stop[0]', /non-empty/],
    ['/v1/chat/completions', chat({ stream: 'yes' }), 400, 'stream', /boolean/],
    ['/v1/chat/completions', chat({ n: 2 }), 400, 'n', /n = 1/],
    ['/v1/chat/completions', chat({ seed: 1.5 }), 400, 'seed', /integer/],
    ['/v1/chat/completions', chat({ tools: [{ type: 'function' }] }), 400, 'tools', /not supported/],
    ['/v1/chat/completions', chat({ model: 'gpt-4o' }), 404, 'model', /does not exist/],
    ['/v1/completions', { model: MODEL }, 400, 'prompt', /required/],
    ['/v1/completions', { model: MODEL, prompt: 5 }, 400, 'prompt', /string/],
    ['/v1/completions', { model: MODEL, prompt: [1, 2, 99999] }, 400, 'prompt[2]', /vocabulary/],
    ['/v1/completions', { model: MODEL, prompt: 'x', echo: true }, 400, 'echo', /not supported/],
    ['/v1/nothing', {}, 404, null, /no route/],
  ];
  try {
    for (const [path, body, status, param, message] of cases) {
      const r = await post(url, path, body);
      const what = `${path} ${typeof body === 'string' ? body : JSON.stringify(body).slice(0, 80)}`;
      assert.equal(r.status, status, what);
      assert.equal(r.json.error.param, param, what);
      assert.match(r.json.error.message, message, what);
      assert.equal(typeof r.json.error.type, 'string');
    }
    const wrongMethod = await fetch(`${url}/v1/chat/completions`);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get('allow'), 'POST');
    const unknownModel = await fetch(`${url}/v1/models/other`);
    assert.equal(unknownModel.status, 404);
    assert.equal(((await unknownModel.json()) as { error: { code: string } }).error.code, 'model_not_found');
    const huge = await post(url, '/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'x'.repeat(2 << 20) }] })).catch((err: Error) => ({ status: 0, json: err.message }));
    assert.ok(huge.status === 413 || huge.status === 0, `status ${huge.status}`); // the server may close before the client finishes sending

    const ok = await post(url, '/v1/chat/completions', chat({ temperature: 0 }));
    assert.equal(ok.status, 200);
    assert.equal(ok.json.choices[0].message.content, SCRIPT.content);
  } finally {
    await server.close();
  }
});

test('a full engine answers 429; a client that disconnects mid-stream is cancelled and the server keeps serving', async () => {
  const tok = await fixtureTokenizer();
  const { server, url } = await start(randomModel(tok, 2), tok, { engine: { maxConcurrent: 1, maxQueue: 0 } });
  try {
    const abort = new AbortController();
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: ASK, stream: true, ignore_eos: true }),
      signal: abort.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    assert.equal(server.engine.stats().running, 1);

    const busy = await post(url, '/v1/chat/completions', { messages: ASK });
    assert.equal(busy.status, 429);
    assert.equal(busy.json.error.code, 'server_busy');

    abort.abort();
    const deadline = Date.now() + 5000;
    while (server.engine.stats().running > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(server.engine.stats().running, 0, 'the disconnected stream was cancelled');
    const generated = server.engine.stats().generatedTokens;
    assert.ok(generated < 400, `stopped after ${generated} tokens, not at the context limit`);

    const after = await post(url, '/v1/chat/completions', { messages: ASK, max_tokens: 3 });
    assert.equal(after.status, 200);
    assert.equal(after.json.usage.completion_tokens <= 3, true);

    // A non-streaming client that goes away is cancelled as well.
    await new Promise<void>((resolve) => {
      const req = request(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' } });
      req.on('error', () => resolve());
      req.end(JSON.stringify({ messages: ASK, ignore_eos: true }));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 100);
    });
    const until = Date.now() + 5000;
    while (server.engine.stats().running > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(server.engine.stats().running, 0);
  } finally {
    await server.close();
  }
});

test('an API key is required on /v1 when set, and serving beyond loopback without one is refused', async () => {
  const tok = await fixtureTokenizer();
  const model = scriptedModel(tok);
  const { server, url } = await start(model, tok, { apiKey: 'sekret' });
  try {
    assert.equal((await fetch(`${url}/v1/models`)).status, 401);
    const wrong = await fetch(`${url}/v1/models`, { headers: { Authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
    assert.equal((await fetch(`${url}/health`)).status, 200);
    assert.equal((await fetch(url)).status, 200);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sekret', maxRetries: 0 });
    const r = await client.chat.completions.create({ model: MODEL, messages: ASK, temperature: 0 });
    assert.equal(r.choices[0].message.content, SCRIPT.content);
    await assert.rejects(new OpenAI({ baseURL: `${url}/v1`, apiKey: 'wrong', maxRetries: 0 }).models.list(), (err: unknown) => err instanceof OpenAI.AuthenticationError);
  } finally {
    await server.close();
  }
  const open = new InferenceServer({ model, tokenizer: tok, modelId: MODEL });
  await assert.rejects(open.listen(0, '0.0.0.0'), /refusing to serve on 0\.0\.0\.0 without an API key/);
});
