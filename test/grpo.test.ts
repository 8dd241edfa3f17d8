// GRPO training: rollout log-probs against teacher forcing, micro-batch shapes, a step that raises the
// reward, dynamic sampling, μ > 1 against the stored π_old, β = 0 without a reference model, config
// errors, rejection sampling, and kill-and-resume through the CLI (bit-exact).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../src/io/model-file.js';
import type { CausalLM } from '../src/model/model.js';
import * as T from '../src/tensor/index.js';
import { sampleCompletions } from '../src/infer/index.js';
import { heldOutSet, renderPrompt, type Problem, type TaskSpec } from '../src/tasks/index.js';
import type { Tokenizer } from '../src/tokenizer/index.js';
import { trainGrpo, type GrpoStepInfo } from '../src/train/grpo/trainer.js';
import { parseGrpoConfig, type GrpoConfig } from '../src/train/grpo/config.js';
import { registerReward, unregisterReward, makeScorer, type RewardContext } from '../src/train/grpo/reward.js';
import { rejectSample } from '../src/train/grpo/reject.js';
import { planMicroBatches, sequenceLogProbs, type Sequence } from '../src/train/grpo/logprobs.js';
import { fixtureTokenizer, randomModel, saveFixture } from './serve-fixture.js';

const TASK: TaskSpec = { task: 'arithmetic', digits: [1, 1], ops: ['+'] };

function problems(n: number): Problem[] {
  return heldOutSet({ task: 'arithmetic', digits: [2, 2], ops: ['+'] }, n);
}

async function fixture(seed = 1): Promise<{ tok: Tokenizer; dir: string }> {
  const tok = await fixtureTokenizer();
  const { dir } = await saveFixture(randomModel(tok, seed), tok);
  return { tok, dir };
}

function config(init: string, over: Record<string, unknown> = {}): GrpoConfig {
  return parseGrpoConfig({
    model: { init },
    data: { source: 'tasks', tasks: [TASK], seed: 1 },
    template: 'r1',
    rewards: { accuracy: 0.9, format: 0.1 },
    steps: 2,
    prompts_per_step: 2,
    group_size: 4,
    max_new_tokens: 6,
    lr: 0.01,
    ...over,
  });
}

const outDir = () => join(mkdtempSync(join(tmpdir(), 'nanoseek-grpo-')), 'run');

test('rollout log-probs equal a teacher-forced recomputation', async () => {
  const tok = await fixtureTokenizer();
  const model = randomModel(tok, 3);
  const prompts = problems(3).map((p) => renderPrompt(tok, p, 'r1').ids);
  const done = await sampleCompletions(model, tok, prompts, { samples: 3, maxNewTokens: 12, temperature: 1, topP: 0.9, seed: 5 });
  assert.equal(done.length, 9);
  const seqs: Sequence[] = done.map((c) => ({ prompt: prompts[c.promptIndex], completion: c.tokens }));
  const forced = sequenceLogProbs(model, seqs, tok.special.pad!, 256);
  let worst = 0;
  done.forEach((c, i) => c.logprobs.forEach((lp, t) => (worst = Math.max(worst, Math.abs(lp - forced[i][t])))));
  assert.ok(worst < 1e-4, `max |Δ log p| = ${worst}`);
  // The same seed samples the same completions.
  const again = await sampleCompletions(model, tok, prompts, { samples: 3, maxNewTokens: 12, temperature: 1, topP: 0.9, seed: 5 });
  assert.deepEqual(again.map((c) => c.tokens), done.map((c) => c.tokens));
});

test('micro-batches: every sequence once, longest first, B·T from a few sizes', () => {
  const seqs: Sequence[] = [5, 40, 33, 90, 7, 64, 12, 100, 3].map((n, i) => ({ prompt: new Array(10).fill(i), completion: new Array(n).fill(1) }));
  const plan = planMicroBatches(seqs, 256);
  assert.deepEqual(plan.flatMap((m) => m.members).sort((a, b) => a - b), seqs.map((_, i) => i));
  for (const m of plan) {
    assert.ok(m.members.length <= m.B && m.T % 32 === 0 && 256 % (m.B * m.T) === 0, JSON.stringify(m));
    for (const s of m.members) assert.ok(seqs[s].prompt.length + seqs[s].completion.length - 1 <= m.T);
  }
  assert.equal(plan[0].members[0], 7);
  assert.throws(() => planMicroBatches([{ prompt: [1], completion: new Array(300).fill(1) }], 256), /does not fit a micro-batch of 256 tokens/);
});

/** P(first completion token is one of `ids`) after each prompt, averaged. */
function firstTokenMass(model: CausalLM, prompts: number[][], ids: Set<number>): number {
  let total = 0;
  T.noGrad(() =>
    T.tidy(() => {
      for (const p of prompts) {
        const { logits } = model.forward(p, 1, p.length);
        const V = logits.shape[1];
        const row = Array.from(logits.data.subarray((p.length - 1) * V, p.length * V));
        const max = Math.max(...row);
        const z = row.reduce((s, x) => s + Math.exp(x - max), 0);
        for (const id of ids) total += Math.exp(row[id] - max) / z / prompts.length;
      }
    }),
  );
  return total;
}

test('GRPO steps raise the probability of the rewarded completions', async () => {
  const { tok, dir } = await fixture(2);
  const good = new Set(Array.from({ length: 200 }, (_, i) => i + 100));
  registerReward('toy-first-token', (c: RewardContext) => (good.has(c.tokens[0]) ? 1 : 0));
  try {
    const cfg = config(dir, { rewards: { 'toy-first-token': 1 }, steps: 4, prompts_per_step: 2, group_size: 8, max_new_tokens: 2, lr: 0.03, seed: 3 });
    const prompts = heldOutSet(TASK, 8).map((p) => renderPrompt(tok, p, 'r1').ids);
    const before = firstTokenMass((await loadModel(dir)).model, prompts, good);
    const out = outDir();
    const steps: GrpoStepInfo[] = [];
    await trainGrpo(cfg, { out, onStep: (s) => steps.push(s) });
    const after = firstTokenMass((await loadModel(join(out, 'latest'))).model, prompts, good);
    assert.ok(after > before + 0.1, `P(rewarded first token): ${before.toFixed(3)} → ${after.toFixed(3)}`);
    assert.ok(steps.every((s) => s.updates.length === 1 && s.updates[0].maxLogRatio < 1e-3), 'the first update is on-policy: ratio 1');
  } finally {
    unregisterReward('toy-first-token');
  }
});

test('dynamic sampling drops all-equal groups and refills them from extra rounds', async () => {
  const { dir } = await fixture();
  registerReward('toy-constant', () => 0.5);
  registerReward('toy-parity', (c: RewardContext) => (Number((c.problem as { answer: string }).answer) % 2 === 0 ? 1 : c.tokens.length % 2));
  try {
    let steps: GrpoStepInfo[] = [];
    const out = outDir();
    await trainGrpo(config(dir, { rewards: { 'toy-constant': 1 }, steps: 1, dynamic_sampling: true, oversample_rounds: 2 }), { out, onStep: (s) => steps.push(s) });
    assert.equal(steps[0].groupsUsed, 0);
    assert.equal(steps[0].rolloutRounds, 3);
    assert.equal(steps[0].updates.length, 0);
    const { model: trained } = await loadModel(join(out, 'latest'));
    const { model: start } = await loadModel(dir);
    for (const [name, t] of trained.params.tensors) assert.deepEqual(t.data, start.params.tensors.get(name)!.data, `${name} changed without an update`);

    steps = [];
    await trainGrpo(config(dir, { rewards: { 'toy-parity': 1 }, steps: 3, prompts_per_step: 4, dynamic_sampling: true, max_new_tokens: 3 }), { out: outDir(), onStep: (s) => steps.push(s) });
    for (const s of steps) {
      const rewards = s.rollouts.map((r) => r.score.reward);
      let informative = 0;
      for (let g = 0; g < rewards.length; g += 4) if (new Set(rewards.slice(g, g + 4)).size > 1) informative++;
      assert.equal(s.groupsUsed, informative);
      assert.equal(s.updates.length, informative > 0 ? 1 : 0);
    }
  } finally {
    unregisterReward('toy-constant');
    unregisterReward('toy-parity');
  }
});

test('μ = 2: the second update compares against the stored π_old, not a recomputed one', async () => {
  const { dir } = await fixture();
  registerReward('toy-length', (c: RewardContext) => c.tokens.length);
  try {
    const steps: GrpoStepInfo[] = [];
    await trainGrpo(config(dir, { rewards: { 'toy-length': 1 }, steps: 1, mu: 2, lr: 0.01, max_new_tokens: 8 }), { out: outDir(), onStep: (s) => steps.push(s) });
    const [u1, u2] = steps[0].updates;
    assert.ok(u1.maxLogRatio < 1e-3, `first update ratio off by ${u1.maxLogRatio}`);
    assert.ok(u2.maxLogRatio > 100 * Math.max(u1.maxLogRatio, 1e-6), `second update: max |log ρ| = ${u2.maxLogRatio}`);
    assert.notEqual(u2.meanRatio, 1);
  } finally {
    unregisterReward('toy-length');
  }
});

test('β = 0 keeps no reference model; β > 0 measures a KL once the policy moves', async () => {
  const { dir } = await fixture();
  const lines: string[] = [];
  const records: number[] = [];
  registerReward('toy-length2', (c: RewardContext) => c.tokens.length);
  try {
    const noRef: number[] = [];
    await trainGrpo(config(dir, { steps: 2, mu: 2, rewards: { 'toy-length2': 1 } }), { out: outDir(), log: (l) => lines.push(l), onRecord: (r) => noRef.push(r.kl) });
    assert.ok(lines.some((l) => l.includes('β = 0 (no reference model)')), lines.join('\n'));
    assert.deepEqual(noRef, [0, 0]);
    const withRef: string[] = [];
    await trainGrpo(config(dir, { steps: 2, beta: 0.1, mu: 2, rewards: { 'toy-length2': 1 } }), { out: outDir(), log: (l) => withRef.push(l), onRecord: (r) => records.push(r.kl) });
    assert.ok(!withRef.some((l) => l.includes('no reference model')));
    assert.equal(records.length, 2);
    assert.ok(records[1] > 0, `KL ${records.join(', ')}`);
  } finally {
    unregisterReward('toy-length2');
  }
});

test('config errors name the field; rewards resolve by name', async () => {
  const base = { model: { init: 'x' }, data: { tasks: [TASK] }, lr: 0.01, steps: 3 };
  assert.throws(() => parseGrpoConfig({ ...base, group_size: 1 }), /group_size = 1: GRPO scores each sample against the others of its group, so it needs at least 2/);
  assert.throws(() => parseGrpoConfig({ ...base, group_size: 0 }), /group_size = 0: must be >= 2/);
  assert.throws(() => parseGrpoConfig({ ...base, rewards: { nope: 1 } }), /rewards = .*unknown reward "nope"/);
  assert.throws(() => parseGrpoConfig({ ...base, epsilon: 0.2 }), /epsilon = 0.2: unknown field/);
  assert.throws(() => parseGrpoConfig({ ...base, oversample_rounds: 2 }), /oversample_rounds = 2: .*dynamic_sampling/);
  assert.throws(() => parseGrpoConfig({ ...base, data: { tasks: [{ task: 'arithmetic', digits: [0, 1], ops: ['+'] }] } }), /data.tasks\[0\]/);
  assert.throws(() => registerReward('accuracy', () => 0), /built-in/);
  const p = problems(1)[0] as { answer: string } & Problem;
  const score = makeScorer({ accuracy: 0.9, format: 0.1, overlong: 1 });
  const ctx = { prompt: '', problem: p, promptOpensThink: false, maxTokens: 40 };
  assert.deepEqual(score({ ...ctx, completion: `<think>x</think> <answer>${p.answer}</answer>`, tokens: new Array(5).fill(0) }), { reward: 1, parts: { accuracy: 1, format: 1, overlong: 0 } });
  assert.equal(score({ ...ctx, completion: 'no', tokens: new Array(40).fill(0) }).reward, -1);
  assert.equal(score({ ...ctx, completion: 'no', tokens: new Array(32).fill(0) }).parts.overlong, -0.5);
  await assert.rejects(trainGrpo(config('/nonexistent'), { out: outDir() }), /model.init = "\/nonexistent": no such file or directory/);
});

test('rejection sampling keeps only correct, strictly formatted completions, with the opened <think> restored', async () => {
  const tok = await fixtureTokenizer();
  const { scriptedModel } = await import('./serve-fixture.js');
  const p: Problem = { task: 'arithmetic', question: 'What is 2 + 2?', answer: '4' };
  const model = scriptedModel(tok, 'Two and two make four.</think> <answer>4</answer>');
  const r = await rejectSample(model, tok, [p, { ...p, question: 'What is 2 + 3?', answer: '5' }], { template: 'r1', samples: 3, keepPerProblem: 2, maxNewTokens: 24, temperature: 1, seed: 1 });
  assert.equal(r.sampled, 6);
  assert.equal(r.correct, 3);
  assert.equal(r.solved, 1);
  assert.deepEqual(r.records, [{ prompt: 'What is 2 + 2?', completion: '<think>\nTwo and two make four.</think> <answer>4</answer>' }]);
  // A model exported with the R1-Zero prompt as its chat template opens " <think>" with nothing after it.
  const { r1ZeroChatTemplate } = await import('../src/tokenizer/index.js');
  const zeroTok: typeof tok = Object.create(tok, { chatTemplate: { value: r1ZeroChatTemplate(true) } });
  const zeroModel = scriptedModel(zeroTok, 'Two and two make four.</think> <answer>4</answer>');
  const z = await rejectSample(zeroModel, zeroTok, [p], { template: 'r1', samples: 1, keepPerProblem: 1, maxNewTokens: 24, temperature: 1, seed: 1 });
  assert.deepEqual(z.records, [{ prompt: 'What is 2 + 2?', completion: '<think>Two and two make four.</think> <answer>4</answer>' }]);
});

// From source (tsx) run the TypeScript entry point through tsx; from dist/ run the compiled one.
const here = fileURLToPath(import.meta.url);
const compiled = here.endsWith('.js');
const main = join(dirname(here), '..', 'src', 'cli', compiled ? 'main.js' : 'main.ts');
const nodeArgs = compiled ? [main] : ['--import', 'tsx', main];

function start(args: string[]) {
  const child = spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  return { child, output: () => output };
}

async function runToEnd(args: string[]): Promise<string> {
  const { child, output } = start(args);
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, `nanoseek ${args.join(' ')} failed:\n${output()}`);
  return output();
}

test('train grpo refuses the flags only pretraining and SFT have, naming them', async () => {
  const { child, output } = start(['train', 'grpo', '--out', join(tmpdir(), 'nanoseek-unused'), '--batch-size', '4']);
  const [code] = await once(child, 'exit');
  assert.notEqual(code, 0);
  assert.match(output(), /--batch-size does not apply to grpo/);
});

test('grpo train: SIGKILL after a checkpoint, then --resume: bit-identical to an uninterrupted run', { timeout: 120_000 }, async () => {
  const { dir } = await fixture(4);
  const root = mkdtempSync(join(tmpdir(), 'nanoseek-grpo-resume-'));
  const cfgPath = join(root, 'grpo.json');
  const STEPS = 6;
  writeFileSync(cfgPath, JSON.stringify({
    model: { init: dir },
    data: { source: 'tasks', tasks: [TASK], seed: 2 },
    template: 'r1',
    rewards: { accuracy: 0.9, format: 0.1, overlong: 0.5 },
    steps: STEPS, prompts_per_step: 2, group_size: 4, max_new_tokens: 6, mu: 2, beta: 0.05, eps_high: 0.28,
    dynamic_sampling: true, oversample_rounds: 1, lr: 0.01, warmup: 1, bias_update_speed: 0.01,
    eval_every: 3, eval_problems: 2, save_every: 2, log_every: 1,
  }));
  const whole = join(root, 'whole');
  const killed = join(root, 'killed');
  await runToEnd(['grpo', 'train', '--config', cfgPath, '--out', whole]);

  const { child, output } = start(['grpo', 'train', '--config', cfgPath, '--out', killed]);
  const exited = once(child, 'exit');
  while (!existsSync(join(killed, 'checkpoint-2', 'trainer_state.json'))) {
    assert.equal(child.exitCode, null, `the run ended before its first checkpoint:\n${output()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill('SIGKILL');
  const [, signal] = await exited;
  assert.equal(signal, 'SIGKILL');
  assert.equal(existsSync(join(killed, `checkpoint-${STEPS}`)), false, 'the run must be killed before it finishes');

  // Resumed through `nanoseek train grpo`, the alias under the other trainers' name: the same run.
  assert.match(await runToEnd(['train', 'grpo', '--out', killed, '--resume']), /resuming .* from checkpoint-\d+/);
  const final = (run: string, file: string) => readFileSync(join(run, `checkpoint-${STEPS}`, file));
  assert.ok(final(whole, 'model.safetensors').equals(final(killed, 'model.safetensors')), 'final weights differ');
  assert.ok(final(whole, 'optimizer.safetensors').equals(final(killed, 'optimizer.safetensors')), 'final optimizer state differs');
  const state = (run: string) => {
    const { elapsed_s: _, ...rest } = JSON.parse(final(run, 'trainer_state.json').toString());
    return rest;
  };
  assert.deepEqual(state(killed), state(whole));
  const metrics = (run: string) =>
    readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
      const { elapsed_s: _e, rollout_s: _r, update_s: _u, ...rest } = JSON.parse(l);
      return rest;
    });
  assert.deepEqual(metrics(killed), metrics(whole));
  assert.equal(metrics(whole).length, STEPS);
});
