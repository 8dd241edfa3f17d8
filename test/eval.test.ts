// Evaluation metrics on hand-made cases (pass@k estimator, majority vote, reasoning length) and the
// shape of `nanoseek eval --json`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { majorityCorrect, passAtK, thinkTokens, voteKey } from '../src/eval/metrics.js';
import { evaluateModel } from '../src/eval/evaluate.js';
import { grade, type Problem } from '../src/tasks/index.js';
import { fixtureTokenizer, randomModel, saveFixture } from './serve-fixture.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

test('pass@k: the unbiased estimator 1 − C(n−c, k)/C(n, k)', () => {
  close(passAtK(10, 0, 1), 0);
  close(passAtK(10, 3, 1), 0.3);
  close(passAtK(4, 1, 2), 1 - 3 / 6); // C(3,2)/C(4,2)
  close(passAtK(5, 2, 3), 1 - 1 / 10); // C(3,3)/C(5,3)
  close(passAtK(8, 6, 3), 1); // fewer than k wrong: some pick is right
  close(passAtK(8, 8, 8), 1);
  // The mean over problems of pass@1 is the sample accuracy.
  close((passAtK(8, 2, 1) + passAtK(8, 5, 1)) / 2, 7 / 16);
  assert.throws(() => passAtK(4, 5, 1), /0 <= c <= n/);
  assert.throws(() => passAtK(4, 1, 5), /1 <= k <= n/);
});

test('maj@k: the most common answer decides; ties go to the first; no answer never wins', () => {
  const p: Problem = { task: 'arithmetic', question: 'What is 2 + 2?', answer: '4' };
  const votes = (...answers: (string | null)[]) =>
    answers.map((a) => voteKey(p, grade(p, a === null ? 'no answer' : `<think></think><answer>${a}</answer>`)));
  assert.equal(majorityCorrect(p, votes('4', '5', '4')), true);
  assert.equal(majorityCorrect(p, votes('5', '4', '5', null, null, null)), false);
  assert.equal(majorityCorrect(p, votes('4', '5')), true);
  assert.equal(majorityCorrect(p, votes('5', '4')), false);
  assert.equal(majorityCorrect(p, votes('04', '+4', '5')), true, 'answers vote by value');
  assert.equal(majorityCorrect(p, votes(null, null)), false);
  const cd: Problem = { task: 'countdown', numbers: [3, 5, 7], target: 22 };
  const cdVotes = ['3 * 5 + 7', '7 + 3 * 5', '5 * 5', '30 - 5 - 3'].map((a) => voteKey(cd, grade(cd, `<think></think><answer>${a}</answer>`)));
  assert.equal(majorityCorrect(cd, cdVotes), true, 'different valid solutions are the same answer');
});

test('think tokens: inside <think>…</think>, to the end when it never closes', () => {
  const ids = { think: 5, thinkEnd: 6 };
  assert.equal(thinkTokens([5, 1, 2, 3, 6, 7, 8], ids, false), 3);
  assert.equal(thinkTokens([1, 2, 6, 7], ids, true), 2);
  assert.equal(thinkTokens([5, 1, 2], ids, false), 2);
  assert.equal(thinkTokens([1, 2, 3], ids, false), 0);
});

const here = fileURLToPath(import.meta.url);
const compiled = here.endsWith('.js');
const main = join(dirname(here), '..', 'src', 'cli', compiled ? 'main.js' : 'main.ts');

test('nanoseek eval --json prints one object with rates in [0, 1]', { timeout: 60_000 }, async () => {
  const tok = await fixtureTokenizer();
  const { dir, remove } = await saveFixture(randomModel(tok, 2), tok);
  try {
    const args = ['eval', '--model', dir, '--task', 'arithmetic', '--digits', '1,1', '--problems', '4', '--n', '3', '--k', '2', '--max-tokens', '5', '--template', 'r1', '--json'];
    const { stdout } = await promisify(execFile)(process.execPath, [...(compiled ? [] : ['--import', 'tsx']), main, ...args]);
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const r = JSON.parse(lines[0]);
    assert.equal(r.task, 'arithmetic 1x1 +');
    assert.equal(r.problems, 4);
    assert.equal(r.n, 3);
    assert.equal(r.k, 2);
    for (const key of ['pass@1', 'pass@k', 'maj@k', 'format_rate', 'sampled_accuracy']) assert.ok(r[key] >= 0 && r[key] <= 1, `${key} = ${r[key]}`);
    assert.ok(r.mean_response_tokens > 0 && r.mean_response_tokens <= 5);
    assert.ok(r.mean_think_tokens >= 0 && r.mean_think_tokens <= r.mean_response_tokens);
    assert.equal(r.template, 'r1');
  } finally {
    await remove();
  }
});

test('--prefill: responses begin with the given text, which is graded and counted as part of them', async () => {
  const tok = await fixtureTokenizer();
  const { scriptedModel, SCRIPT } = await import('./serve-fixture.js');
  const model = scriptedModel(tok);
  const problems: Problem[] = [{ task: 'arithmetic', question: 'What is 2 + 2?', answer: '4' }];
  const prefill = SCRIPT.completion.slice(0, SCRIPT.completion.indexOf('<answer>') + '<answer>'.length);
  const opts = { template: 'r1' as const, n: 0, maxNewTokens: 40, temperature: 1, seed: 0, examples: 1 };
  const plain = await evaluateModel(model, tok, problems, opts);
  const forced = await evaluateModel(model, tok, problems, { ...opts, prefill });
  // The scripted model continues from wherever its chain is entered: from the prefill's last token on.
  assert.equal(forced.examples[0]!.completion, SCRIPT.completion);
  assert.equal(forced['pass@1'], 1);
  assert.equal(forced.mean_response_tokens, plain.mean_response_tokens, 'prefilled tokens count as response tokens');
  assert.equal(forced.mean_think_tokens, plain.mean_think_tokens);
  // Graded without its prefill the continuation alone would have no answer block.
  assert.equal(grade(problems[0]!, SCRIPT.completion.slice(prefill.length), { promptOpensThink: true }).accuracy, 0);
});

test('task flags: --digits takes one digit count per operand (N alone means N,N); foreign flags are refused', async () => {
  const { taskSpecFromFlags, describeSpec, taskNameFrom } = await import('../src/cli/task-flags.js');
  assert.throws(() => taskNameFrom('--task', 'sudoku'), /--task: expected one of arithmetic, countdown, got "sudoku"/);
  assert.deepEqual(taskSpecFromFlags('arithmetic', {}, '+,-'), { task: 'arithmetic', digits: [3, 3], ops: ['+', '-'] });
  assert.deepEqual(taskSpecFromFlags('arithmetic', { digits: '2' }), { task: 'arithmetic', digits: [2, 2], ops: ['+'] });
  const long = taskSpecFromFlags('arithmetic', { digits: '1,1,1,1,1,1' });
  assert.deepEqual(long.task === 'arithmetic' && long.digits, [1, 1, 1, 1, 1, 1]);
  assert.equal(describeSpec(long), 'arithmetic 1x1x1x1x1x1 +');
  assert.throws(() => taskSpecFromFlags('arithmetic', { digits: '1,x' }), /--digits/);
  assert.throws(() => taskSpecFromFlags('arithmetic', { count: '3,4' }), /--count does not apply to arithmetic/);
});
