// RNG, expression parser, generators, the held-out split, prompts and JSONL problem files.
import { writeChunksAtomic } from '../src/util/atomic.js';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Rng } from '../src/util/rng.js';
import {
  evaluate,
  hashKey,
  heldOutSet,
  HELDOUT_MODULUS,
  isHeldOut,
  literals,
  loadProblems,
  parseExpr,
  parseInteger,
  problemId,
  problemKey,
  questionText,
  sampleProblem,
  solveCountdown,
  checkAnswer,
  toProblem,
  validateSpec,
  workedSolution,
  writeProblems,
  zeroPrompt,
  type CountdownSpec,
  type Problem,
  type TaskSpec,
} from '../src/tasks/index.js';

const ARITH: TaskSpec = { task: 'arithmetic', digits: [3, 2], ops: ['+', '-', '*'] };
const COUNTDOWN: CountdownSpec = { task: 'countdown', count: [3, 4], numberMax: 25, targetMax: 100 };

describe('Rng', () => {
  test('same seed, same stream; pinned values guard against silent changes', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 5 }, () => a.nextU32());
    assert.deepEqual(xs, Array.from({ length: 5 }, () => b.nextU32()));
    assert.deepEqual(xs, PINNED_U32_SEED_42);
    assert.notDeepEqual(xs, Array.from({ length: 5 }, () => new Rng(43).nextU32()));
    // Seeds above 2^32 must not collapse onto their low 32 bits.
    assert.notEqual(new Rng(2 ** 32 + 7).nextU32(), new Rng(7).nextU32());
  });

  test('next() in [0, 1), int() inclusive, unbiased enough, large ranges', () => {
    const r = new Rng(1);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60_000; i++) {
      const x = r.next();
      assert.ok(x >= 0 && x < 1);
      counts[r.int(1, 6) - 1]++;
    }
    for (const c of counts) assert.ok(Math.abs(c - 10_000) < 400, `die counts ${counts}`);
    const big = Array.from({ length: 1000 }, () => r.int(0, 2 ** 40));
    assert.ok(big.every((x) => Number.isInteger(x) && x >= 0 && x <= 2 ** 40));
    assert.ok(Math.max(...big) > 2 ** 39);
    assert.equal(r.int(5, 5), 5);
    assert.equal(r.int(-3, -3), -3);
    assert.throws(() => r.int(2, 1), /lo <= hi/);
    assert.throws(() => new Rng(1.5), /safe integer/);
    assert.throws(() => r.pick([]), /empty/);
  });

  test('normal() has mean 0 and std 1; shuffle permutes', () => {
    const r = new Rng(7);
    const xs = Array.from({ length: 20_000 }, () => r.normal());
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    assert.ok(Math.abs(mean) < 0.03 && Math.abs(std - 1) < 0.03, `mean ${mean} std ${std}`);
    const arr = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = r.shuffle([...arr]);
    assert.notDeepEqual(shuffled, arr);
    assert.deepEqual([...shuffled].sort((x, y) => x - y), arr);
  });

  test('state round-trips through JSON and resumes exactly, even between two normal() draws', () => {
    const r = new Rng(3);
    r.normal(); // leaves a spare
    const saved = JSON.parse(JSON.stringify(r.getState()));
    const expected = [r.normal(), r.next(), r.int(0, 1000), r.normal()];
    const resumed = Rng.fromState(saved);
    assert.deepEqual([resumed.normal(), resumed.next(), resumed.int(0, 1000), resumed.normal()], expected);
    assert.throws(() => r.setState({ s: [1, 2, 3], spare: null } as never), /invalid RngState/);
    assert.throws(() => r.setState({ s: [1, 2, 3, -1], spare: null }), /invalid RngState/);
  });
});

const PINNED_U32_SEED_42 = [4213130802, 2795293835, 2104475517, 2106996708, 288829822];

describe('expression parser', () => {
  const value = (s: string): string => {
    const e = parseExpr(s);
    if (!e.ok) return `parse: ${e.error}`;
    const v = evaluate(e.value);
    return v.ok ? v.value.toString() : `eval: ${v.error}`;
  };

  test('precedence, associativity, parentheses, unary signs', () => {
    assert.equal(value('1 + 2 * 3'), '7');
    assert.equal(value('(1 + 2) * 3'), '9');
    assert.equal(value('10 - 4 - 3'), '3');
    assert.equal(value('64 / 8 / 2'), '4');
    assert.equal(value('-3 * -(2 + 1)'), '9');
    assert.equal(value('+5'), '5');
    assert.equal(value('99999999999999999999 * 99999999999999999999'), '9999999999999999999800000000000000000001');
    assert.equal(value('5 × 7 − 13 ÷ 13'), '34');
    const e = parseExpr('(3 + 5) * 3');
    assert.ok(e.ok);
    assert.deepEqual(literals(e.value), [3n, 5n, 3n]);
  });

  test('integer-exact division; division by zero is an error, not a crash', () => {
    assert.equal(value('7 / 2'), 'eval: inexact division 7 / 2');
    assert.equal(value('7 / 2 * 2'), 'eval: inexact division 7 / 2');
    assert.equal(value('5 / (3 - 3)'), 'eval: division by zero');
    assert.equal(value('0 / 5'), '0');
  });

  test('rejects anything that is not arithmetic', () => {
    for (const s of ['', '  ', '1 +', '(1', '1)', '2(3)', '3 x 4', '2 ^ 3', '1.5', '1e3', 'NaN', 'Infinity', 'process.exit()', '1 = 1', '0x10', '1_000']) {
      assert.match(value(s), /^parse: /, s);
    }
    assert.match(value('1'.repeat(1001)), /longer than 1000/);
    assert.match(value(`${'('.repeat(100)}1${')'.repeat(100)}`), /nested deeper than 64/);
    assert.match(value(`${'-'.repeat(100)}1`), /nested deeper than 64/);
  });

  test('parseInteger: sign, typographic minus, grouped commas, nothing else', () => {
    const ok = (s: string): string => {
      const r = parseInteger(s);
      return r.ok ? r.value.toString() : 'error';
    };
    assert.equal(ok(' 579 '), '579');
    assert.equal(ok('+579'), '579');
    assert.equal(ok('-12'), '-12');
    assert.equal(ok('\u221212'), '-12');
    assert.equal(ok('1,234,567'), '1234567');
    for (const s of ['12,34', '1,2345', '', '5.0', '1e3', 'NaN', '-', '1 2', '0x1f', '5+5']) assert.equal(ok(s), 'error', s);
  });
});

describe('generators', () => {
  test('arithmetic: digit counts and answers are right', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 500; i++) {
      const p = sampleProblem(ARITH, rng);
      assert.equal(p.task, 'arithmetic');
      if (p.task !== 'arithmetic') continue;
      const m = /^What is (\d+) ([-+*]) (\d+)\?$/.exec(p.question);
      assert.ok(m, p.question);
      assert.equal((m[1] as string).length, 3);
      assert.equal((m[3] as string).length, 2);
      const [a, b] = [BigInt(m[1] as string), BigInt(m[3] as string)];
      assert.equal(BigInt(p.answer), m[2] === '+' ? a + b : m[2] === '-' ? a - b : a * b);
      assert.equal(checkAnswer(p, p.answer).correct, true);
    }
  });

  test('arithmetic over more than two operands: left to right, one operator, a reduction chain', () => {
    const rng = new Rng(7);
    for (const op of ['+', '-', '*'] as const) {
      for (let i = 0; i < 200; i++) {
        const p = sampleProblem({ task: 'arithmetic', digits: [1, 2, 1, 1, 1], ops: [op] }, rng);
        if (p.task !== 'arithmetic') assert.fail('expected arithmetic');
        const terms = p.question.replace(/^What is |\?$/g, '').split(` ${op} `).map(BigInt);
        assert.deepEqual(terms.map((t) => String(t).length), [1, 2, 1, 1, 1], p.question);
        const value = terms.slice(1).reduce((acc, t) => (op === '+' ? acc + t : op === '-' ? acc - t : acc * t), terms[0] as bigint);
        assert.equal(p.answer, String(value));
        assert.equal(checkAnswer(p, p.answer).correct, true);
        // The chain starts from the expression, replaces the first two operands by their result
        // on each line, and ends with the answer.
        const chain = workedSolution(p, rng).steps;
        assert.equal(chain.length, 5);
        assert.equal(chain[0], terms.join(` ${op} `));
        assert.equal(chain.at(-1), `= ${p.answer}`);
        for (let k = 1; k < chain.length; k++) {
          const prev = (chain[k - 1] as string).replace(/^= /, '').split(` ${op} `);
          const line = (chain[k] as string).replace(/^= /, '').split(` ${op} `);
          assert.deepEqual(line.slice(1), prev.slice(2));
        }
      }
    }
    assert.deepEqual(workedSolution({ task: 'arithmetic', question: 'What is 3 + 5 + 8 + 2?', answer: '18' }, rng).steps, ['3 + 5 + 8 + 2', '= 8 + 8 + 2', '= 16 + 2', '= 18']);
    assert.deepEqual(workedSolution({ task: 'arithmetic', question: 'What is 3 - 5 - 8?', answer: '-10' }, rng).steps, ['3 - 5 - 8', '= -2 - 8', '= -10']);
    // Mixed operators are not in the generator's form.
    assert.equal(problemKey({ task: 'arithmetic', question: 'What is 3 + 5 - 8?', answer: '0' }).startsWith('arithmetic:?'), true);
  });

  test('countdown: every instance is solvable, and its stored solution grades correct', () => {
    const rng = new Rng(6);
    for (let i = 0; i < 300; i++) {
      const p = sampleProblem(COUNTDOWN, rng);
      assert.equal(p.task, 'countdown');
      if (p.task !== 'countdown') continue;
      assert.ok(p.numbers.length >= 3 && p.numbers.length <= 4);
      assert.ok(p.numbers.every((n) => n >= 1 && n <= 25) && p.target >= 1 && p.target <= 100);
      assert.ok(!p.numbers.includes(p.target));
      const check = checkAnswer(p, p.solution as string);
      assert.ok(check.correct, `${JSON.stringify(p)}: ${check.reason}`);
    }
  });

  test('countdown solver: finds the fewest steps, or proves there is none', () => {
    assert.equal(solveCountdown([3, 5, 7], 22)?.steps.length, 2);
    assert.equal(solveCountdown([3, 5, 7], 12)?.expr, '7 + 5');
    assert.equal(solveCountdown([2, 3], 100), null);
    const hard = solveCountdown([25, 50, 75, 100, 3, 6], 952);
    assert.ok(hard && checkAnswer({ task: 'countdown', numbers: [25, 50, 75, 100, 3, 6], target: 952 }, hard.expr).correct);
  });

  test('bad specs are rejected naming the field; unsatisfiable specs fail cleanly', () => {
    assert.throws(() => validateSpec({ task: 'arithmetic', digits: [0, 2], ops: ['+'] }), /digits\[0\]/);
    assert.throws(() => validateSpec({ task: 'arithmetic', digits: [2], ops: ['+'] }), /digits: expected 2 to 12 digit counts/);
    assert.throws(() => validateSpec({ task: 'arithmetic', digits: Array(13).fill(1), ops: ['+'] }), /digits: expected 2 to 12/);
    assert.throws(() => validateSpec({ task: 'arithmetic', digits: [1, 1, 41], ops: ['+'] }), /digits\[2\]/);
    assert.throws(() => validateSpec({ task: 'arithmetic', digits: [1, 2], ops: ['/' as never] }), /ops/);
    assert.throws(() => validateSpec({ ...COUNTDOWN, count: [4, 3] }), /count\[1\]/);
    assert.throws(() => validateSpec({ ...COUNTDOWN, numberMax: 0 }), /numberMax/);
    assert.throws(() => sampleProblem({ task: 'countdown', count: [2, 2], numberMax: 1, targetMax: 1_000_000_000 }, new Rng(0)), /raise numberMax/);
  });
});

describe('held-out split', () => {
  test('training draws never yield a held-out problem, across specs and seeds', () => {
    const specs: TaskSpec[] = [ARITH, COUNTDOWN, { task: 'arithmetic', digits: [1, 1], ops: ['+', '*'] }, { task: 'arithmetic', digits: [2, 2], ops: ['-'] }];
    for (const spec of specs) {
      const held = new Set(heldOutSet(spec, 200).map(problemKey));
      assert.ok(held.size > 0);
      const rng = new Rng(11);
      for (let i = 0; i < (spec.task === 'countdown' ? 3000 : 10_000); i++) {
        const p = sampleProblem(spec, rng);
        assert.equal(isHeldOut(p), false);
        assert.equal(held.has(problemKey(p)), false, JSON.stringify(p));
      }
    }
  });

  test('the evaluation set is the same on every call, distinct, and all held out', () => {
    const a = heldOutSet(COUNTDOWN, 100);
    const b = heldOutSet(COUNTDOWN, 100);
    assert.deepEqual(a, b);
    assert.equal(a.length, 100);
    assert.equal(new Set(a.map(problemKey)).size, 100);
    assert.ok(a.every(isHeldOut));
    // The first N of a larger set are the set of size N.
    assert.deepEqual(heldOutSet(COUNTDOWN, 30), a.slice(0, 30));
    // Pinned: a change to the hash, the generator or the rng would silently move the eval set.
    assert.deepEqual(a.slice(0, 3).map(problemId), PINNED_EVAL_IDS);
  });

  test('a tiny problem space gives a short but stable set', () => {
    const spec: TaskSpec = { task: 'arithmetic', digits: [1, 1], ops: ['+'] };
    const set = heldOutSet(spec, 1000);
    assert.ok(set.length > 0 && set.length < 55);
    assert.deepEqual(heldOutSet(spec, 1000), set);
  });

  test('the split ignores presentation: number order, operand order, spacing', () => {
    const cd = (numbers: number[]): Problem => ({ task: 'countdown', numbers, target: 22 });
    assert.equal(problemKey(cd([3, 5, 7])), problemKey(cd([7, 3, 5])));
    const ar = (q: string): Problem => ({ task: 'arithmetic', question: q, answer: '0' });
    assert.equal(problemKey(ar('What is 12 + 345?')), problemKey(ar('What is 345 + 12?')));
    assert.equal(problemKey(ar('What is 12 * 345?')), problemKey(ar('What is 345 * 12?')));
    assert.notEqual(problemKey(ar('What is 12 - 345?')), problemKey(ar('What is 345 - 12?')));
    assert.equal(problemKey(ar('What is 3 + 5 + 8 + 2?')), problemKey(ar('What is 8 + 2 + 5 + 3?')));
    // a - b - c = a - c - b, but the first operand cannot move.
    assert.equal(problemKey(ar('What is 9 - 5 - 2?')), problemKey(ar('What is 9 - 2 - 5?')));
    assert.notEqual(problemKey(ar('What is 9 - 5 - 2?')), problemKey(ar('What is 5 - 9 - 2?')));
    assert.equal(problemKey(ar('How  many\tlegs?')), problemKey(ar('How many legs?')));
    assert.equal(hashKey('countdown:3,5,7=22'), PINNED_HASH);
    // Roughly one problem in HELDOUT_MODULUS is held out.
    let held = 0;
    for (let i = 0; i < 20_000; i++) held += hashKey(`k${i}`) % HELDOUT_MODULUS === 0 ? 1 : 0;
    assert.ok(Math.abs(held - 20_000 / HELDOUT_MODULUS) < 150, `${held}`);
  });
});

const PINNED_EVAL_IDS = ['countdown-c9b147c4', 'countdown-98fdd2dc', 'countdown-46c4a144'];
const PINNED_HASH = 1892833454;

describe('prompts', () => {
  test('question text and the R1-Zero template', () => {
    const p: Problem = { task: 'countdown', numbers: [3, 5, 7], target: 22 };
    assert.match(questionText(p), /^Using the numbers \[3, 5, 7\], create an equation that equals 22\./);
    assert.doesNotMatch(questionText(p), /<|>/);
    const prompt = zeroPrompt(p);
    assert.match(prompt, /^A conversation between User and Assistant\./);
    assert.match(prompt, /User: Using the numbers \[3, 5, 7\].*\sAssistant:$/);
    assert.match(zeroPrompt(p, { openThink: true }), /Assistant: <think>$/);
    // A question with "$&" must be inserted literally, not as a replacement pattern.
    assert.match(zeroPrompt({ task: 'arithmetic', question: 'What is $& + 1?', answer: '1' }), /User: What is \$& \+ 1\?\sAssistant:$/);
  });
});

describe('JSONL problem files', () => {
  let dir = '';
  const tmp = async (): Promise<string> => (dir ||= await mkdtemp(join(tmpdir(), 'nanoseek-tasks-')));
  after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  test('round trip through writeProblems / loadProblems, CRLF and blank lines tolerated', async () => {
    const file = join(await tmp(), 'p.jsonl');
    const rng = new Rng(9);
    const problems = [...Array.from({ length: 5 }, () => sampleProblem(ARITH, rng)), ...Array.from({ length: 5 }, () => sampleProblem(COUNTDOWN, rng))];
    await writeProblems(file, problems);
    assert.deepEqual(await loadProblems(file), problems);
    const crlf = join(await tmp(), 'crlf.jsonl');
    await writeFile(crlf, '{"task":"countdown","numbers":[3,5,7],"target":22}\r\n\r\n{"task":"arithmetic","question":"What is 1 + 1?","answer":"2"}\r\n');
    assert.equal((await loadProblems(crlf)).length, 2);
    assert.deepEqual((await readdir(await tmp())).filter((f) => f.startsWith('.nanoseek-tmp')), []);
  });

  test('every error names file:line and the field', async () => {
    const file = join(await tmp(), 'bad.jsonl');
    const cases: [string, RegExp][] = [
      ['{"task":"countdown","numbers":[3,5,7],"target":22', /bad\.jsonl:2: invalid JSON/],
      ['[1,2]', /bad\.jsonl:2: expected a JSON object/],
      ['{"task":"sudoku"}', /bad\.jsonl:2: field "task": expected "arithmetic" or "countdown"/],
      ['{"task":"countdown","nums":[3,5,7],"target":22}', /bad\.jsonl:2: field "nums": unknown field/],
      ['{"task":"countdown","numbers":[3,-5,7],"target":22}', /field "numbers"/],
      ['{"task":"countdown","numbers":[],"target":22}', /field "numbers"/],
      ['{"task":"countdown","numbers":[3,5,7],"target":"22"}', /field "target"/],
      ['{"task":"countdown","numbers":[3,5,7],"target":22,"solution":"3*5*7"}', /field "solution": .*evaluates to 105, not 22/],
      ['{"task":"countdown","numbers":[3,5,7],"target":22,"id":5}', /field "id"/],
      ['{"task":"arithmetic","question":"What is 1 + 1?","answer":2}', /field "answer": expected an integer as a string/],
      ['{"task":"arithmetic","question":"What is 1 + 1?","answer":"1,000"}', /field "answer"/],
      ['{"task":"arithmetic","question":"","answer":"2"}', /field "question"/],
      ['{"task":"arithmetic","question":"What is 1 + 1?"}', /field "answer"/],
    ];
    for (const [line, want] of cases) {
      await writeFile(file, `{"task":"countdown","numbers":[3,5,7],"target":22,"solution":"3 * 5 + 7"}\n${line}\n`);
      await assert.rejects(loadProblems(file), want, line);
    }
    assert.throws(() => toProblem(null, 'x:1'), /x:1: expected a JSON object/);
  });

  test('writeChunksAtomic: an interrupted write leaves the old file and no temp file', async () => {
    const file = join(await tmp(), 'atomic.txt');
    await writeChunksAtomic(file, ['old']);
    const failing = (function* () {
      yield 'new, partial';
      throw new Error('interrupted');
    })();
    await assert.rejects(writeChunksAtomic(file, failing), /interrupted/);
    assert.equal(await readFile(file, 'utf8'), 'old');
    assert.deepEqual((await readdir(await tmp())).filter((f) => f.startsWith('.nanoseek-tmp')), []);
    assert.equal(await writeChunksAtomic(file, ['é', 'x']), 3);
  });
});
