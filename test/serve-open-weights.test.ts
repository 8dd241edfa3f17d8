// The files users download, served: a GGUF (Q4_K_M, as Ollama's deepseek-r1:1.5b) and a Hugging Face
// directory (BF16) with DeepSeek-R1-Distill-Qwen-1.5B's exact shape — full 1536 width, 151936-token
// vocabulary, its tokenizer and chat template — but 2 of its 28 layers and random weights, so the
// test runs in seconds. `nanoseek serve --model <path>` answers with the DeepSeek chat format; the
// 2025-02 template revision opens "<think>\n" itself, so the reply is reasoning until "</think>"
// (which a random model never writes), while with the original revision the same reply is content.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { r1DistillQwen15B, r1DistillTemplate, r1DistillTokenizerFiles, writeRandomGguf } from '../bench/open-weights.js';
import { convertModel } from '../src/io/convert.js';
import { loadTokenizer } from '../src/tokenizer/index.js';
import { startServe } from './serve-fixture.js';

let dir: string;
let gguf: string;
let hf: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nanoseek-open-weights-'));
  gguf = join(dir, 'DeepSeek-R1-Distill-Qwen-1.5B-2layers-Q4_K_M.gguf');
  hf = join(dir, 'r1-distill-hf');
  await writeRandomGguf(gguf, 'q4_k_m', { config: r1DistillQwen15B(2), tokenizer: await r1DistillTokenizerFiles('2025-02'), seed: 3 });
  await convertModel(gguf, hf, { type: 'bf16' });
  // The directory carries the original template revision, which does not open the think block.
  const cfgPath = join(hf, 'tokenizer_config.json');
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as Record<string, unknown>;
  await writeFile(cfgPath, JSON.stringify({ ...cfg, chat_template: await r1DistillTemplate('2025-01') }));
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs `nanoseek serve --model path`, hands its URL to fn, then stops it with SIGTERM. */
async function serving<R>(path: string, fn: (url: string) => Promise<R>): Promise<R> {
  const server = await startServe(path);
  try {
    const result = await fn(server.url);
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0, server.stderr());
    return result;
  } finally {
    server.child.kill('SIGKILL');
  }
}

async function chat(url: string): Promise<{ model: Record<string, any>; reply: Record<string, any> }> {
  const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> };
  const id = models.data[0].id;
  const model = (await (await fetch(`${url}/v1/models/${id}`)).json()) as Record<string, any>;
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: id, messages: [{ role: 'user', content: 'What is 1 + 1?' }], max_tokens: 4, temperature: 0 }),
  });
  assert.equal(res.status, 200);
  return { model, reply: (await res.json()) as Record<string, any> };
}

test('a Q4_K_M GGUF of the R1-Distill-Qwen-1.5B shape serves: DeepSeek template, the reply inside the think block the template opened', async () => {
  const { model, reply } = await serving(gguf, chat);
  assert.equal(model.id, 'DeepSeek-R1-Distill-Qwen-1.5B-2layers-Q4_K_M');
  assert.equal(model.architecture, 'Qwen2ForCausalLM');
  const message = reply.choices[0].message;
  assert.equal(reply.choices[0].finish_reason, 'length');
  assert.equal(message.content, '', 'nothing after </think> yet');
  assert.ok(typeof message.reasoning_content === 'string' && message.reasoning_content.length > 0, 'the reply is reasoning');
  // <｜begin▁of▁sentence｜><｜User｜>What is 1 + 1?<｜Assistant｜><think>\n
  const tokenizer = await loadTokenizer(join(hf, 'tokenizer.json'));
  const prompt = '<｜begin▁of▁sentence｜><｜User｜>What is 1 + 1?<｜Assistant｜><think>\n';
  assert.equal(reply.usage.prompt_tokens, tokenizer.encode(prompt).length);
  assert.equal(reply.usage.completion_tokens_details.reasoning_tokens, 4);
});

test('the same model as a BF16 Hugging Face directory with the original template: the reply is content', async () => {
  const { model, reply } = await serving(hf, chat);
  assert.equal(model.id, 'r1-distill-hf');
  const message = reply.choices[0].message;
  assert.equal(message.reasoning_content ?? '', '');
  assert.ok(message.content.length > 0);
  const tokenizer = await loadTokenizer(join(hf, 'tokenizer.json'));
  assert.equal(reply.usage.prompt_tokens, tokenizer.encode('<｜begin▁of▁sentence｜><｜User｜>What is 1 + 1?<｜Assistant｜>').length);
});
