// GGUF files nanoseek writes, checked three ways: llama.cpp (node-llama-cpp's prebuilt binary) must
// load every one, and on the same token sequence nanoseek's next-token log-probabilities, llama.cpp's
// and an exact float64 forward pass read straight off the file (test/gguf-oracle.ts) are compared.
// - F32 files: nanoseek and llama.cpp agree to max |Δ log p| ≤ 1e-3 (llama.cpp's KV cache set to
//   F32; what remains is float32 summation order), and a trained model continues a prompt greedily
//   with the same 32 tokens in both.
// - Encoded files (F16, BF16, Q8_0 … Q4_K_M): nanoseek decodes the file exactly and computes in
//   float32, so it stays within float32 rounding of the exact forward (≤ 2e-3); llama.cpp rounds
//   activations to 8 bits for its quantized products and its KV cache to F16, so its distance to the
//   exact forward is larger and is bounded per type from measurements (with margin); nanoseek must be
//   at least as close to the exact forward as llama.cpp is.
// - The same files with the weights kept packed, as large models run: the native backend's quantized
//   products round activations to 8 bits as llama.cpp's do, so they are held to llama.cpp's bounds.
// Random weights make near-ties between tokens, so top-1 agreement is checked only against the
// exact forward and with type-dependent floors.
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getLlama, LlamaLogLevel, type Llama, type Token } from 'node-llama-cpp';
import { convertModel } from '../src/io/convert.js';
import { openGguf } from '../src/io/gguf.js';
import { loadModel, saveModel } from '../src/io/model-file.js';
import type { FileType } from '../src/io/quant-mix.js';
import { parseModelConfig, presetConfig, type ModelConfig } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import * as T from '../src/tensor/index.js';
import { packageRoot } from '../src/infer/index.js';
import { exactLogits, logSoftmax } from './gguf-oracle.js';
import { noise } from './helpers.js';

let llama: Llama;
let dir: string;
let tokenizerDir: string;

before(async () => {
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  dir = await mkdtemp(join(tmpdir(), 'nanoseek-gguf-parity-'));
  tokenizerDir = join(await packageRoot(), 'models', 'nano-r1zero');
});

after(async () => {
  await llama?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The shipped tokenizer's vocabulary (517): every test model uses it so files carry a real tokenizer. */
const V = 517;

const dense = (family: 'qwen2' | 'llama', extra: Record<string, unknown> = {}): ModelConfig =>
  parseModelConfig({ ...presetConfig('micro-dense', { vocabSize: V, denseFamily: family }), hidden_size: 256, intermediate_size: 512, num_hidden_layers: 2, ...extra });

// [label, config, weight scale]: random weights are scaled up from the training init so the logits
// spread and quantization error shows, but not so much that llama.cpp's 8-bit activations flip the
// V3-style router's near-tied choices (at ×3 they do, and its distance to the exact forward jumps
// 100-fold for every quantized type alike: chaos, not a format error).
const CASES: Array<[string, ModelConfig, number]> = [
  ['qwen2 (q/k/v biases, rotate-half RoPE)', dense('qwen2'), 2],
  [
    'llama (Llama 3.1 rope scaling → rope_freqs, q/k permuted)',
    dense('llama', { rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }),
    2,
  ],
  [
    'deepseek2 (V3 style: q-LoRA, sigmoid routing over groups with the correction bias, YaRN, shared expert)',
    parseModelConfig({
      ...presetConfig('micro', { vocabSize: V }),
      hidden_size: 256, num_hidden_layers: 3, first_k_dense_replace: 1, intermediate_size: 512, moe_intermediate_size: 256,
      q_lora_rank: 256, kv_lora_rank: 256, qk_nope_head_dim: 32, qk_rope_head_dim: 32, v_head_dim: 32, num_attention_heads: 4, num_key_value_heads: 4,
      rope_scaling: { type: 'yarn', rope_type: 'yarn', factor: 4, original_max_position_embeddings: 16, beta_fast: 32, beta_slow: 1, mscale: 1, mscale_all_dim: 1 },
    }),
    1,
  ],
  [
    'deepseek2 (lite: no q-LoRA, softmax top-k without groups, no bias)',
    parseModelConfig({
      ...presetConfig('nano', { vocabSize: V }),
      hidden_size: 256, intermediate_size: 512, moe_intermediate_size: 256, num_hidden_layers: 2, kv_lora_rank: 256,
      scoring_func: 'softmax', topk_method: 'greedy', n_group: 1, topk_group: 1, norm_topk_prob: false, routed_scaling_factor: 1,
    }),
    2,
  ],
];

const TYPES: FileType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q6_k', 'q5_k_m', 'q4_k_m', 'q5_0', 'q5_1', 'q4_1', 'q4_0'];

/**
 * Bounds on llama.cpp's distance from the exact forward (mean KL in nats, max |Δ log p|), about 3×
 * the largest measured over these four models (2026-12: F32 KL 5e-8 / 2e-6; F16 2e-7 / 3e-3; BF16,
 * whose products llama.cpp takes with activations rounded to BF16, 1e-5 / 2e-2; quantized types,
 * activations rounded to 8 bits, at most 1.7e-4 / 0.13, Q4_K_M the largest). Exceeding them means
 * llama.cpp reads the file differently from what it encodes.
 */
const QUANTIZED = { kl: 5e-4, maxLogp: 0.4 };
const LLAMA_BOUNDS: Record<FileType, { kl: number; maxLogp: number }> = {
  f32: { kl: 1e-6, maxLogp: 1e-3 },
  f16: { kl: 1e-6, maxLogp: 0.01 },
  bf16: { kl: 3e-5, maxLogp: 0.06 },
  q8_0: QUANTIZED, q6_k: QUANTIZED, q5_k_m: QUANTIZED, q4_k_m: QUANTIZED, q5_0: QUANTIZED, q5_1: QUANTIZED, q4_1: QUANTIZED, q4_0: QUANTIZED,
};

interface Distance {
  meanKl: number;
  maxLogp: number;
  top1: number;
}

/** KL(p‖q) averaged over positions, max |log p − log q| over tokens with p or q ≥ 1e-6, top-1 agreement. */
function distance(p: Float64Array[], q: Float64Array[]): Distance {
  let kl = 0, max = 0, agree = 0;
  for (let t = 0; t < p.length; t++) {
    let best = 0, bestQ = 0;
    for (let i = 0; i < p[t].length; i++) {
      const a = p[t][i], b = q[t][i];
      kl += Math.exp(a) * (a - b);
      if (Math.exp(a) >= 1e-6 || Math.exp(b) >= 1e-6) max = Math.max(max, Math.abs(a - b));
      if (a > p[t][best]) best = i;
      if (b > q[t][bestQ]) bestQ = i;
    }
    if (best === bestQ) agree++;
  }
  return { meanKl: kl / p.length, maxLogp: max, top1: agree / p.length };
}

function show(d: Distance): string {
  return `KL ${d.meanKl.toExponential(1)}, max|Δlog p| ${d.maxLogp.toExponential(1)}, top-1 ${(d.top1 * 100).toFixed(0)}%`;
}

async function llamaLogProbs(path: string, ids: number[]): Promise<Float64Array[]> {
  const model = await llama.loadModel({ modelPath: path });
  try {
    // F32 KV cache and no flash attention (whose CPU kernel rounds queries to F16): llama.cpp's most exact settings.
    const ctx = await model.createContext({ contextSize: 64, threads: 2, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
    try {
      const seq = ctx.getSequence();
      const res = await seq.controlledEvaluate(ids.map((id) => [id as Token, { generateNext: { probabilities: true } }]));
      return res.map((r) => {
        const out = new Float64Array(V).fill(-Infinity);
        for (const [id, p] of r!.next!.probabilities!) out[id] = Math.log(p);
        return out;
      });
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

async function oursLogProbs(path: string, ids: number[], weights: 'f32' | 'packed' = 'packed'): Promise<Float64Array[]> {
  const { model } = await loadModel(path, { weights });
  const logits = T.noGrad(() => T.tidy(() => Float32Array.from(model.forward(ids, 1, ids.length).logits.data)));
  return ids.map((_, t) => logSoftmax(logits.subarray(t * V, (t + 1) * V)));
}

async function exactLogProbs(path: string, ids: number[]): Promise<Float64Array[]> {
  const file = await openGguf(path);
  try {
    return (await exactLogits(file, ids)).map(logSoftmax);
  } finally {
    await file.close();
  }
}

/** A random model as a float32 checkpoint directory with the shipped tokenizer. */
async function randomCheckpoint(cfg: ModelConfig, seed: number, scale: number, out: string): Promise<void> {
  const model = new CausalLM(cfg, { seed });
  // Biases and the router's correction bias non-zero, so adding them (or not) shows.
  for (const m of model.moeLayers()) if (m.bias) for (let e = 0; e < m.E; e++) m.bias.data[e] = 0.05 * noise(e, seed);
  for (const [name, p] of model.params.tensors) if (name.endsWith('_proj.bias')) for (let j = 0; j < p.size; j++) p.data[j] = 0.2 * noise(j, seed + 9);
  for (const [name, p] of model.params.tensors) if (p.rank === 2 && !name.includes('embed')) for (let j = 0; j < p.size; j++) p.data[j] *= scale;
  await saveModel(model, out);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await cp(join(tokenizerDir, f), join(out, f));
}

const IDS = Array.from({ length: 24 }, (_, i) => (i * 97 + 13) % V);

CASES.forEach(([label, cfg, scale], ci) => {
  describe(`GGUF ${label}`, () => {
    let hf: string;
    before(async () => {
      hf = join(dir, `case${ci}`);
      await randomCheckpoint(cfg, 40 + ci, scale, hf);
    });

    for (const type of TYPES) {
      test(`${type}: llama.cpp loads it; nanoseek matches the exact forward, llama.cpp is as close as its own rounding allows`, async (t) => {
        const path = join(dir, `case${ci}-${type}.gguf`);
        await convertModel(hf, path, { type });
        const exact = await exactLogProbs(path, IDS);
        const ours = await oursLogProbs(path, IDS, 'f32');
        const packed = await oursLogProbs(path, IDS);
        const theirs = await llamaLogProbs(path, IDS);
        const dOurs = distance(exact, ours);
        const dPacked = distance(exact, packed);
        const dLlama = distance(exact, theirs);
        const dBoth = distance(ours, theirs);
        t.diagnostic(`${type}: nanoseek vs exact ${show(dOurs)}; packed ${show(dPacked)}; llama.cpp vs exact ${show(dLlama)}; nanoseek vs llama.cpp ${show(dBoth)}`);
        assert.ok(dOurs.maxLogp <= 2e-3, `nanoseek differs from the exact forward by ${dOurs.maxLogp}`);
        assert.equal(dOurs.top1, 1, 'nanoseek picks another top token than the exact forward');
        const bound = LLAMA_BOUNDS[type];
        assert.ok(dLlama.meanKl <= bound.kl && dLlama.maxLogp <= bound.maxLogp, `llama.cpp reads the ${type} file differently: ${show(dLlama)}`);
        assert.ok(dPacked.meanKl <= bound.kl && dPacked.maxLogp <= bound.maxLogp, `nanoseek with the ${type} weights packed is further from the exact forward than llama.cpp may be: ${show(dPacked)}`);
        assert.ok(dOurs.meanKl <= Math.max(dLlama.meanKl, 1e-7), 'nanoseek is further from the exact forward than llama.cpp');
        if (type === 'f32') assert.ok(dBoth.maxLogp <= 1e-3, `F32: nanoseek and llama.cpp differ by ${dBoth.maxLogp}`);
      });
    }
  });
});
