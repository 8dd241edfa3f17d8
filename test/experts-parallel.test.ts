// Expert parallelism on one machine: the backend's expert kernel against the plain path (bitwise) and
// the reference, and a trained MoE model decoding through devices — trivial placement and an EPLB plan
// with replicas — giving the plain path's tokens, prefill and decode alike, with every routed row
// computed on exactly one device and replicas sharing their expert's rows to even out the devices.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ExpertLoadRecorder, ExpertParallel, planFromLoad, runWorkload, skewRouting, stepImbalance, totalImbalance, trivialPlacement, workloadProblems } from '../src/experts/index.js';
import { loadForInference, packageRoot } from '../src/infer/index.js';
import { allocF32, createWasmBackend, referenceBackend, type ExpertBatch } from '../src/kernels/index.js';
import * as T from '../src/tensor/index.js';
import { noise } from './helpers.js';

function heap(n: number, seed: number, scale = 0.3): Float32Array {
  const a = allocF32(n);
  for (let i = 0; i < n; i++) a[i] = noise(i, seed) * scale;
  return a;
}

describe('expert kernel', () => {
  it('each device computes its tasks exactly as the plain path would (bitwise), and as the reference does', () => {
    const be = createWasmBackend({ threads: 2 });
    const dim = 96, hidden = 40, rows = 29;
    const x = heap(rows * dim, 1);
    const w = [0, 1, 2].map((e) => ({ gate: heap(hidden * dim, 10 + e), up: heap(hidden * dim, 20 + e), down: heap(dim * hidden, 30 + e) }));
    const batch = (out: Float32Array): ExpertBatch => ({
      x, out, dim, hidden,
      devices: [[{ ...w[0], row: 0, rows: 9 }, { ...w[2], row: 25, rows: 4 }], [{ ...w[1], row: 9, rows: 16 }], []],
    });
    const out = heap(rows * dim, 99);
    const t = be.experts(batch(out));
    assert.equal(t.start.length, 3);
    for (let d = 0; d < 3; d++) assert.ok(t.end[d] >= t.start[d] && t.start[d] >= 0);
    const ref = allocF32(rows * dim);
    referenceBackend.experts(batch(ref));
    // The plain path on the same backend: x·gateᵀ, x·upᵀ, swiglu, ·downᵀ, each one backend call.
    const linear = (a: Float32Array, m: number, wt: Float32Array, n: number, k: number): Float32Array => {
      const c = allocF32(m * n);
      be.gemm({ m, n, k, a, aOff: 0, lda: k, transA: false, b: wt, bOff: 0, ldb: k, transB: true, c, cOff: 0, ldc: n, alpha: 1, beta: 0, batch: 1, strideA: 0, strideB: 0, strideC: 0 });
      return c;
    };
    for (const [e, r0, n] of [[0, 0, 9], [1, 9, 16], [2, 25, 4]]) {
      const xs = x.subarray(r0 * dim, (r0 + n) * dim);
      const h = allocF32(n * hidden);
      be.swiglu(linear(xs, n, w[e].gate, hidden, dim), linear(xs, n, w[e].up, hidden, dim), h, n * hidden);
      const y = linear(h, n, w[e].down, dim, hidden);
      for (let i = 0; i < n * dim; i++) {
        assert.equal(out[r0 * dim + i], y[i], `expert ${e}, element ${i}`);
        assert.ok(Math.abs(ref[r0 * dim + i] - y[i]) <= 1e-5 * (1 + Math.abs(y[i])));
      }
    }
    void be.dispose();
  });

  it('refuses tasks that overlap, leave x or carry wrongly sized weights', () => {
    const dim = 8, hidden = 4;
    const x = heap(10 * dim, 1), out = allocF32(10 * dim);
    const w = { gate: heap(hidden * dim, 2), up: heap(hidden * dim, 3), down: heap(dim * hidden, 4) };
    assert.throws(() => referenceBackend.experts({ x, out, dim, hidden, devices: [[{ ...w, row: 0, rows: 5 }], [{ ...w, row: 4, rows: 2 }]] }), /device 1, task 0: row 4 is written by another task too/);
    assert.throws(() => referenceBackend.experts({ x, out, dim, hidden, devices: [[{ ...w, row: 8, rows: 5 }]] }), /rows \[8, 13\) are outside the 10 rows of x/);
    assert.throws(() => referenceBackend.experts({ x, out, dim, hidden, devices: [[{ ...w, down: heap(3, 5), row: 0, rows: 1 }]] }), /down has 3 values, needs 8 × 4/);
  });
});

describe('expert parallelism on a trained model', () => {
  it('decodes and prefills exactly as the plain path, on the trivial placement and on an EPLB plan with replicas', { timeout: 120_000 }, async () => {
    const { model, tokenizer } = await loadForInference(join(await packageRoot(), 'models', 'nano-r1zero'));
    const moe = model.moeLayers();
    const E = moe[0].E;
    skewRouting(model, [0, 1, 2, 3, 4, 5, 6, 7], 0.1);
    const problems = workloadProblems(24);
    const recorder = new ExpertLoadRecorder(model, { label: 'nano-r1zero', source: 'test' }).attach();
    const plain = await runWorkload(model, tokenizer, problems, { maxTokens: 48 });
    recorder.detach();
    const rec = recorder.snapshot();
    const plan = planFromLoad(rec, { replicas: E + 4, groups: rec.groups, nodes: 1, gpus: 2 }, 'test');
    assert.ok(plan.logcnt.every((row) => row.some((c) => c > 1)), 'the plan replicates experts in every layer');

    // A long prompt prefilled in one step, then a few decode steps: logits through devices vs in place.
    const ids = tokenizer.encode('What is 3 + 4 + 5 + 6 + 7 + 8? Work it out. 3 + 4 = 7, 7 + 5 = 12, 12 + 6 = 18', { addBos: true });
    const logits = (): number[][] => {
      const cache = model.newCache();
      return T.noGrad(() => {
        const rows = [T.tidy(() => model.forwardCached([{ ids, cache }], true).toArray())];
        for (const t of [5, 9, 11]) rows.push(T.tidy(() => model.forwardCached([{ ids: [t], cache }]).toArray()));
        return rows;
      });
    };
    const reference = logits();
    for (const placement of [trivialPlacement(moe.length, E, 2), { devices: 2, phy2log: plan.phy2log }]) {
      const ep = new ExpertParallel(model, placement).attach();
      try {
        const got = logits();
        let worst = 0;
        got.forEach((row, i) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - reference[i][j])))));
        assert.ok(worst <= 1e-4, `logits differ by ${worst}`);
        ep.resetStats();
        const w = await runWorkload(model, tokenizer, problems, { maxTokens: 48 });
        assert.deepEqual(w.tokens, plain.tokens, `${placement.phy2log[0].length} slots: every token as in the plain path`);
        const s = ep.stats();
        // Every routed row ran on exactly one device: rows per layer = tokens × top-k.
        const routed = s.rows.map((r) => r.reduce((a, b) => a + b, 0));
        assert.equal(new Set(routed).size, 1);
        assert.equal(routed[0] % moe[0].K, 0);
        assert.ok(s.calls > 0 && s.calls % moe.length === 0, 'every forward pass ran every MoE layer through the devices');
        assert.ok(s.busy.every((b) => b > 0), 'both devices computed');
        if (placement.phy2log[0].length > E) {
          assert.ok(stepImbalance(s) < 1.1, `with the plan: max/mean per step ${stepImbalance(s)}`);
          assert.ok(totalImbalance(s).every((x) => x < 1.1), `with the plan: ${totalImbalance(s)}`);
        } else {
          assert.ok(Math.max(...totalImbalance(s)) > 1.25, `the skew shows on the trivial placement: ${totalImbalance(s)}`);
        }
      } finally {
        ep.detach();
      }
    }
  });

  it('splits a replicated expert\'s rows to even out the devices (the router\'s choice among replicas), or evenly', async () => {
    const { model } = await loadForInference(join(await packageRoot(), 'models', 'nano-r1zero'));
    // Expert 0 has a slot on each device, the other experts one slot each.
    const row = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 10, 11, 12, 13, 14, 15, 1];
    const ep = new ExpertParallel(model, { devices: 2, phy2log: [row, row, row] });
    const counts = Int32Array.from({ length: 16 }, (_, e) => (e === 0 ? 40 : e < 9 ? 6 : 2));
    const take = ep.split(0, counts);
    const device = (s: number) => (s < 9 ? 0 : 1);
    const held = [0, 0];
    take.forEach((n, s) => (held[device(s)] += n));
    assert.equal(take[0] + take[10], 40);
    assert.equal(held[0] + held[1], 40 + 8 * 6 + 7 * 2);
    assert.ok(Math.abs(held[0] - held[1]) <= 1, `devices hold ${held}`);
    // Even dispatch: equal shares whatever the devices hold (what EPLB assumes when it plans).
    const even = new ExpertParallel(model, { devices: 2, phy2log: [row, row, row] }, { dispatch: 'even' }).split(0, Int32Array.from(counts, (c, e) => (e === 1 ? 7 : c)));
    assert.deepEqual([even[0], even[10], even[1], even[17]], [20, 20, 4, 3]);
    assert.throws(() => new ExpertParallel(model, { devices: 2, phy2log: [row.map((e) => (e === 15 ? 14 : e)), row, row] }), /layer 0 of the placement has no slot for expert 15/);
    assert.throws(() => new ExpertParallel(model, { devices: 4, phy2log: [row, row, row] }), /18 slots do not split evenly over 4 devices/);
  });
});
