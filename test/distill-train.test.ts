// `nanoseek train distill` through the library: a dense Llama student learning from the shipped
// DeepSeek-V3 MoE teacher, off-policy on traces and on-policy on its own samples. A run stopped
// mid-way and resumed ends with the same weights as an uninterrupted one; on-policy batches are the
// student's samples with the loss on their reply tokens only, the same for the same seed; a student
// with another tokenizer is refused, saying why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { loadModel, loadModelTokenizer } from '../src/io/model-file.js';
import { countParameters, presetConfig } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import * as T from '../src/tensor/index.js';
import { parseTrainConfig, train } from '../src/train/index.js';
import { Distiller } from '../src/train/distill/distiller.js';
import { parseDistillRecipe, studentConfig } from '../src/train/distill/recipe.js';
import { cliArgs, fixtureTokenizer } from './serve-fixture.js';

const TEACHER = 'models/nano-r1zero';
const TASK = { task: 'arithmetic', digits: [1, 1, 1, 1, 1], ops: ['+'] };

// Six replies in the teacher's own chain format (what `distill traces` writes).
const TRACES = [
  ['What is 1 + 2 + 3 + 4 + 5?', '1 + 2 + 3 + 4 + 5\n= 3 + 3 + 4 + 5\n= 6 + 4 + 5\n= 10 + 5\n= 15', '15'],
  ['What is 2 + 2 + 2 + 9 + 1?', '2 + 2 + 2 + 9 + 1\n= 4 + 2 + 9 + 1\n= 6 + 9 + 1\n= 15 + 1\n= 16', '16'],
  ['What is 7 + 0 + 3 + 1 + 8?', '7 + 0 + 3 + 1 + 8\n= 7 + 3 + 1 + 8\n= 10 + 1 + 8\n= 11 + 8\n= 19', '19'],
  ['What is 5 + 5 + 1 + 6 + 2?', '5 + 5 + 1 + 6 + 2\n= 10 + 1 + 6 + 2\n= 11 + 6 + 2\n= 17 + 2\n= 19', '19'],
  ['What is 9 + 9 + 4 + 0 + 3?', '9 + 9 + 4 + 0 + 3\n= 18 + 4 + 0 + 3\n= 22 + 0 + 3\n= 22 + 3\n= 25', '25'],
  ['What is 3 + 8 + 6 + 2 + 7?', '3 + 8 + 6 + 2 + 7\n= 11 + 6 + 2 + 7\n= 17 + 2 + 7\n= 19 + 7\n= 26', '26'],
].map(([q, steps, a]) => JSON.stringify({ prompt: q, completion: `<think>\n${steps}\n</think>\n<answer>${a}</answer>` })).join('\n');

function rawConfig(dir: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    stage: 'distill',
    model: { preset: 'nano-dense' },
    tokenizer: { path: resolve(TEACHER) },
    data: { source: 'jsonl', path: join(dir, 'traces.jsonl'), val_path: join(dir, 'traces.jsonl'), format: 'r1' },
    distill: { teacher: resolve(TEACHER), divergence: 'jsd', beta: 0.5, temperature: 1.5, alpha: 0.5, lambda: 0.5, tasks: [TASK], max_new_tokens: 24 },
    seq_len: 128, batch_size: 2, grad_accum: 2, steps: 4, lr: 3e-3, warmup: 1, eval_every: 2, eval_batches: 1, log_every: 1, save_every: 2,
    ...over,
  };
}

const config = (dir: string, over: Record<string, unknown> = {}) => parseTrainConfig(rawConfig(dir, over));

test('train distill: SIGKILL after a checkpoint, then --resume, gives the weights of an uninterrupted run (off- and on-policy steps)', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'nanoseek-distill-'));
  try {
    await writeFile(join(dir, 'traces.jsonl'), `${TRACES}\n`);
    const raw = rawConfig(dir, { steps: 8 });
    const whole = await train(parseTrainConfig(raw), { out: join(dir, 'whole') });
    assert.equal(whole.step, 8);
    const metrics = (await readFile(join(dir, 'whole', 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(metrics.length, 8);
    for (const m of metrics) assert.ok(Number.isFinite(m.kd) && m.kd > 0 && (m.on_policy === 0 || m.on_policy === 1));
    assert.ok(metrics.some((m) => m.on_policy === 1) && metrics.some((m) => m.on_policy === 0), 'λ = 0.5 over 8 steps mixes both kinds here');

    // The same run through the CLI, killed once its first checkpoint exists, resumed from its own saved config.
    const cfgPath = join(dir, 'distill.json');
    await writeFile(cfgPath, JSON.stringify(raw));
    const killed = join(dir, 'killed');
    const child = spawn(process.execPath, [...cliArgs(), 'train', 'distill', '--config', cfgPath, '--out', killed], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = once(child, 'exit');
    while (!existsSync(join(killed, 'checkpoint-2', 'trainer_state.json'))) {
      assert.equal(child.exitCode, null, `the run ended before its first checkpoint:\n${output}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    assert.equal((await exited)[1], 'SIGKILL');
    assert.equal(existsSync(join(killed, 'checkpoint-8')), false, 'the run must be killed before it finishes');
    const resumed = spawn(process.execPath, [...cliArgs(), 'train', 'distill', '--out', killed, '--resume'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let resumedOutput = '';
    resumed.stdout.on('data', (d) => (resumedOutput += d));
    resumed.stderr.on('data', (d) => (resumedOutput += d));
    assert.equal((await once(resumed, 'exit'))[0], 0, resumedOutput);
    assert.match(resumedOutput, /resuming .* from checkpoint-\d+/);
    const final = (run: string, file: string) => readFile(join(run, 'checkpoint-8', file));
    assert.ok((await final(join(dir, 'whole'), 'model.safetensors')).equals(await final(killed, 'model.safetensors')), 'resumed weights differ from the uninterrupted run');
    assert.ok((await final(join(dir, 'whole'), 'optimizer.safetensors')).equals(await final(killed, 'optimizer.safetensors')), 'resumed optimizer state differs');
    const card = JSON.parse((await final(killed, 'model_card.json')).toString());
    assert.match(card.description, /^Distilled from \S*models\/nano-r1zero .*jsd β 0.5 KD, τ 1.5, α 0.5, λ 0.5/);
    assert.equal((await loadModel(join(killed, 'checkpoint-8'))).model.config.architectures[0], 'LlamaForCausalLM');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('train distill: on-policy batches are the student\'s samples, loss on their reply tokens, fixed by the seed', async () => {
  const tok = await loadModelTokenizer(TEACHER);
  const student = new CausalLM(presetConfig('nano-dense', { vocabSize: tok.vocabSize }), { seed: 3 });
  const spec = config('.', { distill: { teacher: TEACHER, lambda: 1, tasks: [TASK], max_new_tokens: 16 } }).distill!;
  const draw = async () => {
    const d = await Distiller.open(spec, student, tok, 'r1', 7, undefined, 'test');
    return d.nextBatches(student, tok, { accum: 1, batch: 3, seqLen: 128, padId: 2 }, () => assert.fail('λ = 1 never takes an off-policy batch'));
  };
  const x = await draw();
  const y = await draw();
  assert.equal(x.onPolicy, true);
  assert.deepEqual(x.micro, y.micro);
  const b = x.micro[0];
  for (let r = 0; r < b.B; r++) {
    const ids = Array.from(b.ids.subarray(r * b.T, (r + 1) * b.T));
    const targets = Array.from(b.targets.subarray(r * b.T, (r + 1) * b.T));
    const firstTarget = targets.findIndex((t) => t !== T.IGNORE_INDEX);
    const prompt = tok.decode(ids.slice(0, firstTarget + 1));
    assert.match(prompt, /What is \d( \+ \d){4}\?/, 'the prompt is a training problem in the student\'s chat format');
    assert.ok(prompt.endsWith('<think>'), 'the chat template opens the think block; the sample continues it');
    const reply = targets.filter((t) => t !== T.IGNORE_INDEX);
    assert.ok(reply.length >= 1 && reply.length <= 16);
    // Targets are the next inputs: the sampled tokens themselves.
    for (let t = firstTarget; t < firstTarget + reply.length - 1; t++) assert.equal(targets[t], ids[t + 1]);
  }
});

test('train distill: a student with another tokenizer is refused with the reason', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'nanoseek-distill-'));
  try {
    await writeFile(join(dir, 'traces.jsonl'), `${TRACES}\n`);
    await (await fixtureTokenizer()).save(join(dir, 'other-tokenizer'));
    const cfg = config(dir, { tokenizer: { path: join(dir, 'other-tokenizer') } });
    await assert.rejects(train(cfg, { out: join(dir, 'run') }), /distill\.teacher \S*models\/nano-r1zero: its tokenizer is not the student's \(the teacher's vocabulary has 517 tokens, the student's 400\)\. Logit distillation compares/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('distill recipe config: the shipped one parses; mistakes are refused naming the field', async () => {
  const json = JSON.parse(await readFile('configs/distill.json', 'utf8'));
  const cfg = parseDistillRecipe(json, 'configs/distill.json');
  assert.equal(cfg.kd.distill!.lambda, 0);
  assert.ok(cfg.onpolicy.distill!.lambda > 0);
  // The student is about half the teacher's 926K active parameters.
  const p = countParameters(studentConfig(cfg.student, 517, 'test'));
  assert.ok(p.active > 0.4 * 926_384 && p.active < 0.6 * 926_384, `${p.active}`);
  assert.throws(() => parseDistillRecipe({ ...json, extra: 1 }, 'c.json'), /c\.json: extra: unknown field/);
  assert.throws(() => parseDistillRecipe({ ...json, sft: { ...json.sft, data: {} } }, 'c.json'), /sft\.data: the recipe fills it in/);
  assert.throws(() => parseDistillRecipe({ ...json, kd: { ...json.kd, distill: { ...json.kd.distill, alpha: 2 } } }, 'c.json'), /distill\.alpha/);
  assert.throws(() => parseDistillRecipe({ ...json, student: { ...json.student, family: 'gpt2' } }, 'c.json'), /student\.family: must be "llama" or "qwen2"/);
  assert.throws(() => parseDistillRecipe({ ...json, student: { ...json.student, n_routed_experts: 8 } }, 'c.json'), /student\.n_routed_experts: not a config\.json field of preset nano-dense/);
  // The smaller MoE student of configs/distill-moe.json: about half the teacher's active and total parameters.
  const moe = parseDistillRecipe(JSON.parse(await readFile('configs/distill-moe.json', 'utf8')), 'configs/distill-moe.json');
  const q = countParameters(studentConfig(moe.student, 517, 'test'));
  assert.equal(studentConfig(moe.student, 517, 'test').model_type, 'deepseek_v3');
  assert.ok(q.active < 0.6 * 926_384 && q.total < 0.5 * 1_811_120, `${q.active} / ${q.total}`);
});
