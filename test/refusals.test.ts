// What a newcomer meets when something is wrong: damaged, incomplete or mismatched models are refused
// (loading checks that every weight is finite; `info` checks everything and exits 1), and every
// file-not-found, bad port and busy port is one readable line naming the path or value and what to do.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadForInference, packageRoot } from '../src/infer/index.js';
import { loadModel, modelTensors } from '../src/io/model-file.js';
import { quantize } from '../src/kernels/quant/index.js';
import { presetConfig } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import type { StoredTensor } from '../src/model/weights.js';
import { runCli } from './helpers.js';

const root = await packageRoot();
const SHIPPED = join(root, 'models', 'nano-base');
const work = mkdtempSync(join(tmpdir(), 'nanoseek-refusals-'));

/** A copy of the shipped base model, damaged by `damage(dir)`. */
function damagedCopy(name: string, damage: (dir: string) => void): string {
  const dir = join(work, name);
  cpSync(SHIPPED, dir, { recursive: true });
  damage(dir);
  return dir;
}

/** The last 1,000 bytes of the weights overwritten with 0xFF: NaN rows at the end of lm_head. */
const nanTail = (dir: string) => {
  const path = join(dir, 'model.safetensors');
  const bytes = readFileSync(path);
  bytes.fill(0xff, bytes.length - 1000);
  writeFileSync(path, bytes);
};

const NAN_ERROR = /tensor lm_head\.weight holds NaN or Infinity at flat index \d+ \(row 51\d, column \d+\): the weights are damaged \(re-export or re-download them; --no-finite-check loads them anyway\)/;

test('loading refuses weights that hold NaN, naming the tensor and the first bad index; the check can be skipped', async () => {
  const dir = damagedCopy('nan', nanTail);
  await assert.rejects(loadModel(dir), NAN_ERROR);
  await assert.rejects(loadForInference(dir), NAN_ERROR);
  const { model } = await loadModel(dir, { checkFinite: false });
  assert.equal(model.config.vocab_size, 517);
  const gen = await runCli(['generate', '--model', dir, '--prompt', 'What is 1 + 2 + 3 + 4 + 5 + 6?']);
  assert.equal(gen.code, 1);
  assert.match(gen.stderr, NAN_ERROR);
  assert.equal(gen.stderr.trim().split('\n').length, 1, 'one line');
});

test('packed matrices are checked too: a quantized block with a non-finite scale is refused', () => {
  const cfg = presetConfig('nano', { vocabSize: 64 });
  const tensors = modelTensors(new CausalLM(cfg, { seed: 3 }));
  const stored = new Map<string, StoredTensor>();
  for (const [name, t] of tensors) {
    const q8 = t.shape.length === 2 && t.shape[1] % 32 === 0;
    stored.set(name, { type: q8 ? 'Q8_0' : 'F32', shape: t.shape, bytes: quantize(q8 ? 'Q8_0' : 'F32', t.data) });
  }
  const source = (label: string) => ({ label, get: (name: string) => stored.get(name) });
  assert.doesNotThrow(() => new CausalLM(cfg, { source: source('ok'), weights: 'packed' }));
  const name = 'model.layers.1.self_attn.o_proj.weight';
  const t = stored.get(name)!;
  const bad = t.bytes.slice();
  bad[34 * 5 + 1] = 0x7c; // block 5's f16 scale: 0x7c00 is +Inf
  bad[34 * 5] = 0x00;
  stored.set(name, { ...t, bytes: bad });
  assert.throws(() => new CausalLM(cfg, { source: source('q8.gguf'), weights: 'packed' }), new RegExp(`^Error: q8\\.gguf: tensor ${name.replace(/\./g, '\\.')} holds NaN or Infinity at flat index 160 \\(row 1, column 32\\)`));
  assert.doesNotThrow(() => new CausalLM(cfg, { source: { ...source('q8.gguf'), skipFiniteCheck: true }, weights: 'packed' }));
});

test('info checks what it describes: incomplete or damaged checkpoints exit 1 with one line saying what is wrong', async () => {
  const cases: [string, (dir: string) => void, RegExp][] = [
    ['no-weights', (d) => rmSync(join(d, 'model.safetensors')), /no-weights: no model\.safetensors or model\.safetensors\.index\.json/],
    ['truncated', (d) => truncateSync(join(d, 'model.safetensors'), 2_000_000), /truncated\/model\.safetensors: tensor ".*": data_offsets .* run past the end of the data section .*: file truncated\?/],
    ['empty', (d) => writeFileSync(join(d, 'model.safetensors'), ''), /empty\/model\.safetensors: file is 0 bytes/],
    ['no-tokenizer', (d) => rmSync(join(d, 'tokenizer.json')), /no-tokenizer has no tokenizer\.json: pass --tokenizer <tokenizer\.json or directory>/],
    ['nan', nanTail, NAN_ERROR],
    ['bad-card', (d) => writeFileSync(join(d, 'model_card.json'), '{"examples": [1]}'), /bad-card\/model_card\.json: examples = \[1\]: must be a list of non-empty strings/],
    ['hidden-size', (d) => {
      const path = join(d, 'config.json');
      writeFileSync(path, readFileSync(path, 'utf8').replace('"hidden_size": 128', '"hidden_size": 256'));
    }, /hidden-size: checkpoint does not match its config\.json: \d+ tensors of other shapes, e\.g\. "model\.embed_tokens\.weight" .* \(the weights were made for vocab_size 517, hidden_size 128; the config says 517, 256\)$/],
  ];
  const runs = await Promise.all(cases.map(([name, damage]) => runCli(['info', damagedCopy(name, damage)])));
  cases.forEach(([name, , message], i) => {
    const r = runs[i];
    assert.equal(r.code, 1, `${name}: ${r.stdout}`);
    assert.equal(r.stdout, '', `${name}: nothing described`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${name}: one line`);
    assert.ok(lines[0].length < 400, `${name}: a readable line (${lines[0].length} characters)`);
    assert.match(lines[0], message, name);
  });
  const ok = await runCli(['info', SHIPPED]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /all 193 tensors read, every value finite/);
  assert.match(ok.stdout, /tokenizer: 517 tokens, with a chat template/);
});

test('file-not-found, bad and busy ports: one line naming the value and what to do', async () => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as { port: number }).port;
  try {
    const [missing, missingEval, badPort, busyPort, plot] = await Promise.all([
      runCli(['info', 'models/nope']),
      runCli(['eval', '--model', 'models/nope']),
      runCli(['serve', '--port', '99999']),
      runCli(['serve', '--model', SHIPPED, '--port', String(port)]),
      runCli(['plot', 'runs/nope']),
    ]);
    const expect: [typeof missing, RegExp][] = [
      [missing, /^nanoseek: models\/nope: no such file or directory \(expected a checkpoint directory or a \.gguf file\)$/],
      [missingEval, /^nanoseek: models\/nope: no such file or directory \(expected a checkpoint directory or a \.gguf file\)$/],
      [badPort, /^nanoseek: --port: expected an integer from 0 to 65535, got "99999"$/],
      [busyPort, new RegExp(`^nanoseek: port ${port} on 127\\.0\\.0\\.1 is already in use \\(another nanoseek serve\\?\\): stop that server, or pass --port <another port> \\(--port 0 picks a free one\\)$`)],
      [plot, /^nanoseek: runs\/nope: no such directory \(give the run directory, the --out of nanoseek train\)$/],
    ];
    for (const [r, message] of expect) {
      assert.equal(r.code, 1);
      // Commander's usage hint may follow a flag error; the error itself is one line.
      assert.match(r.stderr.split('\n')[0], message);
    }
  } finally {
    busy.close();
  }
});
