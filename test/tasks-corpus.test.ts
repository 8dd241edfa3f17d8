// Pretraining corpus, cold-start SFT records, and the `nanoseek tasks` command.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { register } from '../src/cli/commands/tasks.js';
import {
  corpusDocuments,
  grade,
  heldOutSet,
  isHeldOut,
  loadProblems,
  problemKey,
  sftRecords,
  writeCorpus,
  ZERO_TEMPLATE,
  type CorpusDocument,
  type CountdownSpec,
  type TaskSpec,
} from '../src/tasks/index.js';

const COUNTDOWN: CountdownSpec = { task: 'countdown', count: [3, 4], numberMax: 25, targetMax: 100 };

function take<T>(it: Iterator<T>, n: number): T[] {
  return Array.from({ length: n }, () => it.next().value as T);
}

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nanoseek-corpus-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('pretraining corpus', () => {
  const docs: CorpusDocument[] = take(corpusDocuments({ seed: 1 }), 3000);
  const text = docs.map((d) => d.text).join('\n\n');

  test('deterministic for a seed, different across seeds', () => {
    assert.deepEqual(take(corpusDocuments({ seed: 1 }), 3000), docs);
    assert.notEqual(take(corpusDocuments({ seed: 2 }), 1)[0]?.text, docs[0]?.text);
  });

  test('never contains the R1-Zero template or its User/Assistant frame', () => {
    for (const banned of ['Assistant:', 'User:', ZERO_TEMPLATE.slice(0, 40), 'reasoning here']) {
      assert.equal(text.includes(banned), false, banned);
    }
  });

  test('tagged documents grade as strict format with the right answer; direct ones outnumber worked ones', () => {
    const tagged = docs.filter((d) => d.text.includes('<think>'));
    assert.ok(tagged.length > 0.1 * docs.length && tagged.length < 0.2 * docs.length, `${tagged.length}`);
    let worked = 0;
    for (const d of tagged) {
      // The last <think> opens the reply; a preamble may show the tags before it.
      const at = d.text.lastIndexOf('<think>');
      const g = grade(d.problems[0]!, d.text.slice(at));
      assert.equal(g.reward, 1, `${d.text}\n${g.reason}`);
      if (d.text.slice(at).split('\n').length > 3) worked++;
    }
    assert.ok(worked > 0.15 * tagged.length && worked < 0.45 * tagged.length, `${worked} of ${tagged.length}`);
    assert.ok(tagged.some((d) => d.problems[0]!.task === 'countdown') && tagged.some((d) => d.problems[0]!.task === 'arithmetic'));
    // Some pose the question as a line of dialogue, the reply on the next line (as the R1-Zero prompt does, in other words).
    const dialogue = tagged.filter((d) => /^(?:[^\n]*\n)?[A-Z][a-z]+: [^\n]+\n[A-Za-z]+: <think>/.test(d.text));
    assert.ok(dialogue.length > 0.3 * tagged.length && dialogue.length < 0.7 * tagged.length, `${dialogue.length} of ${tagged.length}`);
  });

  test('scratch work: every column line is named by its place and right, the result so far grows by one digit, the answer is the last result', () => {
    const mix = { facts: 0, worked: 0, columns: 0, countdown: 0, countdownFacts: 0, tagged: 1, scratch: 1 };
    const docs = take(corpusDocuments({ seed: 9, ops: ['+', '-'], mix, taggedWorked: 1 }), 400);
    let lines = 0;
    for (const d of docs) {
      const p = d.problems[0] as { answer: string };
      let sofar = '';
      for (const line of d.text.split('\n')) {
        const m = /(?:^|\s)([a-z-]+): (\d+(?: [-+] \d+)*) = (\d+)(?:, (?:carry|borrow) 1)?, so far (\d+)$/.exec(line)?.slice(1);
        if (m === undefined) continue;
        lines++;
        assert.equal(m.shift(), ['ones', 'tens', 'hundreds', 'thousands'][sofar.length], `the column is named by its place: ${line}`);
        const terms = m[0].split(' ');
        let v = Number(terms[0]);
        for (let i = 1; i < terms.length; i += 2) v = terms[i] === '+' ? v + Number(terms[i + 1]) : v - Number(terms[i + 1]);
        assert.equal(v, Number(m[1]), line);
        assert.equal(m[2], `${Number(m[1]) % 10}${sofar}`, line);
        sofar = m[2];
      }
      const last = d.text.split('\n').filter((l) => !/^(<\/think>|Answer:|<answer>)/.test(l)).pop()!;
      assert.ok(last.endsWith(`so far ${p.answer}`) || last.endsWith(`: ${p.answer}`), `${d.text}`);
      assert.ok(d.text.endsWith(`Answer: ${p.answer}`) || d.text.endsWith(`<answer>${p.answer}</answer>`), d.text);
    }
    assert.ok(lines > 800, `${lines}`);
  });

  test('the mix can leave kinds out', () => {
    const only = take(corpusDocuments({ seed: 1, mix: { facts: 0, worked: 0, scratch: 0, columns: 0, countdown: 0, countdownFacts: 0, tagged: 1 }, taggedWorked: 1 }), 50);
    assert.ok(only.every((d) => d.text.includes('</think>\n<answer>') && d.problems[0]!.task === 'arithmetic'));
    assert.throws(() => corpusDocuments({ mix: { facts: 0, worked: 0, scratch: 0, columns: 0, tagged: 0, countdown: 0, countdownFacts: 0 } }).next(), /mix: expected non-negative weights/);
    assert.throws(() => corpusDocuments({ taggedWorked: 2 }).next(), /taggedWorked/);
  });

  test('never draws a held-out problem', () => {
    const problems = docs.flatMap((d) => d.problems);
    assert.ok(problems.length > 5000);
    assert.equal(problems.filter(isHeldOut).length, 0);
    const evalKeys = new Set(heldOutSet(COUNTDOWN, 500).map(problemKey));
    assert.equal(problems.filter((p) => evalKeys.has(problemKey(p))).length, 0);
  });

  test('mixes direct answers, worked solutions and narrated searches; documents hold no blank line', () => {
    for (const marker of ['carry', 'borrow', 'Split', 'Try', 'is not', 'Check:', 'Q: What is', 'Answer:', 'Using the numbers']) {
      assert.ok(text.includes(marker), marker);
    }
    assert.ok(docs.every((d) => !d.text.includes('\n\n') && d.text.trim() === d.text && d.text.length > 0));
  });

  test('writeCorpus streams to a file of the requested size, atomically', async () => {
    const file = join(dir, 'corpus.txt');
    const r = await writeCorpus(file, 200_000, { seed: 3, maxDigits: 2 });
    const size = (await stat(file)).size;
    assert.equal(size, r.bytes);
    assert.ok(size >= 200_000 && size < 205_000);
    assert.equal((await readFile(file, 'utf8')).split('\n\n').length - 1, r.documents);
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('.nanoseek-tmp')), []);
  });
});

describe('cold-start SFT records', () => {
  const specs: TaskSpec[] = [COUNTDOWN, { task: 'arithmetic', digits: [4, 3], ops: ['+', '-', '*'] }];
  for (const spec of specs) {
    test(`${spec.task}: every completion grades format 1, accuracy 1; no held-out problem`, () => {
      for (const zero of [false, true]) {
        for (const r of take(sftRecords(spec, { seed: 4, zero }), 300)) {
          const g = grade(r.problem, r.completion);
          assert.equal(g.reward, 1, `${r.completion}\n${g.reason}`);
          assert.equal(isHeldOut(r.problem), false);
          assert.equal(r.prompt.startsWith('A conversation between User and Assistant.'), zero);
        }
      }
      assert.deepEqual(take(sftRecords(spec, { seed: 4 }), 20), take(sftRecords(spec, { seed: 4 }), 20));
    });
  }
});

async function cli(...args: string[]): Promise<{ out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const program = new Command().exitOverride();
  register(program, { out: (l) => out.push(l), err: (l) => err.push(l) });
  await program.parseAsync(['node', 'nanoseek', ...args]);
  return { out: out.join('\n'), err: err.join('\n') };
}

describe('nanoseek tasks', () => {
  test('sample prints problems with solutions; --json emits loadable records', async () => {
    const human = await cli('tasks', 'sample', 'countdown', '--n', '3', '--seed', '1');
    assert.equal(human.out.split('\n').filter((l) => l.includes('solution: ')).length, 3);
    const file = join(dir, 'eval.jsonl');
    const json = await cli('tasks', 'sample', 'arithmetic', '--n', '4', '--json', '--heldout', '--digits', '2,2', '--ops', '+');
    await writeFile(file, `${json.out}\n`);
    const problems = await loadProblems(file);
    assert.equal(problems.length, 4);
    assert.ok(problems.every(isHeldOut));
    assert.deepEqual((await cli('tasks', 'sample', 'arithmetic', '--n', '4', '--json', '--heldout', '--digits', '2,2', '--ops', '+')).out, json.out);
    const long = await cli('tasks', 'sample', 'arithmetic', '--n', '2', '--digits', '1,1,1,1,1,1', '--ops', '+');
    assert.equal(long.out.split('\n').filter((l) => /^\[arithmetic-[0-9a-f]{8}\] What is \d( \+ \d){5}\?$/.test(l)).length, 2, long.out);
    const tiny = await cli('tasks', 'sample', 'arithmetic', '--heldout', '--digits', '1,1', '--ops', '+', '--n', '100');
    assert.match(tiny.err, /held-out split has only \d+ problems/);
  });

  test('flag errors name the flag', async () => {
    await assert.rejects(cli('tasks', 'sample', 'sudoku'), /<task>: expected one of arithmetic, countdown/);
    await assert.rejects(cli('tasks', 'sample', 'arithmetic', '--digits', '3,x'), /--digits: expected an integer/);
    await assert.rejects(cli('tasks', 'sample', 'arithmetic', '--digits', Array(13).fill('1').join(',')), /digits: expected 2 to 12 digit counts/);
    await assert.rejects(cli('tasks', 'sample', 'arithmetic', '--ops', '+,/'), /--ops/);
    await assert.rejects(cli('tasks', 'sample', 'countdown', '--digits', '3,3'), /--digits does not apply to countdown/);
    await assert.rejects(cli('tasks', 'sample', 'countdown', '--count', '5,3'), /--count: MIN must not exceed MAX/);
    await assert.rejects(cli('tasks', 'sample', 'countdown', '--n', 'many'), /--n: expected an integer/);
    await assert.rejects(cli('tasks', 'corpus', '--out', join(dir, 'x.txt'), '--mb', '-1'), /--mb/);
  });

  test('corpus and sft write files', async () => {
    const corpusFile = join(dir, 'c.txt');
    const c = await cli('tasks', 'corpus', '--out', corpusFile, '--mb', '0.05', '--seed', '2', '--count', '3');
    assert.match(c.out, /wrote 0\.1 MB .* documents, \d+ problems/);
    assert.ok((await stat(corpusFile)).size >= 50_000);
    const sftFile = join(dir, 'sft.jsonl');
    await cli('tasks', 'sft', 'countdown', '--out', sftFile, '--n', '7');
    const lines = (await readFile(sftFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 7);
    assert.deepEqual(Object.keys(lines[0]), ['prompt', 'completion']);
  });

  test('grade matches completions by id or position and reports file:line', async () => {
    const data = join(dir, 'data.jsonl');
    await writeFile(
      data,
      '{"task":"countdown","numbers":[3,5,7],"target":22,"id":"a"}\n{"task":"arithmetic","question":"What is 2 + 2?","answer":"4","id":"b"}\n',
    );
    const completions = join(dir, 'completions.jsonl');
    const rows = [
      { id: 'b', completion: '<think>2+2</think><answer>4</answer>' },
      { id: 'a', completion: '<think>hm</think><answer>3*7</answer>' },
      { id: 'a', completion: '<answer>3*5+7</answer>' },
    ];
    await writeFile(completions, rows.map((r) => JSON.stringify(r)).join('\n'));
    const r = await cli('tasks', 'grade', '--data', data, '--completions', completions, '--json');
    const results = r.out.split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(results.map((x) => [x.id, x.accuracy, x.format]), [['b', 1, 1], ['a', 0, 1], ['a', 1, 0.5]]);
    assert.match(r.err, /graded 3 completions: accuracy 0\.6667, format 0\.8333/);
    await writeFile(completions, '{"completion":"x"}\n{"completion":"y"}\n{"completion":"z"}\n');
    await assert.rejects(cli('tasks', 'grade', '--data', data, '--completions', completions), /completions\.jsonl:3: more completions than the 2 problems/);
    await writeFile(completions, '{"id":"zz","completion":"x"}\n');
    await assert.rejects(cli('tasks', 'grade', '--data', data, '--completions', completions), /completions\.jsonl:1: field "id": no problem with id "zz"/);
    await writeFile(completions, '{"text":"x"}\n');
    await assert.rejects(cli('tasks', 'grade', '--data', data, '--completions', completions), /completions\.jsonl:1: field "completion"/);
  });
});
