// Checkpoint directories: bit-exact save/load, strict validation, crash safety.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backupPathFor } from '../src/util/atomic.js';
import { loadCheckpoint, readModelConfig, saveCheckpoint, type CheckpointTensor } from '../src/io/checkpoint.js';
import { decodeHalf, encodeHalf } from '../src/kernels/quant/half.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { expectedTensors, parseModelConfig, presetConfig, type ModelConfig } from '../src/model/config.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'nanoseek-ckpt-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Deterministic pseudo-random weights for every tensor the config expects. */
function makeTensors(cfg: ModelConfig, seed: number): Map<string, CheckpointTensor> {
  let s = seed >>> 0;
  const out = new Map<string, CheckpointTensor>();
  for (const { name, shape } of expectedTensors(cfg)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      data[i] = (s / 2 ** 32 - 0.5) * 0.2;
    }
    out.set(name, { shape, data });
  }
  return out;
}

const bytesOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function assertSameTensors(got: Map<string, CheckpointTensor>, want: ReadonlyMap<string, CheckpointTensor>): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [name, t] of want) {
    assert.deepEqual(got.get(name)!.shape, [...t.shape], name);
    assert.ok(bytesOf(got.get(name)!.data).equals(bytesOf(t.data)), `${name} differs`);
  }
}

/** Smallest sensible model: a checkpoint of ~1.5 KB, so it can be cut at every byte. */
const TINY = parseModelConfig({
  model_type: 'llama',
  vocab_size: 8,
  hidden_size: 4,
  intermediate_size: 4,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: true,
  bos_token_id: 0,
  eos_token_id: 1,
});

describe('checkpoints', () => {
  test('save → load is bit-exact, including -0, denormals, Inf and NaN payloads', async () => {
    for (const cfg of [presetConfig('nano', { mtp: true }), presetConfig('nano-dense', { denseFamily: 'qwen2' }), TINY]) {
      const tensors = makeTensors(cfg, 7);
      const bits = new Uint32Array([0x80000000, 0x00000001, 0x807fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffbadbad]);
      tensors.get('model.embed_tokens.weight')!.data.set(new Float32Array(bits.buffer));
      const dir = join(root, `exact-${cfg.model_type}`);
      await saveCheckpoint(dir, { config: cfg, tensors, metadata: { step: '12' } });
      const ckpt = await loadCheckpoint(dir);
      assertSameTensors(ckpt.tensors, tensors);
      assert.deepEqual(ckpt.config, cfg);
      assert.equal(ckpt.dtype, 'F32');
      assert.deepEqual(ckpt.metadata, { step: '12', format: 'pt' });
      assert.deepEqual(ckpt.generationConfig, { bos_token_id: 0, eos_token_id: 1, do_sample: true, temperature: 0.6, top_p: 0.95 });
      assert.deepEqual((await readdir(dir)).sort(), ['config.json', 'generation_config.json', 'model.safetensors']);
    }
  });

  test('the directory is what transformers expects', async () => {
    const cfg = presetConfig('micro');
    const dir = join(root, 'hf-layout');
    await saveCheckpoint(dir, { config: cfg, tensors: makeTensors(cfg, 1), generationConfig: { temperature: 0.7, max_new_tokens: 64 } });
    const json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(json.architectures, ['DeepseekV3ForCausalLM']);
    assert.equal(json.model_type, 'deepseek_v3');
    assert.equal(json.torch_dtype, 'float32');
    assert.deepEqual(await readModelConfig(dir), cfg);
    const gen = JSON.parse(await readFile(join(dir, 'generation_config.json'), 'utf8'));
    assert.deepEqual(gen, { bos_token_id: 0, eos_token_id: 1, temperature: 0.7, max_new_tokens: 64 });
    const { tensors, metadata } = await readSafetensors(join(dir, 'model.safetensors'));
    assert.equal(metadata.format, 'pt');
    assert.deepEqual([...tensors.keys()].sort(), expectedTensors(cfg).map((t) => t.name).sort());
  });

  test('BF16 checkpoints round to bf16, keep the router bias in F32, and say so in config.json', async () => {
    const cfg = presetConfig('nano');
    const tensors = makeTensors(cfg, 3);
    const dir = join(root, 'bf16');
    await saveCheckpoint(dir, { config: cfg, tensors, dtype: 'BF16' });
    const ckpt = await loadCheckpoint(dir);
    assert.equal(ckpt.dtype, 'BF16');
    assert.equal(ckpt.config.torch_dtype, 'bfloat16');
    const w = 'model.layers.1.self_attn.kv_b_proj.weight';
    assert.deepEqual(ckpt.tensors.get(w)!.data, decodeHalf('BF16', encodeHalf('BF16', tensors.get(w)!.data)));
    const bias = 'model.layers.1.mlp.gate.e_score_correction_bias';
    assert.ok(bytesOf(ckpt.tensors.get(bias)!.data).equals(bytesOf(tensors.get(bias)!.data)));
    const raw = await readSafetensors(join(dir, 'model.safetensors'));
    assert.equal(raw.tensors.get(bias)!.dtype, 'F32');
    assert.equal(raw.tensors.get(w)!.dtype, 'BF16');
  });

  test('extra files are written or copied; bad names refused', async () => {
    const src = join(root, 'tokenizer-src.json');
    await writeFile(src, '{"model": {}}');
    const dir = join(root, 'extras');
    const tensors = makeTensors(TINY, 2);
    await saveCheckpoint(dir, {
      config: TINY,
      tensors,
      extraFiles: { 'tokenizer.json': { copyFrom: src }, 'tokenizer_config.json': '{}', 'notes.bin': new Uint8Array([1, 2]) },
    });
    assert.equal(await readFile(join(dir, 'tokenizer.json'), 'utf8'), '{"model": {}}');
    assert.deepEqual([...(await readFile(join(dir, 'notes.bin')))], [1, 2]);
    for (const bad of ['../escape.json', 'sub/dir.json', '.hidden', 'config.json', 'model.safetensors']) {
      await assert.rejects(saveCheckpoint(dir, { config: TINY, tensors, extraFiles: { [bad]: 'x' } }), /extra file/, bad);
    }
  });

  test('saving refuses tensors that do not match the config, naming them', async () => {
    const dir = join(root, 'refused');
    const tensors = makeTensors(TINY, 1);
    const missing = new Map(tensors);
    missing.delete('model.layers.0.self_attn.k_proj.weight');
    await assert.rejects(saveCheckpoint(dir, { config: TINY, tensors: missing }), /missing tensor "model\.layers\.0\.self_attn\.k_proj\.weight" \[2, 4\]/);
    const extra = new Map(tensors).set('lm_head.weight', { shape: [8, 4], data: new Float32Array(32) });
    await assert.rejects(saveCheckpoint(dir, { config: TINY, tensors: extra }), /unexpected tensor "lm_head\.weight"/);
    const wrong = new Map(tensors).set('model.norm.weight', { shape: [5], data: new Float32Array(5) });
    await assert.rejects(saveCheckpoint(dir, { config: TINY, tensors: wrong }), /tensor "model\.norm\.weight" in the tensors to save has shape \[5\], config implies \[4\]/);
    const short = new Map(tensors).set('model.norm.weight', { shape: [4], data: new Float32Array(3) });
    await assert.rejects(saveCheckpoint(dir, { config: TINY, tensors: short }), /shape \[4\] has 4 elements but the data has 3/);
    await assert.rejects(saveCheckpoint(dir, { config: { ...TINY, hidden_size: -1 } as ModelConfig, tensors }), /hidden_size = -1/);
    await assert.rejects(readdir(dir), { code: 'ENOENT' });
  });

  test('loading refuses checkpoints whose tensors do not match config.json, naming tensor and file', async () => {
    const dir = join(root, 'mismatch');
    const tensors = makeTensors(TINY, 4);
    await saveCheckpoint(dir, { config: TINY, tensors });
    const file = join(dir, 'model.safetensors');
    const rewrite = (m: Map<string, CheckpointTensor>) => writeSafetensors(file, [...m].map(([n, t]) => [n, { shape: t.shape, data: t.data }] as const));

    const missing = new Map(tensors);
    missing.delete('model.norm.weight');
    await rewrite(missing);
    await assert.rejects(loadCheckpoint(dir), (err: Error) => err.message.includes(`missing tensor "model.norm.weight" [4] (not in ${file})`));
    await rewrite(new Map(tensors).set('model.layers.0.self_attn.q_proj.bias', { shape: [4], data: new Float32Array(4) }));
    await assert.rejects(loadCheckpoint(dir), (err: Error) => err.message.includes(`unexpected tensor "model.layers.0.self_attn.q_proj.bias" in ${file}`));
    await rewrite(new Map(tensors).set('model.norm.weight', { shape: [2, 2], data: new Float32Array(4) }));
    await assert.rejects(loadCheckpoint(dir), (err: Error) => err.message.includes(`tensor "model.norm.weight" in ${file} has shape [2, 2], config implies [4]`));
    await writeSafetensors(file, [...tensors].map(([n, t]) => [n, n === 'model.norm.weight' ? { shape: [4], data: new Int32Array(4) } : { shape: t.shape, data: t.data }] as const));
    await assert.rejects(loadCheckpoint(dir), /tensor "model\.norm\.weight" has dtype I32; weights must be F32, F16 or BF16/);

    // Old Llama exports carry rotary buffers: ignored, not an error.
    await rewrite(new Map(tensors).set('model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [1], data: new Float32Array(1) }));
    assertSameTensors((await loadCheckpoint(dir)).tensors, tensors);

    await writeFile(join(dir, 'generation_config.json'), '{"top_p": 2}');
    await assert.rejects(loadCheckpoint(dir), /generation_config\.json: top_p = 2: must be a number in \(0, 1\]/);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...TINY, num_key_value_heads: 3 }));
    await assert.rejects(loadCheckpoint(dir), (err: Error) => err.message.startsWith(`${join(dir, 'config.json')}: num_key_value_heads = 3`));
    await assert.rejects(loadCheckpoint(join(root, 'nowhere')), /not a checkpoint directory/);
  });

  test('a checkpoint whose weights or config are cut at any byte is refused', async () => {
    const dir = join(root, 'cut');
    const tensors = makeTensors(TINY, 5);
    await saveCheckpoint(dir, { config: TINY, tensors });
    const file = join(dir, 'model.safetensors');
    const full = await readFile(file);
    assert.ok(full.length < 2500, `${full.length} bytes`);
    for (let len = 0; len < full.length; len++) {
      await writeFile(file, full.subarray(0, len));
      await assert.rejects(loadCheckpoint(dir), (err: Error) => err.message.includes(file), `cut at ${len}`);
    }
    await writeFile(file, full);
    assertSameTensors((await loadCheckpoint(dir)).tensors, tensors);
    const configPath = join(dir, 'config.json');
    const config = await readFile(configPath);
    for (let len = 0; len < config.length - 2; len++) {
      await writeFile(configPath, config.subarray(0, len));
      await assert.rejects(loadCheckpoint(dir), (err: Error) => err.message.includes(configPath), `config cut at ${len}`);
    }
  });

  test('sharded checkpoints load through model.safetensors.index.json', async () => {
    const dir = join(root, 'sharded');
    const tensors = makeTensors(TINY, 6);
    await saveCheckpoint(dir, { config: TINY, tensors });
    await rm(join(dir, 'model.safetensors'));
    const names = [...tensors.keys()];
    const shards = [names.slice(0, 4), names.slice(4)];
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(join(dir, file), shard.map((n) => [n, tensors.get(n)!] as const));
      for (const n of shard) weightMap[n] = file;
    }
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    assertSameTensors((await loadCheckpoint(dir)).tensors, tensors);
    await rm(join(dir, 'model.safetensors.index.json'));
    await assert.rejects(loadCheckpoint(dir), /no model\.safetensors or model\.safetensors\.index\.json/);
  });
});

/** Run `body` (ES module source) in a fresh Node process with this test's loader flags. */
function runChild(body: string, onStdout?: (line: string, kill: () => void) => void): Promise<NodeJS.Signals | number | null> {
  const child = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', body], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) if (line) onStdout?.(line, () => child.kill('SIGKILL'));
  });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
}

const moduleUrl = (rel: string) => JSON.stringify(new URL(rel, import.meta.url).href);

/** All weights of the checkpoint hold `v` (every save in the crash tests writes one constant). */
function constantValue(tensors: Map<string, CheckpointTensor>): number {
  const v = tensors.get('model.embed_tokens.weight')!.data[0];
  for (const [name, t] of tensors) assert.ok(t.data.every((x) => x === v), `${name} mixes versions`);
  return v;
}

describe('interrupted saves', () => {
  const cfg = presetConfig('nano');
  const constant = (v: number) => new Map(expectedTensors(cfg).map(({ name, shape }) => [name, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v) }]));

  test('a process killed while writing the new checkpoint leaves the old one loadable', async () => {
    const dir = join(root, 'crash-fill');
    await saveCheckpoint(dir, { config: cfg, tensors: constant(1) });
    const status = await runChild(`
      const { replaceDirAtomic } = await import(${moduleUrl('../src/util/atomic.js')});
      const { writeFile } = await import('node:fs/promises');
      await replaceDirAtomic(${JSON.stringify(dir)}, async (tmp) => {
        await writeFile(tmp + '/config.json', '{"model_type": "dee');
        process.kill(process.pid, 'SIGKILL');
      });
    `);
    assert.equal(status, 'SIGKILL');
    const leftovers = (await readdir(root)).filter((f) => f.startsWith('.nanoseek-tmp-crash-fill.'));
    assert.equal(leftovers.length, 1, 'the dead writer leaves its temporary');
    assert.equal(constantValue((await loadCheckpoint(dir)).tensors), 1);

    await saveCheckpoint(dir, { config: cfg, tensors: constant(2) });
    assert.equal(constantValue((await loadCheckpoint(dir)).tensors), 2);
    assert.deepEqual((await readdir(root)).filter((f) => f.includes('crash-fill')), ['crash-fill'], 'the next save cleans up');
  });

  test('a crash between the two renames of the swap still leaves a loadable checkpoint', async () => {
    const dir = join(root, 'crash-swap');
    await saveCheckpoint(dir, { config: cfg, tensors: constant(1) });
    // The state right after `dir → backup`, before `tmp → dir`.
    await rename(dir, backupPathFor(dir));
    await mkdir(join(root, '.nanoseek-tmp-crash-swap.4194305.00c0ffee'));
    const ckpt = await loadCheckpoint(dir);
    assert.equal(ckpt.dir, backupPathFor(dir));
    assert.equal(constantValue(ckpt.tensors), 1);

    await saveCheckpoint(dir, { config: cfg, tensors: constant(3) });
    assert.equal(constantValue((await loadCheckpoint(dir)).tensors), 3);
    assert.deepEqual((await readdir(root)).filter((f) => f.includes('crash-swap')), ['crash-swap']);
  });

  test('killing a saving process at arbitrary moments never corrupts the checkpoint', async () => {
    const dir = join(root, 'crash-random');
    await saveCheckpoint(dir, { config: cfg, tensors: constant(1) });
    let last = 1;
    for (const [i, delayMs] of [0, 20, 60, 120, 250].entries()) {
      const version = i + 2;
      await runChild(
        `
        const { saveCheckpoint } = await import(${moduleUrl('../src/io/checkpoint.js')});
        const { presetConfig, expectedTensors } = await import(${moduleUrl('../src/model/config.js')});
        const cfg = presetConfig('nano');
        const tensors = new Map(expectedTensors(cfg).map(({ name, shape }) => [name, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(${version}) }]));
        console.log('saving');
        for (;;) await saveCheckpoint(${JSON.stringify(dir)}, { config: cfg, tensors });
      `,
        (line, kill) => {
          if (line === 'saving') setTimeout(kill, delayMs);
        },
      );
      const v = constantValue((await loadCheckpoint(dir)).tensors);
      assert.ok(v === version || v === last, `version ${v} after killing writer ${version} (before: ${last})`);
      last = v;
    }
  });
});
