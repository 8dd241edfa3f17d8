// The models shipped in models/ (what `npm start` serves) still do what the README says they do:
// nano-r1zero works held-out sums of six numbers out step by step and gets most of them right;
// nano-base, the same network before GRPO, answers them directly and gets fewer right.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { evaluateModel } from '../src/eval/evaluate.js';
import { loadForInference, packageRoot } from '../src/infer/index.js';
import { heldOutSet, type TaskSpec } from '../src/tasks/index.js';

const SIX_DIGITS: TaskSpec = { task: 'arithmetic', digits: [1, 1, 1, 1, 1, 1], ops: ['+'] };

async function greedy(name: string) {
  const { model, tokenizer } = await loadForInference(join(await packageRoot(), 'models', name));
  return evaluateModel(model, tokenizer, heldOutSet(SIX_DIGITS, 60), { template: 'r1-zero', openThink: true, n: 0, maxNewTokens: 128, temperature: 1, seed: 0, examples: 60 });
}

test('shipped models: nano-r1zero reasons its way to answers that nano-base gives directly and less often right', { timeout: 120_000 }, async () => {
  const [base, rl] = [await greedy('nano-base'), await greedy('nano-r1zero')];
  assert.equal(rl.format_rate, 1);
  assert.ok(rl['pass@1'] >= 0.8, `nano-r1zero pass@1 ${rl['pass@1']}`);
  assert.ok(rl['pass@1'] >= base['pass@1'] + 0.2, `nano-base ${base['pass@1']} → nano-r1zero ${rl['pass@1']}`);
  // The RL model writes the reduction chain; the base model's think block is empty.
  assert.ok(rl.examples.every((e) => /^\n[\d +]+\n= /.test(e.completion)), rl.examples[0]?.completion);
  assert.ok(base.examples.filter((e) => e.completion.startsWith(' </think>')).length >= 0.9 * base.examples.length);
  assert.ok(rl.mean_response_tokens > 5 * base.mean_response_tokens);
});
