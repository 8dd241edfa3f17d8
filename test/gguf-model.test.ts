// GGUF and Hugging Face files as models, end to end: the shipped models converted to GGUF run in
// llama.cpp and continue a prompt exactly as nanoseek does; conversions round-trip; the layouts
// llama.cpp's own tools write (legacy MLA, the Q4_K_M mix of R1-Distill-Qwen-1.5B) load; sharded
// BF16 checkpoints stay BF16 in memory; and files that do not describe a consistent model are refused
// with a message naming the file and the key or tensor.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getLlama, LlamaLogLevel, type Llama, type Token } from 'node-llama-cpp';
import { loadCheckpoint } from '../src/io/checkpoint.js';
import { convertModel } from '../src/io/convert.js';
import { openGguf, writeGguf, type GgufMetadata } from '../src/io/gguf.js';
import { ggufLayout } from '../src/io/gguf-model.js';
import { writeGgufModel } from '../src/io/gguf-write.js';
import { loadModel, modelTensors, openModelFile, saveModel } from '../src/io/model-file.js';
import { tensorTypeFor } from '../src/io/quant-mix.js';
import { mixContext } from '../src/io/gguf-write.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { packageRoot } from '../src/infer/index.js';
import { parseModelConfig, presetConfig } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import * as T from '../src/tensor/index.js';
import { applyChatTemplate, loadTokenizer } from '../src/tokenizer/index.js';

let llama: Llama;
let dir: string;
let root: string;

before(async () => {
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  dir = await mkdtemp(join(tmpdir(), 'nanoseek-gguf-model-'));
  root = await packageRoot();
});

after(async () => {
  await llama?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function lastLogits(model: CausalLM, ids: readonly number[]): Float32Array {
  return T.noGrad(() => T.tidy(() => {
    const V = model.config.vocab_size;
    const l = model.forward(ids, 1, ids.length).logits.data;
    return Float32Array.from(l.subarray((ids.length - 1) * V));
  }));
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

function allLogits(model: CausalLM, ids: readonly number[]): Float32Array {
  return T.noGrad(() => T.tidy(() => Float32Array.from(model.forward(ids, 1, ids.length).logits.data)));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function llamaGreedy(path: string, prompt: readonly number[], n: number): Promise<number[]> {
  const model = await llama.loadModel({ modelPath: path });
  try {
    const ctx = await model.createContext({ contextSize: 256, threads: 2, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
    const out: number[] = [];
    for await (const t of ctx.getSequence().evaluate(prompt as Token[], { temperature: 0 })) {
      out.push(t);
      if (out.length >= n) break;
    }
    await ctx.dispose();
    return out;
  } finally {
    await model.dispose();
  }
}

describe('shipped models in GGUF', () => {
  for (const name of ['nano-r1zero', 'nano-base']) {
    test(`${name} → F32 GGUF: llama.cpp continues a prompt greedily with the same 32 tokens as nanoseek`, async () => {
      const src = join(root, 'models', name);
      const path = join(dir, `${name}.gguf`);
      await convertModel(src, path, { type: 'f32' });
      const tokenizer = await loadTokenizer(src);
      // A question the model answers with a long worked chain: its top choices are clear throughout.
      const prompt = tokenizer.encode(applyChatTemplate(tokenizer, [{ role: 'user', content: 'What is 7 + 7 + 3 + 9 + 4 + 9?' }]));
      const { model } = await loadModel(path);
      const ours: number[] = [];
      const ids = [...prompt];
      // llama.cpp's generation ends at the end-of-sequence token; so does ours.
      while (ours.length < 32 && ours.at(-1) !== tokenizer.special.eos) {
        const next = argmax(lastLogits(model, ids));
        ours.push(next);
        ids.push(next);
      }
      // node-llama-cpp ends on the end-of-sequence token without yielding it.
      if (ours.at(-1) === tokenizer.special.eos) ours.pop();
      const theirs = await llamaGreedy(path, prompt, 32);
      assert.deepEqual(theirs, ours, `llama.cpp: ${tokenizer.decode(theirs)}\nnanoseek: ${tokenizer.decode(ours)}`);
      // nano-r1zero reasons for more than 32 tokens; nano-base answers at once and stops.
      if (name === 'nano-r1zero') assert.ok(ours.length === 32 && /= 14 \+ 3/.test(tokenizer.decode(ours)), 'the model works the sum');
      else assert.match(tokenizer.decode(ours), /<answer>\d+<\/answer>$/);
    });
  }

  test('checkpoint → GGUF → checkpoint keeps every tensor bit for bit (F32 and BF16)', async () => {
    const src = join(root, 'models', 'nano-r1zero');
    for (const type of ['f32', 'bf16'] as const) {
      const gguf = join(dir, `rt-${type}.gguf`);
      const back = join(dir, `rt-${type}`);
      await convertModel(src, gguf, { type });
      await convertModel(gguf, back, { type });
      const a = await loadCheckpoint(src);
      const b = await loadCheckpoint(back);
      assert.deepEqual([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort());
      for (const [n, t] of a.tensors) assert.deepEqual(b.tensors.get(n)!.data, t.data, `${type}: ${n}`);
      assert.equal(b.config.num_hidden_layers, a.config.num_hidden_layers);
      const tokA = await readFile(join(src, 'tokenizer.json'), 'utf8');
      const tokB = await loadTokenizer(back);
      const text = 'What is 12 + 30? <think>';
      assert.deepEqual(tokB.encode(text), (await loadTokenizer(src)).encode(text), 'the tokenizer travels with the model');
      assert.ok(tokA.length > 0 && tokB.chatTemplate !== undefined, 'the chat template travels too');
    }
  });
});

describe('layouts llama.cpp writes', () => {
  test('legacy MLA (one attn_kv_b, as in early R1 GGUFs) loads in both and matches the split layout', async () => {
    const cfg = parseModelConfig({ ...presetConfig('nano', { vocabSize: 517 }), num_hidden_layers: 2 });
    const model = new CausalLM(cfg, { seed: 5 });
    const tensors = modelTensors(model);
    const read = async (hf: string) => {
      const t = tensors.get(hf)!;
      return { type: 'F32' as const, shape: t.shape, bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) };
    };
    const tokenizer = (await openGguf(await shippedGguf())).metadata;
    const tok: GgufMetadata = new Map([...tokenizer].filter(([k]) => k.startsWith('tokenizer.')));
    const paths: string[] = [];
    for (const mla of ['split', 'legacy'] as const) {
      const path = join(dir, `mla-${mla}.gguf`);
      await writeGgufModel(path, { config: cfg, fileType: 'f32', name: mla, tokenizer: tok, read, mla });
      paths.push(path);
    }
    const legacy = await openGguf(paths[1]);
    assert.ok(legacy.tensors.has('blk.0.attn_kv_b.weight') && !legacy.tensors.has('blk.0.attn_k_b.weight'));
    await legacy.close();
    const ids = [1, 5, 9, 200, 33, 7, 400, 12];
    const want = allLogits(model, ids);
    for (const path of paths) {
      assert.ok(maxAbsDiff(allLogits((await loadModel(path)).model, ids), want) < 1e-4, path);
      const m = await llama.loadModel({ modelPath: path });
      await m.dispose();
    }
  });

  test("R1-Distill-Qwen-1.5B in Q4_K_M gets llama.cpp's mix: 29 Q6_K, 169 Q4_K, 141 F32", () => {
    const cfg = parseModelConfig({
      architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 1536, intermediate_size: 8960, num_hidden_layers: 28,
      num_attention_heads: 12, num_key_value_heads: 2, vocab_size: 151936, max_position_embeddings: 131072, rope_theta: 10000,
      rms_norm_eps: 1e-6, tie_word_embeddings: false, bos_token_id: 151646, eos_token_id: 151643, use_sliding_window: false,
    });
    const plan = ggufLayout(cfg);
    const ctx = mixContext(cfg, plan);
    const census: Record<string, number> = {};
    const bumped = new Set<number>();
    for (const t of plan) {
      const type = tensorTypeFor('q4_k_m', t.name, t.ne, ctx);
      census[type] = (census[type] ?? 0) + 1;
      if (type === 'Q6_K' && t.name.startsWith('blk.')) bumped.add(Number(t.name.split('.')[1]));
    }
    assert.deepEqual(census, { Q4_K: 169, F32: 141, Q6_K: 29 });
    assert.equal(tensorTypeFor('q4_k_m', 'output.weight', [1536, 151936], ctx), 'Q6_K');
    assert.deepEqual([...bumped].sort((a, b) => a - b), [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]);
  });

  test('a Q4_K_M file laid out like that (2 layers 1536 wide, K-quants, Q6_K head) loads, runs and is read by llama.cpp', async () => {
    // The FFN is narrower than the 1.5B's 8960 (also whole 256-blocks) to keep quantizing fast.
    const cfg = parseModelConfig({
      architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 1536, intermediate_size: 2560, num_hidden_layers: 2,
      num_attention_heads: 12, num_key_value_heads: 2, vocab_size: 517, max_position_embeddings: 4096, rope_theta: 10000,
      rms_norm_eps: 1e-6, tie_word_embeddings: false, bos_token_id: 0, eos_token_id: 1,
    });
    const hf = join(dir, 'qwen-1536');
    await saveModel(new CausalLM(cfg, { seed: 11 }), hf);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) await cp(join(root, 'models', 'nano-r1zero', f), join(hf, f));
    const path = join(dir, 'qwen-1536-q4_k_m.gguf');
    const r = await convertModel(hf, path, { type: 'q4_k_m' });
    // With 2 layers the rule bumps the last one: its attn_v and ffn_down, and the head, are Q6_K.
    assert.deepEqual(r.types, { F32: 11, Q4_K: 13, Q6_K: 3 });
    const file = await openModelFile(path);
    await file.close();
    assert.equal(file.tensors.get('model.layers.0.mlp.down_proj.weight')!.type, 'Q4_K');
    assert.equal(file.tensors.get('model.layers.1.mlp.down_proj.weight')!.type, 'Q6_K');
    assert.equal(file.tensors.get('model.layers.1.self_attn.v_proj.weight')!.type, 'Q6_K');
    assert.equal(file.tensors.get('lm_head.weight')!.type, 'Q6_K');
    const { model } = await loadModel(path, { weights: 'packed' });
    assert.equal(model.params.packed.size, 16, 'the quantized matrices stay packed');
    const logits = allLogits(model, [3, 9, 27]);
    assert.ok(logits.every(Number.isFinite));
    const m = await llama.loadModel({ modelPath: path });
    await m.dispose();
  });
});

describe('Hugging Face directories of real models', () => {
  test('sharded BF16 safetensors load with the weights kept as BF16 (packed), giving the float32 model\'s logits', async () => {
    const cfg = presetConfig('micro-dense', { vocabSize: 517, denseFamily: 'qwen2' });
    const model = new CausalLM(cfg, { seed: 8 });
    const whole = join(dir, 'bf16-whole');
    await saveModel(model, whole, { dtype: 'BF16' });
    // Re-shard as transformers does: two files and an index.
    const sharded = join(dir, 'bf16-sharded');
    await mkdir(sharded, { recursive: true });
    for (const f of ['config.json', 'generation_config.json']) await cp(join(whole, f), join(sharded, f));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) await cp(join(root, 'models', 'nano-r1zero', f), join(sharded, f));
    const ck = await loadCheckpoint(whole);
    const names = [...ck.tensors.keys()];
    const half = Math.floor(names.length / 2);
    const weightMap: Record<string, string> = {};
    for (const [i, part] of [names.slice(0, half), names.slice(half)].entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(join(sharded, file), part.map((n) => [n, { dtype: 'BF16', shape: ck.tensors.get(n)!.shape, data: ck.tensors.get(n)!.data }] as const));
      for (const n of part) weightMap[n] = file;
    }
    await writeFile(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const packed = (await loadModel(sharded, { weights: 'packed' })).model;
    assert.ok(packed.params.packed.size > 0);
    for (const w of packed.params.packed.values()) assert.equal(w.type, 'BF16');
    const f32 = (await loadModel(sharded, { weights: 'f32' })).model;
    const ids = [4, 8, 15, 16, 23, 42];
    assert.ok(maxAbsDiff(allLogits(packed, ids), allLogits(f32, ids)) < 1e-4);
  });
});

async function shippedGguf(): Promise<string> {
  const path = join(dir, 'shipped.gguf');
  await convertModel(join(root, 'models', 'nano-r1zero'), path, { type: 'f32' });
  return path;
}

describe('refusing inconsistent GGUF files', () => {
  /** Rewrites the shipped model's GGUF with edited metadata or tensors. */
  async function edited(name: string, edit: (meta: GgufMetadata, tensors: Map<string, { ne: number[]; type: 'F32'; bytes: Uint8Array }>) => void): Promise<string> {
    const src = await openGguf(await shippedGguf());
    const meta: GgufMetadata = new Map(src.metadata);
    const tensors = new Map<string, { ne: number[]; type: 'F32'; bytes: Uint8Array }>();
    for (const [n, info] of src.tensors) tensors.set(n, { ne: [...info.ne], type: info.type as 'F32', bytes: await src.readTensor(n) });
    await src.close();
    edit(meta, tensors);
    const path = join(dir, `bad-${name}.gguf`);
    await writeGguf(path, meta, [...tensors].map(([n, t]) => ({ name: n, ne: t.ne, type: t.type, data: () => t.bytes })));
    return path;
  }

  const cases: Array<[string, (m: GgufMetadata, t: Map<string, { ne: number[]; type: 'F32'; bytes: Uint8Array }>) => void, RegExp]> = [
    ['unknown architecture', (m) => m.set('general.architecture', { type: 'string', value: 'mamba' }), /general\.architecture: "mamba" is not supported/],
    ['missing tensor', (_, t) => t.delete('blk.1.ffn_norm.weight'), /tensor blk\.1\.ffn_norm\.weight is missing/],
    ['extra tensor', (_, t) => t.set('blk.0.attn_kv_b.weight', { ne: [64, 256], type: 'F32', bytes: new Uint8Array(64 * 256 * 4) }), /unexpected tensor blk\.0\.attn_kv_b\.weight/],
    ['shape disagreeing with the metadata', (m) => m.set('deepseek2.expert_feed_forward_length', { type: 'u32', value: 32 }), /ffn_gate_exps\.weight has shape \[128, 64, 16\], the metadata implies \[128, 32, 16\]/],
    ['missing key', (m) => m.delete('deepseek2.attention.kv_lora_rank'), /deepseek2\.attention\.kv_lora_rank/],
    ['vocabulary disagreeing with the embedding', (m) => m.set('deepseek2.vocab_size', { type: 'u32', value: 600 }), /vocab_size: 600 disagrees with token_embd\.weight's 517 rows/],
    [
      'tokenizer with another token count',
      (m) => {
        const v = m.get('tokenizer.ggml.tokens')!;
        if (v.type === 'array') m.set('tokenizer.ggml.tokens', { ...v, value: v.value.slice(0, 500) });
        const tt = m.get('tokenizer.ggml.token_type')!;
        if (tt.type === 'array') m.set('tokenizer.ggml.token_type', { ...tt, value: tt.value.slice(0, 500) });
      },
      /tokenizer\.ggml\.tokens: 500 tokens, but token_embd\.weight has 517 rows/,
    ],
  ];
  for (const [label, edit, message] of cases) {
    test(label, async () => {
      const path = await edited(label.replace(/\W+/g, '-'), edit);
      await assert.rejects(loadModel(path), (err: Error) => err.message.startsWith(path) && message.test(err.message), `${label}`);
    });
  }
});

describe('GGUF files as starting points and through the CLI', () => {
  test('fine-tuning starts from a quantized GGUF: weights dequantized to float32, tokenizer from the file', async () => {
    const { parseTrainConfig, train } = await import('../src/train/index.js');
    const path = join(dir, 'init-q8_0.gguf');
    await convertModel(join(root, 'models', 'nano-r1zero'), path, { type: 'q8_0' });
    const cfg = parseTrainConfig({
      stage: 'sft',
      model: { init: path },
      data: { source: 'tasks', seed: 3, format: 'r1', tasks: [{ task: 'arithmetic', digits: [1, 1, 1], ops: ['+'] }] },
      seq_len: 128, batch_size: 2, steps: 2, lr: 1e-4, warmup: 0, eval_every: 2, eval_batches: 1, log_every: 1, save_every: 2,
    });
    const out = join(dir, 'sft-from-gguf');
    const result = await train(cfg, { out });
    assert.equal(result.step, 2);
    assert.ok(Number.isFinite(result.valLoss!));
    const { model } = await loadModel(join(out, 'latest'));
    assert.equal(model.params.packed.size, 0);
    assert.equal(model.config.num_hidden_layers, 4);
  });

  test('info, logits and generate take a .gguf: the same answers as the checkpoint it came from', async () => {
    const { execFileSync } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const main = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
    const run = (...args: string[]) => execFileSync(process.execPath, [main, ...args], { encoding: 'utf8' });
    const src = join(root, 'models', 'nano-r1zero');
    const path = join(dir, 'cli.gguf');
    run('convert', src, '--out', path, '--type', 'bf16', '--quiet');
    const info = JSON.parse(run('info', path, '--json'));
    assert.equal(info.format, 'gguf');
    assert.equal(info.architecture, 'DeepseekV3ForCausalLM');
    assert.deepEqual(info.tensor_types, { BF16: 43, F32: 19 });
    const a = JSON.parse(run('logits', '--model', path, '--tokens', '1,50,60,70', '--json')).logits as number[][];
    const b = JSON.parse(run('logits', '--model', src, '--tokens', '1,50,60,70', '--json')).logits as number[][];
    assert.ok(maxAbsDiff(a.flat(), b.flat()) < 1e-5);
    const q = 'What is 7 + 7 + 3 + 9 + 4 + 9?';
    const fromGguf = JSON.parse(run('generate', '--model', path, '--prompt', q, '--max-tokens', '96', '--temperature', '0', '--json'));
    const fromDir = JSON.parse(run('generate', '--model', src, '--prompt', q, '--max-tokens', '96', '--temperature', '0', '--json'));
    assert.equal(fromGguf.content, fromDir.content);
    assert.equal(fromGguf.content, '39');
  });

  test('random byte flips and cuts in a GGUF header are refused with an error naming the file, never a crash', async () => {
    const path = await shippedGguf();
    const bytes = await readFile(path);
    const file = await openGguf(path);
    const headerEnd = file.dataStart;
    await file.close();
    let seed = 12345;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    const bad = join(dir, 'fuzz.gguf');
    let refused = 0, loaded = 0;
    for (let i = 0; i < 120; i++) {
      const copy = Buffer.from(bytes);
      if (i % 4 === 0) {
        await writeFile(bad, copy.subarray(0, rand(headerEnd)));
      } else {
        for (let k = 0; k <= i % 3; k++) copy[rand(headerEnd)] ^= 1 << rand(8);
        await writeFile(bad, copy);
      }
      try {
        await loadModel(bad);
        loaded++;
      } catch (err) {
        assert.ok(err instanceof Error && !(err instanceof TypeError) && !(err instanceof RangeError), `flip ${i}: ${(err as Error).stack}`);
        assert.ok(err.message.startsWith(bad), `flip ${i}: the message names the file: ${err.message}`);
        refused++;
      }
    }
    assert.ok(refused > 60, `${refused} refused, ${loaded} loaded`);
  });
});
