// Graders: the format scale, answer checking, and what adversarial completions get.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { grade, parseStructure, type Problem } from '../src/tasks/index.js';

const ARITH: Problem = { task: 'arithmetic', question: 'What is 123 + 456?', answer: '579' };
const CD: Problem = { task: 'countdown', numbers: [3, 5, 7, 5], target: 22 };
const wrap = (answer: string): string => `<think> 3*5 = 15, 15 + 7 = 22 </think> <answer>${answer}</answer>`;

describe('format score', () => {
  test('the documented scale', () => {
    const f = (c: string, chat = false): number => parseStructure(c, chat).format;
    assert.equal(f('<think>a</think><answer>1</answer>'), 1);
    assert.equal(f('\n <think>\na\n</think>\n\n<answer> 1 </answer>\n'), 1);
    assert.equal(f('<think></think><answer>1</answer>'), 1);
    // An answer block, but the rest is off.
    assert.equal(f('<answer>1</answer>'), 0.5);
    assert.equal(f('Sure! <think>a</think><answer>1</answer>'), 0.5);
    assert.equal(f('<think>a</think> so: <answer>1</answer>'), 0.5);
    assert.equal(f('<think>a</think><answer>1</answer> hope that helps'), 0.5);
    assert.equal(f('<think>a</think><think>b</think><answer>1</answer>'), 0.5);
    assert.equal(f('<think>a <answer>1</answer>'), 0.5);
    assert.equal(f('a</think><answer>1</answer>'), 0.5);
    // A complete think block and no usable answer.
    assert.equal(f('<think>a</think>'), 0.25);
    assert.equal(f('<think>a</think><answer>1'), 0.25);
    assert.equal(f('<think><answer>1</answer></think>'), 0.25);
    // Nothing usable.
    assert.equal(f(''), 0);
    assert.equal(f('the answer is 1'), 0);
    assert.equal(f('</think><think><answer>1'), 0);
    assert.equal(f('<Think>a</Think><ANSWER>1</ANSWER>'), 0);
    assert.equal(f('< think >a</ think >'), 0);
  });

  test('order matters: the answer must follow every think tag', () => {
    const s = parseStructure('<answer>1</answer><think>a</think>');
    assert.equal(s.answer, null);
    assert.equal(s.format, 0.25);
    assert.match(s.problem ?? '', /think tag after <answer>/);
    assert.equal(parseStructure('</answer>1<answer>').answer, null);
  });

  test('chat mode: the prompt opened <think>, so the completion closes it', () => {
    const f = (c: string): number => parseStructure(c, true).format;
    assert.equal(f('reasoning here\n</think>\n<answer>1</answer>'), 1);
    assert.equal(f('</think><answer>1</answer>'), 1);
    assert.equal(f('<think>again</think><answer>1</answer>'), 0.5);
    assert.equal(f('reasoning <answer>1</answer>'), 0.5);
    assert.equal(f('reasoning</think>'), 0.25);
    assert.equal(f('reasoning only'), 0);
    // In R1-Zero mode the same text lacks its opening tag.
    assert.equal(parseStructure('reasoning</think><answer>1</answer>').format, 0.5);
  });
});

describe('rewards', () => {
  test('1 / 0.1 / 0 at the anchors, components reported', () => {
    const right = grade(ARITH, wrap('579'));
    assert.deepEqual(right, { accuracy: 1, format: 1, reward: 1, answer: '579', value: '579', reason: 'correct' });
    const wrong = grade(ARITH, wrap('578'));
    assert.equal(wrong.accuracy, 0);
    assert.ok(Math.abs(wrong.reward - 0.1) < 1e-12);
    assert.equal(wrong.reason, 'expected 579, got 578');
    assert.equal(grade(ARITH, '579').reward, 0);
    assert.ok(Math.abs(grade(ARITH, '<answer>579</answer>').reward - 0.95) < 1e-12);
    assert.ok(Math.abs(grade(ARITH, '<think>hmm</think>').reward - 0.025) < 1e-12);
    assert.equal(grade(ARITH, wrap('579'), { formatWeight: 0.5 }).reward, 1);
    assert.equal(grade(ARITH, wrap('1'), { formatWeight: 0.5 }).reward, 0.5);
    assert.throws(() => grade(ARITH, '', { formatWeight: 2 }), /formatWeight/);
  });

  test('arithmetic answers: sign, spaces, grouping, typographic minus', () => {
    const neg: Problem = { task: 'arithmetic', question: 'What is 5 - 1239?', answer: '-1234' };
    for (const a of ['-1234', ' -1234 ', '−1234', '-1,234', '\u20131234']) assert.equal(grade(neg, wrap(a)).accuracy, 1, a);
    assert.equal(grade(ARITH, wrap('+579')).accuracy, 1);
    for (const a of ['57,9', '579.0', '579 apples', '123 + 456', '5.79e2', '1234', 'x = 579', '+ 579']) assert.equal(grade(ARITH, wrap(a)).accuracy, 0, a);
  });

  test('countdown: expression value, each number at most once, rational semantics excluded', () => {
    assert.equal(grade(CD, wrap('3 * 5 + 7')).accuracy, 1);
    assert.equal(grade(CD, wrap('(5 + 5) * 3 - 7 - 1 + 1')).reason, 'uses 1, which is not among the numbers');
    assert.equal(grade(CD, wrap('5 * 5 - 3')).accuracy, 1); // 5 is given twice
    assert.equal(grade(CD, wrap('5 * 5 * 5 - 103')).accuracy, 0);
    assert.match(grade(CD, wrap('5 + 5 + 5 + 7')).reason, /uses 5 more than the 2 time\(s\)/);
    assert.equal(grade(CD, wrap('7 + 5 * 3 ')).value, '22');
    assert.equal(grade(CD, wrap('5 × 3 + 7')).accuracy, 1);
    assert.equal(grade(CD, wrap('3 * 5 + 7 = 22')).accuracy, 0);
    assert.equal(grade(CD, wrap('(7 + 5 - 3) * 3')).reason, 'uses 3 more than the 1 time(s) it is given');
    const half: Problem = { task: 'countdown', numbers: [7, 2, 4], target: 14 };
    assert.equal(grade(half, wrap('7 / 2 * 4')).reason, 'inexact division 7 / 2');
    assert.equal(grade(half, wrap('7 * 4 / 2')).accuracy, 1);
    assert.equal(grade(CD, wrap('3 * 5 + 7 - 5')).reason, 'evaluates to 17, not 22');
  });
});

describe('adversarial completions', () => {
  test('huge numbers fail cleanly and quickly', () => {
    const t0 = performance.now();
    const huge = `1${'0'.repeat(10_000)}`;
    for (const p of [ARITH, CD]) {
      const g = grade(p, wrap(huge));
      assert.equal(g.accuracy, 0);
      assert.match(g.reason, /longer than 1000 characters/);
      assert.equal(g.format, 1);
    }
    // Within the length limit the arithmetic is exact BigInt; the message abbreviates the value.
    const big = grade(ARITH, wrap('9'.repeat(900)));
    assert.match(big.reason, /^expected 579, got 999999999999…\(900 digits\)…999999$/);
    const product = grade(CD, wrap(Array(150).fill('99999').join('*')));
    assert.match(product.reason, /uses 99999, which is not among the numbers/);
    assert.ok(performance.now() - t0 < 1000);
  });

  test('deep nesting fails cleanly', () => {
    assert.match(grade(CD, wrap(`${'('.repeat(200)}3${')'.repeat(200)}`)).reason, /nested deeper than 64/);
    assert.match(grade(CD, wrap(`${'('.repeat(600)}3${')'.repeat(600)}`)).reason, /longer than 1000/);
    assert.match(grade(ARITH, wrap(`${'-'.repeat(500)}579`)).reason, /not an integer/);
    assert.match(grade(CD, wrap(`${'-'.repeat(500)}3`)).reason, /nested deeper than 64/);
  });

  test('code is never executed', () => {
    const attacks = [
      'process.exit(1)',
      "require('child_process').execSync('touch /tmp/pwned')",
      '`${process.exit(1)}`',
      'constructor.constructor("return process")().exit(1)',
      '3 * 5 + 7; process.exit(1)',
      '(() => 22)()',
      'globalThis.x = 22',
      '22 // comment',
      '0x16',
      '22n',
    ];
    for (const a of attacks) {
      for (const p of [ARITH, CD]) {
        const g = grade(p, wrap(a));
        assert.equal(g.accuracy, 0, a);
        assert.equal(g.value, null, a);
      }
    }
  });

  test('NaN, Infinity, empty and whitespace answers', () => {
    for (const a of ['NaN', 'Infinity', '-Infinity', 'undefined', 'null', '']) {
      assert.equal(grade(ARITH, wrap(a)).accuracy, 0, a);
      assert.equal(grade(CD, wrap(a)).accuracy, 0, a);
    }
    assert.equal(grade(ARITH, wrap('   \n ')).reason, 'empty answer');
  });

  test('division by zero is wrong, not a crash', () => {
    const zero: Problem = { task: 'countdown', numbers: [3, 3, 5], target: 5 };
    assert.equal(grade(zero, wrap('5 / (3 - 3)')).reason, 'division by zero');
  });

  test('repeated, nested and unbalanced tags give no answer (no multiple guesses)', () => {
    const cases = [
      '<think>a</think><answer>570</answer><answer>579</answer>',
      '<think>a</think><answer><answer>579</answer></answer>',
      '<think>a</think><answer>579',
      '<think>a</think>579</answer>',
      '<think>a</think></answer>579<answer>',
      '<think><answer>579</answer></think>',
    ];
    for (const c of cases) {
      const g = grade(ARITH, c);
      assert.equal(g.accuracy, 0, c);
      assert.equal(g.answer, null, c);
    }
    assert.match(grade(ARITH, cases[0] as string).reason, /found 2 and 2/);
  });

  test('tags inside the think block are what the structure sees; long completions are fine', () => {
    const long = `<think>${'step. '.repeat(200_000)}</think><answer>579</answer>`;
    const t0 = performance.now();
    assert.equal(grade(ARITH, long).reward, 1);
    assert.ok(performance.now() - t0 < 500);
    const g = grade(ARITH, '<think>maybe <answer>1</answer>?</think><answer>579</answer>');
    assert.equal(g.accuracy, 0);
  });
});
