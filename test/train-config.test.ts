// Training configs: every mistake is refused before any work, with a message naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { presetConfig } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import { saveModel } from '../src/io/model-file.js';
import { applyOverrides, checkTrainConfig, parseTrainConfig, resumeConfig, train } from '../src/train/index.js';
import { parseGrpoConfig } from '../src/train/grpo/config.js';
import { parseR1ZeroConfig } from '../src/train/grpo/r1zero.js';
import { fitWarmup, Overrides } from '../src/cli/run-control.js';
import { resolvePathFields } from '../src/util/json-fields.js';
import { runCli } from './helpers.js';

const base = {
  stage: 'pretrain',
  model: { preset: 'nano' },
  tokenizer: { train: { vocab_size: 400 } },
  data: { source: 'tasks' },
  seq_len: 64,
  batch_size: 4,
  steps: 10,
  lr: 0.001,
};

function parse(overrides: Record<string, unknown>, stage?: 'pretrain' | 'sft') {
  return parseTrainConfig(applyOverrides(base, overrides), 'cfg.json', stage);
}

/** A config shipped in configs/ (beside test/ in the source tree, two levels up from dist/test/). */
function shippedConfig(file: string): unknown {
  const path = [`../configs/${file}`, `../../configs/${file}`].map((p) => new URL(p, import.meta.url)).find((u) => existsSync(u))!;
  return JSON.parse(readFileSync(path, 'utf8'));
}

test('the shipped configs parse', () => {
  for (const [file, stage] of [['pretrain-nano.json', 'pretrain'], ['pretrain-micro.json', 'pretrain'], ['sft-nano.json', 'sft'], ['r1-sft.json', 'sft']] as const) {
    assert.equal(parseTrainConfig(shippedConfig(file), file, stage).stage, stage);
  }
  assert.equal(parseGrpoConfig(shippedConfig('r1-grpo.json'), 'r1-grpo.json').template, 'r1');
  assert.equal(parseR1ZeroConfig(shippedConfig('r1zero.json'), 'r1zero.json').grpo.template, 'r1-zero');
});

test('defaults are filled in', () => {
  const cfg = parse({});
  assert.equal(cfg.grad_accum, 1);
  assert.equal(cfg.beta2, 0.95);
  assert.deepEqual(cfg.model, { preset: 'nano', mtp: false, vocab_size: null, context: null });
  assert.deepEqual(parse({ 'model.context': null }).model, cfg.model, 'a saved run config writes context: null');
  assert.deepEqual(cfg.tokenizer, { train: { vocab_size: 400, documents: 5000, min_frequency: 2 } });
  assert.equal(cfg.data.seed, 0);
});

test('unknown fields, wrong types and bad values name the field', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ stpes: 10 }, /cfg\.json: stpes = 10: unknown field/],
    [{ steps: '10' }, /steps = "10": must be an integer/],
    [{ steps: 0 }, /steps = 0: must be >= 1/],
    [{ lr: -1 }, /lr = -1: must be > 0/],
    [{ warmup: 11 }, /warmup = 11: must be in \[0, 10\]/],
    [{ 'model.preset': 'huge' }, /model\.preset = "huge": must be one of/],
    [{ 'model.colour': 'red' }, /model\.colour = "red": unknown field/],
    [{ 'model.context': 8 }, /model\.context = 8: must be >= 16/],
    [{ 'data.source': 'web' }, /data\.source = "web": must be one of "tasks", "text", "jsonl"/],
    [{ 'data.val_seed': 0 }, /data\.val_seed = 0: must differ from data\.seed/],
    [{ 'data.countdown': { count: [1, 3], numberMax: 25, targetMax: 100 } }, /data\.countdown = .*count\[0\]/],
    [{ mtp_weight: 0.3 }, /mtp_weight = 0\.3: is > 0 but the model has no MTP module/],
    [{ 'tokenizer.train.vocab_size': 100 }, /tokenizer\.train\.vocab_size = 100: must be >= 265/],
    [{ tokenizer: {} }, /tokenizer\.path = missing: the tokenizer needs "path" or "train"/],
  ];
  for (const [overrides, message] of cases) assert.throws(() => parse(overrides), message, JSON.stringify(overrides));
  assert.throws(() => parse({}, 'sft'), /stage = "pretrain": this config is for "pretrain", not "sft"/);
  const { stage: _, ...noStage } = base;
  assert.throws(() => parseTrainConfig(noStage, 'cfg.json'), /stage = missing: required field is missing/);
  assert.throws(() => parse({ stage: 'sft', 'data.source': 'text' }), /data\.source = "text": must be one of "tasks", "jsonl"/);
  assert.throws(() => parse({ stage: 'sft', data: { source: 'tasks', tasks: [{ task: 'arithmetic', digits: [2], ops: ['+'] }] } }), /data\.tasks\[0\] = .*digits/);
});

test('shapes the model cannot take are refused before any work', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nanoseek-cfg-'));
  await assert.rejects(checkTrainConfig(parse({ seq_len: 600 }), 'cfg.json'), /seq_len = 600: exceeds max_position_embeddings of preset "nano" \(512\)/);
  // A preset's context can be set: the mail model reads longer prompts than nano's 512 tokens.
  await checkTrainConfig(parse({ seq_len: 600, 'model.context': 600 }), 'cfg.json');
  await assert.rejects(checkTrainConfig(parse({ seq_len: 700, 'model.context': 600 }), 'cfg.json'), /seq_len = 700: exceeds model\.context \(600\)/);
  await assert.rejects(checkTrainConfig(parse({ 'model.vocab_size': 300 }), 'cfg.json'), /model\.vocab_size = 300: the tokenizer's vocabulary \(400\) is larger than the model's \(300\)/);
  await assert.rejects(checkTrainConfig(parse({ 'data.source': 'text', 'data.path': join(dir, 'none.txt') }), 'cfg.json'), /data\.path = ".*none\.txt": no such file/);

  const init = join(dir, 'init');
  await saveModel(new CausalLM(presetConfig('nano', { vocabSize: 300, maxPositionEmbeddings: 48 })), init);
  await assert.rejects(checkTrainConfig(parse({ model: { init } }), 'cfg.json'), /seq_len = 64: exceeds the init checkpoint's max_position_embeddings \(48\)/);
  await assert.rejects(checkTrainConfig(parse({ model: { init }, seq_len: 32 }), 'cfg.json'), /tokenizer\.train\.vocab_size = 400: the tokenizer's vocabulary \(400\) is larger than the model's \(300\)/);
  const { tokenizer: _, ...noTokenizer } = base;
  await assert.rejects(checkTrainConfig(parseTrainConfig({ ...noTokenizer, model: { init }, seq_len: 32 }, 'cfg.json'), 'cfg.json'), /holds no tokenizer\.json/);

  // train() checks first: a bad config leaves no trace on disk.
  const out = join(dir, 'run');
  await assert.rejects(train(parse({ seq_len: 600 }), { out, source: 'cfg.json' }), /seq_len = 600/);
  assert.equal(existsSync(out), false);
});

test('a resumed run may change only its length and cadence', () => {
  const saved = parse({});
  assert.equal(resumeConfig(saved, parse({ steps: 20, log_every: 5 }), 'cfg.json').steps, 20);
  assert.throws(() => resumeConfig(saved, parse({ lr: 0.002 }), 'cfg.json'), /cannot resume with lr = 0\.002: the run was started with 0\.001/);
  assert.throws(() => resumeConfig(saved, parse({ 'data.seed': 5 }), 'cfg.json'), /cannot resume with data\.seed = 5: the run was started with 0/);
});

test('flag overrides: a shorter --steps scales the warmup with a notice; errors name the flag that set the field', async () => {
  const raw = shippedConfig('pretrain-nano.json') as Record<string, unknown>;
  const notices: string[] = [];
  const short = new Overrides().fromFlags({ steps: '30' }, { steps: 'steps' });
  fitWarmup(raw, short, 'configs/pretrain-nano.json', null, (l) => notices.push(l));
  const cfg = parseTrainConfig(applyOverrides(raw, short.values), 'configs/pretrain-nano.json');
  assert.equal(cfg.warmup, 3);
  assert.deepEqual(notices, ['--steps 30: warmup 3 (configs/pretrain-nano.json warms up for 30 of 300 steps; --warmup sets it)']);
  // GRPO's 5 warmup steps of 60 cannot fit a 4-step run: they scale to none.
  const grpo = new Overrides().fromFlags({ steps: '4' }, { steps: 'steps' });
  fitWarmup(shippedConfig('r1-grpo.json'), grpo, 'configs/r1-grpo.json', null, () => {});
  assert.equal(parseGrpoConfig(applyOverrides(shippedConfig('r1-grpo.json'), grpo.values), 'configs/r1-grpo.json').warmup, 0);
  // A resumed run keeps the warmup it started with; a longer run keeps the config's; --warmup wins.
  const resumed = new Overrides().fromFlags({ steps: '40' }, { steps: 'steps' });
  fitWarmup(raw, resumed, 'cfg', { warmup: 3 }, () => {});
  assert.equal(resumed.values.warmup, 3);
  const longer = new Overrides().fromFlags({ steps: '900' }, { steps: 'steps' });
  fitWarmup(raw, longer, 'cfg', null, () => {});
  assert.equal(longer.values.warmup, undefined);

  const both = new Overrides().fromFlags({ steps: '4', warmup: '5' }, { steps: 'steps', warmup: 'warmup' });
  fitWarmup(raw, both, 'cfg', null, () => {});
  await assert.rejects(both.naming(() => parseTrainConfig(applyOverrides(raw, both.values), 'configs/pretrain-nano.json')), /^Error: --warmup 5: warmup = 5: must be in \[0, 4\]$/);
  const lr = new Overrides().fromFlags({ lr: '-1' }, { lr: 'lr' });
  await assert.rejects(lr.naming(() => parseTrainConfig(applyOverrides(raw, lr.values), 'configs/pretrain-nano.json')), /^Error: --lr -1: lr = -1: must be > 0$/);
  const set = new Overrides().fromSet(['data.val_seed=1'], 'data.seed=3');
  await assert.rejects(set.naming(() => parseTrainConfig(applyOverrides(raw, set.values), 'configs/pretrain-nano.json')), /^Error: --set data\.val_seed=1: data\.val_seed = 1: must differ from data\.seed/);
  // A field no flag set is still blamed on the file.
  await assert.rejects(new Overrides().naming(() => parseTrainConfig({ ...raw, lr: -1 }, 'configs/x.json')), /^Error: configs\/x\.json: lr = -1/);
});

test('paths in a config are relative to the config file; command-line paths to the current directory', () => {
  const json = { model: { init: '../models/nano-base' }, tokenizer: { path: '/abs/tok' }, data: { path: 'corpus.txt', val_path: null } };
  const out = resolvePathFields(json, ['model.init', 'tokenizer.path', 'data.path', 'data.val_path', 'missing.field'], '/repo/configs') as typeof json;
  assert.deepEqual(out, { model: { init: '/repo/models/nano-base' }, tokenizer: { path: '/abs/tok' }, data: { path: '/repo/configs/corpus.txt', val_path: null } });
  assert.equal(json.model.init, '../models/nano-base', 'the input is not changed');
});

test('the shipped SFT config runs from any directory (its paths and --config resolve to the package), and its checkpoints say how to evaluate them', { timeout: 120_000 }, async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'nanoseek-elsewhere-'));
  const r = await runCli(['train', 'sft', '--config', 'configs/r1-sft.json', '--out', 'sft', '--steps', '2', '--set', 'eval_batches=1'], { cwd });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /--config configs\/r1-sft\.json: not in the current directory; using the package's .*configs\/r1-sft\.json/);
  assert.match(r.stderr, /--steps 2: warmup 0 \(configs\/r1-sft\.json warms up for 15 of 150 steps/);
  const card = JSON.parse(readFileSync(join(cwd, 'sft', 'latest', 'model_card.json'), 'utf8'));
  assert.deepEqual(card.prompt, { template: 'r1', open_think: false });
  assert.deepEqual(card.task, { task: 'arithmetic', digits: [1, 1, 1, 1, 1], ops: ['+'] });
  // eval needs no --template or --task: the checkpoint's card gives both.
  const e = await runCli(['eval', '--model', join(cwd, 'sft', 'latest'), '--problems', '4', '--n', '0', '--json'], { cwd });
  assert.equal(e.code, 0, e.stderr);
  const report = JSON.parse(e.stdout);
  assert.equal(report.template, 'r1');
  assert.equal(report.task, 'arithmetic 1x1x1x1x1 +');
  assert.ok(report.format_rate > 0.5, `format ${report.format_rate}`);
});

test('a parsed config parses again to itself (what --resume reads from trainer_state.json): tokenizer from init, text data, distill', () => {
  for (const json of [
    { stage: 'sft', model: { init: 'runs/x' }, data: { source: 'jsonl', path: 'sft.jsonl' }, seq_len: 64, batch_size: 2, steps: 5, lr: 1e-3 },
    { stage: 'pretrain', model: { init: 'runs/x' }, data: { source: 'text', path: 'c.txt' }, seq_len: 64, batch_size: 2, steps: 5, lr: 1e-3 },
    { stage: 'distill', model: { init: 'runs/x' }, data: { source: 'jsonl', path: 't.jsonl' }, distill: { teacher: 'models/t', lambda: 0.5, tasks: [{ task: 'arithmetic', digits: [1, 1], ops: ['+'] }] }, seq_len: 64, batch_size: 2, steps: 5, lr: 1e-3 },
  ]) {
    const once = parseTrainConfig(json);
    assert.deepEqual(parseTrainConfig(JSON.parse(JSON.stringify(once))), once);
  }
  assert.throws(() => parseTrainConfig({ stage: 'pretrain', model: { init: 'x' }, data: { source: 'text', path: 'c.txt', field: 'body' }, seq_len: 64, batch_size: 2, steps: 5, lr: 1e-3 }), /data\.field .*applies to jsonl data only/);
  assert.throws(() => parseTrainConfig({ stage: 'sft', model: { init: 'x' }, data: { source: 'jsonl', path: 's.jsonl' }, distill: { teacher: 't' }, seq_len: 64, batch_size: 2, steps: 5, lr: 1e-3 }), /distill .*applies to stage "distill" only/);
});
