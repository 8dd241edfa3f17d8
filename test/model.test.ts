// DeepSeek-V3 and dense models: whole-model gradients, cached decoding against the full forward, and
// auxiliary-loss-free load balancing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { presetConfig, type ModelConfig } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import { noise } from './helpers.js';

function tokens(n: number, vocab: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.floor(((noise(i, seed) + 1) / 2) * vocab) % vocab);
}

test('whole nano DeepSeek-V3 model (MLA, MoE, MTP, balance loss): every parameter against finite differences', () => {
  const cfg = presetConfig('nano', { vocabSize: 96, mtp: true });
  const model = new CausalLM(cfg, { dtype: 'f64', seed: 1 });
  // Larger than default init so every path carries signal well above float64 round-off.
  for (const t of model.params.trainable()) if (t.rank === 2) for (let i = 0; i < t.size; i++) t.data[i] *= 10;
  const B = 2, Tn = 5;
  const ids = tokens(B * Tn, 96, 3);
  const targets = tokens(B * Tn, 96, 4);
  targets[3] = T.IGNORE_INDEX;
  const params = model.params.trainable();
  const r = T.gradcheck(() => model.loss(ids, targets, B, Tn, { mtpWeight: 0.3, balanceAlpha: 0.01 }).loss, params, { samplesPerInput: 2, eps: 1e-5 });
  assert.ok(r.checked >= params.length * 2 - 10, `checked ${r.checked}`);
  assert.ok(r.maxError < 1e-5, `max error ${r.maxError} in ${r.worst.name}[${r.worst.index}]: analytic ${r.worst.analytic}, numeric ${r.worst.numeric}`);
});

test('dense Qwen2 model (GQA, q/k/v bias): every parameter against finite differences', () => {
  const cfg = presetConfig('nano-dense', { vocabSize: 64, denseFamily: 'qwen2' });
  const model = new CausalLM(cfg, { dtype: 'f64', seed: 2 });
  for (const t of model.params.trainable()) for (let i = 0; i < t.size; i++) t.data[i] = t.rank === 2 ? t.data[i] * 10 : t.data[i] + 0.1 * noise(i, 5);
  const ids = tokens(6, 64, 6), targets = tokens(6, 64, 7);
  const r = T.gradcheck(() => model.loss(ids, targets, 1, 6).loss, model.params.trainable(), { samplesPerInput: 3, eps: 1e-5 });
  assert.ok(r.maxError < 1e-5, `max error ${r.maxError} in ${r.worst.name}`);
});

function decodeMatchesFull(cfg: ModelConfig, seed: number): void {
  const model = new CausalLM(cfg, { seed });
  const n = 64;
  const ids = tokens(n, cfg.vocab_size, seed + 10);
  const full = T.noGrad(() => T.tidy(() => Array.from(model.forward(ids, 1, n).logits.data)));
  const V = cfg.vocab_size;
  // Token by token through the cache.
  const cache = model.newCache();
  let worst = 0;
  for (let t = 0; t < n; t++) {
    const row = T.noGrad(() => T.tidy(() => Array.from(model.forwardCached([{ ids: [ids[t]], cache }]).data)));
    for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs(row[i] - full[t * V + i]));
  }
  assert.ok(worst <= 1e-4, `${cfg.model_type}: cached decoding differs from the full forward by ${worst}`);
  assert.equal(cache.length, n);
  // A prefill chunk followed by decode steps, batched with an unrelated sequence: same logits.
  const a = model.newCache(), b = model.newCache();
  const other = tokens(9, V, seed + 20);
  T.noGrad(() => T.tidy(() => model.forwardCached([{ ids: ids.slice(0, 40), cache: a }, { ids: other, cache: b }])));
  let worstBatched = 0;
  for (let t = 40; t < n; t++) {
    const rows = T.noGrad(() => T.tidy(() => Array.from(model.forwardCached([{ ids: [ids[t]], cache: a }, { ids: [other[t % 9]], cache: b }]).data)));
    for (let i = 0; i < V; i++) worstBatched = Math.max(worstBatched, Math.abs(rows[i] - full[t * V + i]));
  }
  assert.ok(worstBatched <= 1e-4, `${cfg.model_type}: batched prefill + decode differs by ${worstBatched}`);
  cache.dispose();
  a.dispose();
  b.dispose();
}

test('absorbed-MLA decoding with the latent cache equals the naive full forward over 64 tokens', () => {
  decodeMatchesFull(presetConfig('nano', { vocabSize: 256 }), 11);
  decodeMatchesFull(presetConfig('micro', { vocabSize: 256 }), 12); // with q-LoRA
});

test('dense decoding with the KV cache equals the full forward over 64 tokens (Llama, Qwen2)', () => {
  decodeMatchesFull(presetConfig('nano-dense', { vocabSize: 256 }), 13);
  decodeMatchesFull(presetConfig('nano-dense', { vocabSize: 256, denseFamily: 'qwen2' }), 14);
});

test('the MLA cache holds kv_lora_rank + qk_rope_head_dim numbers per token per layer', () => {
  const cfg = presetConfig('nano', { vocabSize: 64 });
  const model = new CausalLM(cfg, { seed: 1 });
  const cache = model.newCache();
  T.noGrad(() => T.tidy(() => model.forwardCached([{ ids: [1, 2, 3], cache }])));
  assert.equal(cfg.model_type, 'deepseek_v3');
  if (cfg.model_type !== 'deepseek_v3') return;
  assert.equal(cache.bytes(), 3 * cfg.num_hidden_layers * (cfg.kv_lora_rank + cfg.qk_rope_head_dim) * 4);
  cache.dispose();
});

test('bias updates balance a router skewed toward two experts; gate weights stay the raw scores', () => {
  const cfg = presetConfig('nano', { vocabSize: 64 });
  const model = new CausalLM(cfg, { seed: 5 });
  const moe = model.moeLayers()[0];
  const D = cfg.hidden_size, N = 256;
  const x = T.fromArray(Array.from({ length: N * D }, (_, i) => noise(i, 77) + 0.5), [N, D]);
  // Experts 0 and 5 (different groups) align with the inputs' common direction: they win every token.
  const g = moe.gate.data;
  for (const e of [0, 5]) for (let i = 0; i < D; i++) g[e * D + i] = 0.05;
  const imbalance = (): number => {
    T.tidy(() => moe.forward(x));
    const load = moe.lastLoad;
    return Math.max(...load) / (load.reduce((s, v) => s + v, 0) / moe.E);
  };
  const before = T.noGrad(imbalance);
  assert.ok(before > 3, `the skew should concentrate load (max/mean ${before})`);
  for (let step = 0; step < 300; step++) {
    T.tidy(() => moe.forward(x)); // grad mode on: counts accumulate as in training
    T.clearTape();
    moe.updateBias(0.002);
  }
  const after = T.noGrad(imbalance);
  assert.ok(after < 1.3, `max/mean load after bias updates is ${after} (was ${before})`);
  // The weights are the raw sigmoid scores of the chosen experts, normalised and scaled — no bias in them.
  T.noGrad(() => T.tidy(() => {
    const r = moe.forward(x);
    const scores = moe.scores(x).data;
    const K = moe.K;
    for (const n of [0, 17, 300]) {
      const chosen = Array.from(r.indices.subarray(n * K, n * K + K));
      const raw = chosen.map((e) => scores[n * moe.E + e]);
      const sum = raw.reduce((s, v) => s + v, 0);
      chosen.forEach((_, j) => assert.ok(Math.abs(r.weights.data[n * K + j] - (raw[j] / sum) * 2.5) < 1e-5));
    }
  }));
});

test('model tensor names are exactly the Hugging Face names config.json implies, and save → load is bit-exact', async () => {
  const { expectedTensors } = await import('../src/model/config.js');
  const { saveModel, loadModel } = await import('../src/io/model-file.js');
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'nanoseek-model-'));
  try {
    for (const cfg of [presetConfig('nano', { vocabSize: 64, mtp: true }), presetConfig('nano-dense', { vocabSize: 64, denseFamily: 'qwen2' })]) {
      const model = new CausalLM(cfg, { seed: 9 });
      assert.deepEqual([...model.params.tensors.keys(), ...model.aliases().keys()].sort(), expectedTensors(cfg).map((t) => t.name).sort());
      for (const m of model.moeLayers()) m.bias!.data.set(Array.from({ length: m.E }, (_, i) => noise(i, 1) * 0.01));
      await saveModel(model, join(dir, cfg.model_type));
      const { model: back } = await loadModel(join(dir, cfg.model_type));
      for (const [name, t] of model.params.tensors) {
        const u = back.params.get(name);
        assert.deepEqual(new Uint32Array(u.data.buffer, u.data.byteOffset, u.size), new Uint32Array(t.data.buffer, t.data.byteOffset, t.size), name);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('routing: greedy top-k ignores groups; group-limited methods keep only the best groups', () => {
  const base = presetConfig('nano', { vocabSize: 32 });
  if (base.model_type !== 'deepseek_v3') throw new Error('nano is DeepSeek-V3');
  // 16 experts in 4 groups of 4; the four best experts sit in two different groups, and a third group
  // holds the next best. Keeping 1 group must confine the choice; greedy must not.
  const scores = [0.9, 0.8, 0.1, 0.1, 0.85, 0.84, 0.1, 0.1, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1];
  const pick = (topk_method: 'greedy' | 'group_limited_greedy'): number[] => {
    const cfg = { ...base, topk_method, scoring_func: 'softmax' as const, topk_group: 1, n_group: 4 };
    const moe = new CausalLM(cfg, { seed: 1 }).moeLayers()[0];
    return Array.from(moe.select(scores, 1)).sort((a, b) => a - b);
  };
  assert.deepEqual(pick('greedy'), [0, 1, 4, 5]);
  assert.deepEqual(pick('group_limited_greedy'), [0, 1, 2, 3]); // group 1 (0.9) beats group 2 (0.85)
});
