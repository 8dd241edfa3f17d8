// `nanoseek distill traces` through its library API: the shipped teacher's kept answers are correct,
// well-formed SFT records; a run stopped after a round and resumed writes the same file as one
// uninterrupted run; held-out problems never reach the teacher; a teacher behind an OpenAI-compatible
// server (nanoseek's own, on loopback) gives traces too, and a server elsewhere is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadForInference } from '../src/infer/index.js';
import { InferenceServer } from '../src/serve/server.js';
import { grade, heldOutSet, isHeldOut, questionText, sampleProblem, type TaskSpec } from '../src/tasks/index.js';
import { endpointTeacher, modelTeacher, progressPath, traceProblems, writeTraces, type Teacher } from '../src/train/distill/traces.js';
import { Rng } from '../src/util/rng.js';

const SPEC: TaskSpec = { task: 'arithmetic', digits: [1, 1, 1, 1, 1, 1], ops: ['+'] };
const SAMPLING = { samples: 3, keep: 2, maxNewTokens: 120, temperature: 1, topP: 1 };

async function teacher(): Promise<{ t: Teacher; ck: Awaited<ReturnType<typeof loadForInference>> }> {
  const ck = await loadForInference('models/nano-r1zero');
  return { t: modelTeacher(ck.name, ck.model, ck.tokenizer, 'r1-zero', true), ck };
}

function records(text: string): { prompt: string; completion: string }[] {
  return text.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
}

test('traces: kept answers are correct and well-formed; stop + resume writes what one run writes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'nanoseek-traces-'));
  try {
    const { t } = await teacher();
    const { problems } = traceProblems({ tasks: [SPEC], count: 12, seed: 5 });
    assert.ok(problems.every((p) => !isHeldOut(p)));
    const whole = join(dir, 'whole.jsonl');
    const r = await writeTraces(t, problems, { out: whole, sampling: SAMPLING, seed: 1, batch: 4 });
    assert.equal(r.problems, 12);
    assert.equal(r.sampled, 36);
    assert.ok(r.kept > 0 && r.kept <= 24 && r.tokens > 0);
    const recs = records(await readFile(whole, 'utf8'));
    assert.equal(recs.length, r.kept);
    for (const rec of recs) {
      const p = problems.find((q) => rec.prompt === questionText(q));
      assert.ok(p !== undefined, `record for an unknown problem: ${rec.prompt}`);
      assert.ok(rec.completion.startsWith('<think>'), 'the reasoning is kept');
      const g = grade(p, rec.completion);
      assert.equal(g.accuracy, 1);
      assert.equal(g.format, 1);
    }

    // Stopped after the first round (the abort lands while it runs), then resumed.
    const split = join(dir, 'split.jsonl');
    const stop = new AbortController();
    const first = await writeTraces(t, problems, { out: split, sampling: SAMPLING, seed: 1, batch: 4, signal: stop.signal, onRound: () => stop.abort() });
    assert.equal(first.stopped, true);
    assert.equal(first.problems, 4);
    await assert.rejects(writeTraces(t, problems, { out: split, sampling: SAMPLING, seed: 1, batch: 4 }), /already exists with a traces run in progress; pass --resume/);
    await assert.rejects(writeTraces(t, problems, { out: split, sampling: { ...SAMPLING, samples: 4 }, seed: 1, batch: 4, resume: true }), /cannot resume with sampling/);
    const rest = await writeTraces(t, problems, { out: split, sampling: SAMPLING, seed: 1, batch: 4, resume: true });
    assert.equal(rest.problems, 12);
    assert.equal(await readFile(split, 'utf8'), await readFile(whole, 'utf8'));
    const progress = JSON.parse(await readFile(progressPath(split), 'utf8'));
    assert.equal(progress.done, true);
    assert.equal(progress.kept, r.kept);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('traces: held-out problems of a problem file are left out', () => {
  const held = heldOutSet(SPEC, 3);
  const rng = new Rng(9);
  const train = Array.from({ length: 4 }, () => sampleProblem(SPEC, rng));
  const { problems, heldOutDropped } = traceProblems({ problems: [...held, ...train] });
  assert.equal(heldOutDropped, 3);
  assert.deepEqual(problems, train);
});

test('traces: a teacher behind nanoseek serve on loopback; other hosts refused', async () => {
  await assert.rejects(endpointTeacher('http://192.0.2.1:8080/v1'), /must be on this machine/);
  const { ck } = await teacher();
  const server = new InferenceServer({ model: ck.model, tokenizer: ck.tokenizer, modelId: ck.name, samplingDefaults: ck.samplingDefaults, card: ck.card });
  const { port } = await server.listen(0);
  const dir = await mkdtemp(join(tmpdir(), 'nanoseek-traces-'));
  try {
    const t = await endpointTeacher(`http://127.0.0.1:${port}/v1`);
    assert.match(t.name, /^nano-r1zero at /);
    const { problems } = traceProblems({ tasks: [SPEC], count: 6, seed: 2 });
    const out = join(dir, 'served.jsonl');
    const r = await writeTraces(t, problems, { out, sampling: { ...SAMPLING, temperature: 0, samples: 1, keep: 1 }, seed: 0, batch: 6 });
    assert.equal(r.sampled, 6);
    // Greedy nano-r1zero gets most six-number sums right (0.855 held out): some must be kept.
    assert.ok(r.kept >= 2, `kept ${r.kept}`);
    for (const rec of records(await readFile(out, 'utf8'))) assert.match(rec.completion, /^<think>\n[\s\S]+\n<\/think>\n<answer>\d+<\/answer>$/);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
