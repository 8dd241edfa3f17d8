// model_card.json: what a checkpoint says about itself. The shipped models' cards describe them and
// offer questions they answer correctly; the server, the chat banner, `eval`, `tasks sample` and
// `grpo reject-sample` take it as their defaults.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Engine, loadForInference, packageRoot, promptOpensThink, splitCompletion } from '../src/infer/index.js';
import { parseModelCard } from '../src/io/model-card.js';
import { InferenceServer } from '../src/serve/server.js';
import { applyChatTemplate } from '../src/tokenizer/index.js';
import { cliArgs, runCli } from './helpers.js';

const root = await packageRoot();
const model = (name: string) => join(root, 'models', name);

/** The sum a card's example question asks for ("What is 7 + 7 + 3?" → 17). */
function sumOf(question: string): number {
  const m = /^What is ([\d +]+)\?$/.exec(question);
  assert.ok(m, `not a sum question: ${question}`);
  return m[1].split('+').reduce((s, x) => s + Number(x), 0);
}

test('model_card.json is validated, errors naming the file and the field', () => {
  assert.deepEqual(parseModelCard({}), { description: null, examples: [], prompt: null, task: null, source: null });
  assert.throws(() => parseModelCard({ examples: 'What?' }, 'c.json'), /^Error: c\.json: examples = "What\?": must be a list of non-empty strings$/);
  assert.throws(() => parseModelCard({ prompt: { template: 'chatml' } }, 'c.json'), /c\.json: prompt\.template = "chatml": must be one of "r1-zero", "r1"/);
  assert.throws(() => parseModelCard({ prompt: { template: 'r1', open_think: true } }, 'c.json'), /c\.json: prompt\.open_think = true: applies to the r1-zero template only/);
  assert.throws(() => parseModelCard({ task: 'sums' }, 'c.json'), /c\.json: task = "sums": must be a task spec object/);
  assert.throws(() => parseModelCard({ colour: 'red' }, 'c.json'), /c\.json: colour = "red": unknown field/);
});

test('the shipped models say what they know, and greedy decoding through their chat template answers every example right', { timeout: 60_000 }, async () => {
  for (const name of ['nano-r1zero', 'nano-base']) {
    const ck = await loadForInference(model(name));
    const card = ck.card!;
    assert.match(card.description ?? '', /sums of .*one-digit numbers/);
    assert.match(card.description ?? '', /not an assistant/);
    assert.deepEqual(card.prompt, { template: 'r1-zero', open_think: true });
    assert.deepEqual(card.task, { task: 'arithmetic', digits: [1, 1, 1, 1, 1, 1], ops: ['+'] });
    assert.equal(card.examples.length, 4);
    // As the server runs a chat request: the chat template, one sequence, the model's own (greedy) sampling.
    const engine = new Engine(ck.model, ck.tokenizer, { maxConcurrent: 1 });
    for (const q of card.examples) {
      const text = applyChatTemplate(ck.tokenizer, [{ role: 'user', content: q }]);
      const r = await engine.submit(ck.tokenizer.encode(text), { ...ck.samplingDefaults, maxTokens: 160 }).result;
      const { content } = splitCompletion(r.text, promptOpensThink(text));
      assert.equal(content.replace(/<\/?answer>/g, '').trim(), String(sumOf(q)), `${name}: ${q} → ${r.text}`);
    }
    await engine.close();
  }
});

test('the server describes the model with its card; the page asks nothing of the sampling unless Settings do', async () => {
  const ck = await loadForInference(model('nano-r1zero'));
  const server = new InferenceServer({ model: ck.model, tokenizer: ck.tokenizer, modelId: ck.name, samplingDefaults: ck.samplingDefaults, card: ck.card });
  const { port } = await server.listen(0);
  try {
    const info = (await (await fetch(`http://127.0.0.1:${port}/v1/models/${ck.name}`)).json()) as Record<string, any>;
    assert.deepEqual(info.model_card, { description: ck.card!.description, examples: ck.card!.examples });
    assert.equal(info.defaults.temperature, 0, 'greedy, as generation_config.json says');
  } finally {
    await server.close();
  }
});

test('eval, tasks sample and reject-sample default to the model card: its model, task and prompt format', { timeout: 60_000 }, async () => {
  const [evaluated, wrongPrompt, sampled, rejected] = await Promise.all([
    runCli(['eval', '--problems', '5', '--n', '0', '--json']),
    runCli(['eval', '--problems', '3', '--n', '0', '--max-tokens', '12', '--no-open-think']),
    runCli(['tasks', 'sample', '--n', '3', '--json']),
    runCli(['grpo', 'reject-sample', '--model', model('nano-r1zero'), '--problems', '2', '--samples', '1', '--out', '/dev/null']),
  ]);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const report = JSON.parse(evaluated.stdout);
  assert.equal(report.task, 'arithmetic 1x1x1x1x1x1 +');
  assert.equal(report.template, 'r1-zero');
  assert.equal(report.open_think, true);
  assert.equal(report.format_rate, 1);
  assert.ok(report['pass@1'] >= 0.6, `pass@1 ${report['pass@1']}`);
  assert.equal(evaluated.stderr, '');

  // The prompt it was not trained on: no answer in the format, and a warning naming the flag.
  assert.equal(wrongPrompt.code, 0, wrongPrompt.stderr);
  assert.match(wrongPrompt.stdout, /r1-zero prompt \(from flags\)/);
  assert.match(wrongPrompt.stderr, /^warning: no greedy completion had the <think>…<\/think> <answer>…<\/answer> format \(format 0%\).*need --open-think/);

  assert.equal(sampled.code, 0, sampled.stderr);
  const problems = sampled.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(problems.length, 3);
  for (const p of problems) assert.match(p.question, /^What is \d( \+ \d){5}\?$/);
  assert.match(sampled.stderr, /arithmetic 1x1x1x1x1x1 \+: the task of the default model, from its model card; --digits 1,1,1,1,1,1 --ops \+ to change it/);

  assert.equal(rejected.code, 0, rejected.stderr);
  assert.match(rejected.stdout, /^arithmetic 1x1x1x1x1x1 \+: 2 problems × 1 samples: \d of 2 correct/);
});

test('chat opens with what the model knows and what to ask, and leaves cleanly on SIGTERM', { timeout: 30_000 }, async () => {
  const card = JSON.parse(readFileSync(join(model('nano-r1zero'), 'model_card.json'), 'utf8'));
  const child = spawn(process.execPath, [...cliArgs(), 'chat'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  while (!out.includes('> ')) {
    assert.equal(child.exitCode, null, out);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(out.includes(card.description), out);
  assert.ok(out.includes(`Try: ${card.examples.join('  or  ')}`), out);
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
