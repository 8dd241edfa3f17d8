// Prompt-prefix reuse in the engine: KV rows of a prefilled prompt are copied into later prompts that
// start the same way, and generation is unchanged by it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heapStats } from '../src/kernels/memory.js';
import { KVCache, KVSnapshot } from '../src/model/cache.js';
import { presetConfig, type PresetName } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import { Engine, type EngineOptions, type GenerationResult } from '../src/infer/index.js';
import { PrefixCache } from '../src/infer/prefix-cache.js';
import type { DType } from '../src/tensor/index.js';
import type { Tokenizer } from '../src/tokenizer/index.js';
import { fixtureTokenizer } from './serve-fixture.js';

const GREEDY = { temperature: 0, maxTokens: 12, stopTokenIds: [] };

/** n token ids from a seed, avoiding the special ids at the bottom of the vocabulary. */
function tokens(n: number, seed: number, V: number): number[] {
  return Array.from({ length: n }, (_, i) => 10 + ((i * 37 + seed * 101 + ((i * i * seed) % 13)) % (V - 10)));
}

function run(engine: Engine, prompt: number[], opts = GREEDY): Promise<GenerationResult> {
  return engine.submit(prompt, opts).result;
}

/** Bytes one token takes in the prefix cache. */
function bytesPerToken(model: CausalLM): number {
  const c = model.newCache();
  const w = c.keys.reduce((s, k, i) => s + k.width + (c.values[i]?.width ?? 0), 0);
  c.dispose();
  return w * (model.dtype === 'f64' ? 8 : 4);
}

/**
 * A random model whose attention is far from uniform: at the initial scale every score is near 0, and
 * wrong or stale cached keys would hardly change a log-prob.
 */
function model(tok: Tokenizer, preset: PresetName, dtype: DType): CausalLM {
  const m = new CausalLM(presetConfig(preset, { vocabSize: tok.vocabSize }), { seed: 11, dtype });
  for (const [name, t] of m.params.tensors) if (/(q_proj|k_proj|q_a_proj|q_b_proj|kv_a_proj_with_mqa)\.weight$/.test(name)) t.data.forEach((x, i, a) => (a[i] = 8 * x));
  return m;
}

function assertSame(a: GenerationResult, b: GenerationResult, what: string): void {
  assert.deepEqual(a.tokens, b.tokens, what);
  a.logprobs.forEach((lp, t) => assert.ok(Math.abs(lp - b.logprobs[t]) < 1e-4, `${what}: token ${t} log-prob ${lp} vs ${b.logprobs[t]}`));
}

for (const [preset, dtype] of [['nano-dense', 'f32'], ['nano-dense', 'f64'], ['nano', 'f32'], ['nano', 'f64']] as const) {
  test(`prefix cache (${preset}, ${dtype}): reused rows give the same greedy tokens as a full prefill; stats count them`, async () => {
    const tok = await fixtureTokenizer();
    const m = model(tok, preset, dtype);
    const V = m.config.vocab_size;
    // A 45-token "system prompt" longer than the 16-token prefill chunk, so the reused rows end
    // mid-chunk and prefilling resumes there; then prompts that go on differently.
    const system = tokens(45, 1, V);
    const first = [...system, ...tokens(20, 2, V)];
    const second = [...system, ...tokens(30, 3, V)];
    const opts: EngineOptions = { prefillChunk: 16, prefillBudget: 64 };
    const off = new Engine(m, tok, { ...opts, prefixCache: { maxBytes: 0 } });
    const on = new Engine(m, tok, opts);

    const firstOn = await run(on, first);
    assert.equal(firstOn.cachedPromptTokens, 0);
    assertSame(firstOn, await run(off, first), 'first prompt');
    assert.deepEqual([on.stats().prefixCacheEntries, on.stats().prefixCacheBytes], [1, first.length * bytesPerToken(m)]);

    const secondOn = await run(on, second);
    assert.equal(secondOn.cachedPromptTokens, system.length);
    assert.equal(secondOn.promptTokens, second.length);
    assertSame(secondOn, await run(off, second), 'second prompt, its system prompt reused');
    const s = on.stats();
    assert.equal(s.cachedPromptTokens, system.length);
    assert.equal(s.promptTokens, first.length + second.length, 'promptTokens counts reused tokens too');
    assert.equal(s.prefixCacheEntries, 2);

    // The same prompt again: all rows but the last token's are reused.
    const again = await run(on, second);
    assert.equal(again.cachedPromptTokens, second.length - 1);
    assertSame(again, secondOn, 'a prompt identical to a kept one');
    assert.equal(on.stats().prefixCacheEntries, 2, 'a prompt already kept is not kept twice');

    // Several at once, alongside a prompt sharing nothing, each its own mix of copied and new rows.
    const batch = [second, [...system, ...tokens(5, 4, V)], tokens(50, 5, V), [...first, ...tokens(40, 6, V)]];
    const together = await Promise.all(batch.map((p) => run(on, p)));
    const alone = await Promise.all(batch.map((p) => run(off, p)));
    assert.deepEqual(together.map((r) => r.cachedPromptTokens), [second.length - 1, system.length, 0, first.length]);
    together.forEach((r, i) => assertSame(r, alone[i], `batch ${i}`));
    assert.equal(off.stats().cachedPromptTokens, 0);
    assert.equal(off.stats().prefixCacheEntries, 0, 'maxBytes 0 keeps nothing');
    await Promise.all([on.close(), off.close()]);
  });
}

test('prefix cache: prompts arriving together wait for one of them to prefill the part they share', async () => {
  const tok = await fixtureTokenizer();
  const m = model(tok, 'nano', 'f32');
  const V = m.config.vocab_size;
  const on = new Engine(m, tok, { prefillChunk: 16 });
  const off = new Engine(m, tok, { prefillChunk: 16, prefixCache: { maxBytes: 0 } });
  const both = async (prompts: number[][]): Promise<GenerationResult[]> => {
    const [a, b] = await Promise.all([Promise.all(prompts.map((p) => run(on, p))), Promise.all(prompts.map((p) => run(off, p)))]);
    a.forEach((r, i) => assertSame(r, b[i], `prompt ${i}`));
    return a;
  };
  // GRPO's G samples of one prompt: the first prefills it, the others copy all but its last token.
  const prompt = tokens(40, 1, V);
  assert.deepEqual((await both([prompt, prompt, prompt, prompt])).map((r) => r.cachedPromptTokens), [0, 39, 39, 39]);
  const s = on.stats();
  assert.equal(s.promptTokens - s.cachedPromptTokens, 40 + 3, 'tokens run through the model');

  // A shared system prompt: the longer prompt waits for the shorter one...
  const system = tokens(45, 2, V);
  const short = [...system, ...tokens(5, 3, V)];
  const long = [...system, ...tokens(60, 4, V)];
  assert.deepEqual((await both([short, long])).map((r) => r.cachedPromptTokens), [0, system.length]);
  // ...but not the other way round: waiting would delay the short one's answer.
  on.clearPrefixCache();
  assert.deepEqual((await both([long, short])).map((r) => r.cachedPromptTokens), [0, 0]);
  await Promise.all([on.close(), off.close()]);
});

test('prefix cache: the byte budget evicts the least recently used prompt; too large or too short ones are not kept', async () => {
  const tok = await fixtureTokenizer();
  const m = model(tok, 'nano-dense', 'f32');
  const V = m.config.vocab_size;
  const per = bytesPerToken(m);
  const [a, b, c] = [1, 2, 3].map((seed) => tokens(40, seed, V));
  // Room for two 40-token prompts, or a 40- and a 41-token one, not three.
  const engine = new Engine(m, tok, { prefixCache: { maxBytes: 90 * per } });
  const held = (): number[] => [engine.stats().prefixCacheEntries, engine.stats().prefixCacheBytes / per];
  await run(engine, a);
  await run(engine, b);
  assert.deepEqual(held(), [2, 80]);
  // a is used again (a prefix of it, so nothing new is kept): now b is the least recently used...
  assert.equal((await run(engine, a.slice(0, 30))).cachedPromptTokens, 29);
  assert.deepEqual(held(), [2, 80]);
  // ...and c's arrival evicts it.
  await run(engine, c);
  assert.deepEqual(held(), [2, 80]);
  assert.equal((await run(engine, [...b, 7])).cachedPromptTokens, 0, 'b was evicted');
  assert.deepEqual(held(), [2, 81], '[...b, 7] evicted a');
  assert.equal((await run(engine, [...c, 7])).cachedPromptTokens, 40);
  assert.deepEqual(held(), [2, 82], '[...c, 7] extends c and replaced it, evicting nothing else');

  const small = new Engine(m, tok, { prefixCache: { maxBytes: 30 * per } });
  await run(small, a);
  assert.equal(small.stats().prefixCacheEntries, 0, 'a prompt larger than the whole budget is not kept');
  const picky = new Engine(m, tok, { prefixCache: { minTokens: 41 } });
  await run(picky, a);
  assert.equal(picky.stats().prefixCacheEntries, 0, 'a prompt shorter than minTokens could never be reused');
  await run(picky, [...a, ...a]);
  assert.equal((await run(picky, [...a, 5, 6])).cachedPromptTokens, 0, 'a 40-token match is below minTokens');
  engine.clearPrefixCache();
  assert.deepEqual([engine.stats().prefixCacheEntries, engine.stats().prefixCacheBytes], [0, 0]);
  assert.throws(() => new Engine(m, tok, { prefixCache: { maxBytes: -1 } }), /maxBytes/);
  assert.throws(() => new Engine(m, tok, { prefixCache: { minTokens: 0 } }), /minTokens/);
  await Promise.all([engine.close(), small.close(), picky.close()]);
});

test('prefix cache: kept rows live outside the WASM heap; sequences still free all of theirs', async () => {
  const tok = await fixtureTokenizer();
  const m = model(tok, 'nano', 'f32');
  const engine = new Engine(m, tok);
  const prompt = tokens(60, 1, m.config.vocab_size);
  await run(engine, tokens(60, 2, m.config.vocab_size)); // warm the allocator's free lists
  const before = heapStats().liveBytes;
  await run(engine, prompt);
  await run(engine, [...prompt.slice(0, 50), 3, 4]);
  assert.equal(engine.stats().cachedPromptTokens, 50);
  assert.equal(heapStats().liveBytes, before);
  await engine.close();
});

test('KVCache snapshot and restore: exact copies of the first rows, f32 and f64, checked shapes', () => {
  for (const dtype of ['f32', 'f64'] as const) {
    const src = new KVCache(2, 3, 2, dtype);
    const n = 40; // beyond the initial capacity of 16 rows
    src.keys.forEach((k) => k.reserve(n, 0));
    src.values.forEach((v) => v!.reserve(n, 0));
    src.keys.forEach((k, l) => k.data.subarray(0, n * 3).forEach((_, i, a) => (a[i] = l * 1000 + i + 0.25)));
    src.values.forEach((v, l) => v!.data.subarray(0, n * 2).forEach((_, i, a) => (a[i] = -(l * 1000 + i + 0.5))));
    src.length = n;
    const snap = src.snapshot();
    assert.equal(snap.bytes, src.bytes());
    assert.ok(!(snap.keys[0].buffer instanceof SharedArrayBuffer), 'a snapshot is not a view on the WASM heap');
    src.keys[0].data[0] = 99; // the snapshot is a copy
    assert.equal(snap.keys[0][0], 0.25);

    const dst = new KVCache(2, 3, 2, dtype);
    dst.restore(snap, 33);
    assert.equal(dst.length, 33);
    for (let l = 0; l < 2; l++) {
      assert.deepEqual(Array.from(dst.keys[l].rows(33)), Array.from(snap.keys[l].subarray(0, 33 * 3)));
      assert.deepEqual(Array.from(dst.values[l]!.rows(33)), Array.from(snap.values[l]!.subarray(0, 33 * 2)));
    }
    assert.throws(() => dst.restore(snap, 41), /outside/);
    assert.throws(() => src.snapshot(41), /outside/);
    const other = dtype === 'f32' ? 'f64' : 'f32';
    assert.throws(() => new KVCache(2, 3, 2, other).restore(snap), /another shape or dtype/);
    assert.throws(() => new KVCache(2, 3, 0, dtype).restore(snap), /another shape or dtype/);
    src.dispose();
    dst.dispose();
  }
});

test('PrefixCache: longest match wins; covered prompts are not kept twice, extended ones replaced', () => {
  const snap = (n: number): KVSnapshot => new KVSnapshot(n, [new Float64Array(n)], [null]);
  const pc = new PrefixCache(1000, 3);
  pc.store([1, 2, 3, 4], 32, () => snap(4));
  pc.store([1, 2, 3, 4, 5, 6], 48, () => snap(6));
  assert.equal(pc.size, 1, '[1..6] extends [1..4]');
  pc.store([1, 2, 3], 24, () => assert.fail('covered by [1..6]: nothing to copy'));
  pc.store([1, 2, 9, 9], 32, () => snap(4));
  assert.deepEqual([pc.size, pc.bytes], [2, 80]);
  assert.equal(pc.lookup([1, 2, 3, 4, 5, 7])?.rows, 5);
  assert.equal(pc.lookup([1, 2, 3, 4, 5, 6])?.rows, 5, 'the last prompt token is always prefilled');
  assert.equal(pc.lookup([1, 2, 9, 9, 9])?.snapshot.length, 4);
  assert.equal(pc.lookup([1, 2, 8]), null, 'below minTokens');
  assert.equal(pc.lookup([7, 7, 7, 7]), null);
});

test('KVCache capacity: room for the given rows up front, growth by doubling past them keeps the rows', () => {
  const c = new KVCache(2, 3, 2, 'f32', 100);
  assert.equal(c.keys[0].capacity, 100);
  assert.equal(c.values[1]!.capacity, 100);
  const before = c.keys[0].data;
  c.keys[0].reserve(100, 0);
  assert.equal(c.keys[0].data, before, 'no new buffer while the rows fit');
  before.fill(7);
  c.keys[0].reserve(101, 100);
  assert.equal(c.keys[0].capacity, 200);
  assert.deepEqual([...new Set(c.keys[0].rows(100))], [7], 'the first 100 rows survive growth');
  c.dispose();
});
