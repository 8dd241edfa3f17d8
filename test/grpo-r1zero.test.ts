// The R1-Zero pipeline: its chat template renders exactly the RL prompt, config errors name the
// section, and a miniature run (given base, two GRPO steps) writes the report, docs and models.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadForInference, promptOpensThink } from '../src/infer/index.js';
import { heldOutSet, questionText, renderPrompt } from '../src/tasks/index.js';
import { applyChatTemplate, loadTokenizer } from '../src/tokenizer/index.js';
import { parseR1ZeroConfig, runR1Zero } from '../src/train/grpo/r1zero.js';
import { r1ZeroChatTemplate, setChatTemplate } from '../src/tokenizer/index.js';
import { fixtureTokenizer, randomModel, saveFixture } from './serve-fixture.js';

const SPEC = { task: 'arithmetic', digits: [1, 1], ops: ['+'] };

function mini(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    corpus: { seed: 1, bytes: 20000, maxDigits: 2, ops: ['+'] },
    tokenizer: { vocab_size: 400, documents: 100 },
    pretrain: { model: { preset: 'nano' }, seq_len: 32, batch_size: 2, steps: 2, lr: 0.003, eval_batches: 1 },
    grpo: { data: { tasks: [SPEC] }, steps: 2, prompts_per_step: 2, group_size: 2, max_new_tokens: 4, lr: 0.001, open_think: true, eval_every: 1, eval_problems: 2 },
    eval: { tasks: [SPEC], problems: 3, n: 2, max_new_tokens: 4, temperature: 1, seed: 0, examples: 2 },
    ...over,
  };
}

test('the exported chat template renders the prompt GRPO trained on', async () => {
  const tok = await fixtureTokenizer();
  const { dir, remove } = await saveFixture(randomModel(tok), tok);
  try {
    for (const openThink of [false, true]) {
      await setChatTemplate(dir, r1ZeroChatTemplate(openThink));
      const t = await loadTokenizer(dir);
      for (const p of heldOutSet({ task: 'countdown', count: [3, 3], numberMax: 25, targetMax: 100 }, 2)) {
        const rl = renderPrompt(t, p, 'r1-zero', openThink);
        const chat = applyChatTemplate(t, [{ role: 'system', content: 'ignored' }, { role: 'user', content: questionText(p) }]);
        assert.deepEqual(t.encode(chat), rl.ids);
        assert.equal(promptOpensThink(chat), openThink);
      }
    }
  } finally {
    await remove();
  }
});

test('r1zero config errors name the section and field', () => {
  assert.throws(() => parseR1ZeroConfig(mini({ extra: 1 })), /extra: unknown field/);
  assert.throws(() => parseR1ZeroConfig(mini({ corpus: { bytes: 10, ops: ['/'] } })), /corpus: .*ops/);
  assert.throws(() => parseR1ZeroConfig(mini({ grpo: { data: { tasks: [SPEC] }, steps: 2, lr: 0.1, group_size: 1 } })), /\(grpo\): group_size = 1/);
  assert.throws(() => parseR1ZeroConfig(mini({ pretrain: { model: { preset: 'huge' }, seq_len: 8, batch_size: 1, steps: 1, lr: 0.1 } })), /\(pretrain\): model.preset/);
  assert.throws(() => parseR1ZeroConfig(mini({ eval: { tasks: [], problems: 1, n: 1, max_new_tokens: 1, temperature: 1, seed: 0, examples: 0 } })), /eval.tasks/);
});

test('a miniature reproduction from a given base writes the report, docs and exported models', { timeout: 90_000 }, async () => {
  const tok = await fixtureTokenizer();
  const { dir, remove } = await saveFixture(randomModel(tok, 5), tok);
  const root = mkdtempSync(join(tmpdir(), 'nanoseek-r1zero-'));
  try {
    const cfg = parseR1ZeroConfig(mini());
    const lines: string[] = [];
    const r = await runR1Zero(cfg, 'mini', { out: join(root, 'run'), base: dir, exportDir: join(root, 'models'), docsDir: join(root, 'docs'), log: (l) => lines.push(l) });
    assert.equal(r.comparisons.length, 1);
    const html = readFileSync(r.report, 'utf8');
    for (const s of ['<svg', 'pass@1 (greedy)', 'after GRPO', 'Sample completions', 'Response length']) assert.ok(html.includes(s), s);
    assert.ok(!/<script|https?:\/\/(?!www\.w3\.org)/.test(html), 'self-contained');
    assert.equal(readFileSync(join(root, 'docs', 'grpo-metrics.jsonl'), 'utf8').trim().split('\n').length, 2);
    const shipped = await loadForInference(join(root, 'models', 'nano-r1zero'));
    assert.equal(JSON.parse(readFileSync(join(root, 'models', 'nano-r1zero', 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
    assert.equal(shipped.samplingDefaults.temperature, 0);
    assert.ok(existsSync(join(root, 'models', 'nano-base', 'tokenizer.json')));
    // Each export says what it is and how to prompt it; every example it offers, greedy got right.
    for (const role of ['base', 'r1zero']) {
      const card = JSON.parse(readFileSync(join(root, 'models', `nano-${role}`, 'model_card.json'), 'utf8'));
      assert.match(card.description, /held-out sums of two one-digit numbers: greedy pass@1 \d\.\d{3}/);
      assert.deepEqual(card.prompt, { template: 'r1-zero', open_think: true });
      assert.deepEqual(card.task, SPEC);
      assert.ok(Array.isArray(card.examples ?? []));
    }
    assert.deepEqual(shipped.card?.prompt, { template: 'r1-zero', open_think: true });
    // GRPO checkpoints trained from the R1-Zero prompt are served with it, and say so.
    const grpoCk = join(root, 'run', 'grpo', 'latest');
    assert.equal(JSON.parse(readFileSync(join(grpoCk, 'tokenizer_config.json'), 'utf8')).chat_template, r1ZeroChatTemplate(true));
    assert.deepEqual(JSON.parse(readFileSync(join(grpoCk, 'model_card.json'), 'utf8')).prompt, { template: 'r1-zero', open_think: true });
    await assert.rejects(runR1Zero(cfg, 'mini', { out: join(root, 'run'), base: dir }), /already holds an r1zero run/);
  } finally {
    await remove();
  }
});
