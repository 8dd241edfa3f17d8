// Tensor core behaviour: errors that name the op and shapes, memory recycling, no-grad mode, and a
// tiny transformer language model that actually learns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { heapStats } from '../src/kernels/memory.js';
import { AdamW } from '../src/train/optim.js';
import { randTensor } from './helpers.js';

test('bad input names the op and the shapes', () => {
  const a = randTensor([2, 3], 1, 'f32');
  const b = randTensor([4, 5], 2, 'f32');
  assert.throws(() => T.matmul(a, b), /matmul: inner dimensions differ .*\[2, 3\].*\[4, 5\]/);
  assert.throws(() => T.add(a, b), /add: shapes do not broadcast.*\[2, 3\].*\[4, 5\]/);
  assert.throws(() => T.add(a, randTensor([2, 3], 3, 'f64')), /add: mixed dtypes/);
  assert.throws(() => T.rmsnorm(a, randTensor([4], 4, 'f32'), 1e-6), /rmsnorm: weight must be 1-D and match/);
  assert.throws(() => T.attention(a, a, a, { scale: 1, causal: true }), /attention: q, k, v must be \[B, T, H, d\]/);
  assert.throws(() => T.embedding(a, [0, 2]), /embedding: index 2 at position 1 is outside \[0, 2\)/);
  assert.throws(() => T.embedding(a, [0.5]), /embedding: index 0.5/);
  assert.throws(() => T.crossEntropy(a, [0, 7]), /crossEntropy: target 7 at row 1 is outside \[0, 3\)/);
  assert.throws(() => T.crossEntropy(T.fromArray([0, NaN, 1, 2], [2, 2]), [0, 1]), /crossEntropy: \[2, 2\] holds NaN at flat index 1/);
  assert.throws(() => T.topk([1, NaN, 3], 1, 3, 2), /topk: NaN at row 0, column 1/);
  assert.throws(() => T.reshape(a, [4, 2]), /reshape: cannot reshape to \[4, 2\].*\[2, 3\]/);
  assert.throws(() => T.split(a, [1, 1], -1), /split: sizes \[1, 1\] do not add up to 3/);
  assert.throws(() => T.fromArray([1, 2], [3]), /fromArray: 2 values do not fill shape \[3\]/);
  const d = randTensor([2], 5, 'f32');
  d.dispose();
  assert.throws(() => T.scale(d, 2), /used after dispose/);
});

test('tidy frees intermediates and a repeated step reuses the same buffers', () => {
  const w = randTensor([64, 64], 6, 'f32');
  w.requiresGrad = true;
  const step = (): number => T.tidy(() => {
    const x = randTensor([8, 64], 7, 'f32');
    const loss = T.mean(T.mul(T.silu(T.matmul(x, w)), T.matmul(x, w)));
    T.backward(loss);
    return loss.item();
  });
  step();
  const before = heapStats();
  for (let i = 0; i < 5; i++) step();
  const after = heapStats();
  assert.equal(after.liveBytes, before.liveBytes, 'live memory must not grow across steps');
  assert.equal(after.reservedBytes, before.reservedBytes, 'no new memory reserved after the first step');
  assert.ok(w.grad !== null, 'parameter gradient survives the scope');
});

test('noGrad records nothing and tidy keeps returned tensors', () => {
  const w = randTensor([3, 3], 8, 'f32');
  w.requiresGrad = true;
  const y = T.noGrad(() => T.matmul(w, w));
  assert.equal(y.requiresGrad, false);
  const kept = T.tidy(() => T.scale(T.add(w, w), 0.5));
  assert.deepEqual(Array.from(kept.data), Array.from(w.data));
  assert.equal(kept.disposed, false);
});

test('topk picks the largest per row, ties to the lower index', () => {
  const r = T.topk([1, 5, 3, 5, 0, 0, 2, 9], 2, 4, 2);
  assert.deepEqual(Array.from(r.indices), [1, 3, 3, 2]);
  assert.deepEqual(Array.from(r.values), [5, 5, 9, 2]);
});

test('AdamW matches a hand-computed first step', () => {
  const p = T.fromArray([1, -2], [2], 'f64');
  p.requiresGrad = true;
  T.gradOf(p).set([0.5, -0.25]);
  const opt = new AdamW([{ tensor: p, decay: true }], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, gradClip: 0 });
  opt.update();
  // step 1: m̂ = g, v̂ = g², update = lr·g/|g| = ±lr; decay multiplies by (1 − lr·wd) first.
  assert.ok(Math.abs(p.data[0] - (1 * (1 - 0.001) - 0.1)) < 1e-7);
  assert.ok(Math.abs(p.data[1] - (-2 * (1 - 0.001) + 0.1)) < 1e-7);
});

test('a tiny transformer language model learns a toy corpus', () => {
  // One pre-norm block with causal attention and a SwiGLU MLP over a 12-symbol cyclic language.
  const V = 12, D = 32, H = 4, hd = D / H, F = 64, Tn = 16, B = 4;
  let seed = 100;
  const param = (shape: number[], s: number): T.Tensor => {
    const t = randTensor(shape, seed++, 'f32', s);
    t.requiresGrad = true;
    return t;
  };
  const ones = (n: number): T.Tensor => {
    const t = T.full([n], 1);
    t.requiresGrad = true;
    return t;
  };
  const P = {
    emb: param([V, D], 0.5), n1: ones(D), wq: param([D, D], 0.3), wk: param([D, D], 0.3), wv: param([D, D], 0.3), wo: param([D, D], 0.3),
    n2: ones(D), wg: param([F, D], 0.3), wu: param([F, D], 0.3), wd: param([D, F], 0.2), nf: ones(D), head: param([V, D], 0.3),
  };
  const opt = new AdamW(Object.values(P).map((t) => ({ tensor: t, decay: t.rank === 2 })), { lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, gradClip: 1 });
  const invFreq = Array.from({ length: hd / 2 }, (_, i) => Math.pow(10000, (-2 * i) / hd));
  const table = T.ropeTable(Array.from({ length: Tn }, (_, i) => i), invFreq);
  // Sequences count up by a per-sequence stride: predicting the next symbol needs the previous two.
  const batch = (step: number): { ids: number[]; targets: number[] } => {
    const ids: number[] = [], targets: number[] = [];
    for (let b = 0; b < B; b++) {
      const stride = 1 + ((step * B + b) % 3), start = (step * 7 + b * 5) % V;
      for (let t = 0; t <= Tn; t++) {
        const sym = (start + t * stride) % V;
        if (t < Tn) ids.push(sym);
        if (t > 0) targets.push(sym);
      }
    }
    return { ids, targets };
  };
  const lossAt = (step: number): number => T.tidy(() => {
    const { ids, targets } = batch(step);
    const x = T.reshape(T.embedding(P.emb, ids), [B, Tn, D]);
    const h1 = T.rmsnorm(x, P.n1, 1e-6);
    const q = T.rope(T.reshape(T.linear(h1, P.wq), [B, Tn, H, hd]), table, 'half');
    const k = T.rope(T.reshape(T.linear(h1, P.wk), [B, Tn, H, hd]), table, 'half');
    const v = T.reshape(T.linear(h1, P.wv), [B, Tn, H, hd]);
    const a = T.reshape(T.attention(q, k, v, { scale: 1 / Math.sqrt(hd), causal: true }), [B, Tn, D]);
    const x2 = T.add(x, T.linear(a, P.wo));
    const h2 = T.rmsnorm(x2, P.n2, 1e-6);
    const x3 = T.add(x2, T.linear(T.swiglu(T.linear(h2, P.wg), T.linear(h2, P.wu)), P.wd));
    const logits = T.linear(T.rmsnorm(x3, P.nf, 1e-6), P.head);
    const loss = T.crossEntropy(T.reshape(logits, [B * Tn, V]), targets);
    if (T.isGradEnabled()) {
      opt.zeroGrad();
      T.backward(loss);
      opt.update();
    }
    return loss.item();
  });
  const initial = T.noGrad(() => lossAt(1000));
  for (let s = 0; s < 150; s++) lossAt(s);
  const final = T.noGrad(() => lossAt(1000));
  assert.ok(initial > 2.0, `initial loss ${initial}`);
  assert.ok(final < 0.5, `loss fell from ${initial.toFixed(3)} only to ${final.toFixed(3)}`);
});

test('NANOSEEK_CHECK_FINITE names the op whose output went non-finite, and its inputs', () => {
  const w = T.fromArray([1, 2, Infinity, 4], [2, 2]);
  w.name = 'model.layers.0.mlp.down_proj.weight';
  const x = T.fromArray([1, 0, 0, 1], [2, 2]);
  T.setAnomalyMode(true);
  try {
    assert.throws(() => T.noGrad(() => T.matmul(x, w)), /^Error: matmul: its output \[2, 2\] holds (Infinity|NaN) at flat index \d; inputs \[2, 2\], model\.layers\.0\.mlp\.down_proj\.weight \[2, 2\]: input 1 \(model\.layers\.0\.mlp\.down_proj\.weight \[2, 2\]\) already held NaN or Infinity$/);
    const big = T.fromArray([3e38, 3e38], [2]);
    assert.throws(() => T.noGrad(() => T.add(big, big)), /^Error: add: its output \[2\] holds Infinity at flat index 0; inputs \[2\], \[2\]: every input is finite, so the op itself overflowed$/);
  } finally {
    T.setAnomalyMode(false);
  }
});

test('swigluInPlace writes swiglu over its gate, f32 and f64, and refuses to run under a tape', () => {
  for (const dtype of ['f32', 'f64'] as const) {
    const gate = randTensor([3, 37], 5, dtype);
    const up = randTensor([3, 37], 6, dtype);
    const want = T.noGrad(() => T.swiglu(gate, up)).toArray();
    const same = T.noGrad(() => T.swigluInPlace(gate, up));
    assert.equal(same, gate, 'the result is the gate tensor itself');
    assert.deepEqual(gate.toArray(), want);
    assert.throws(() => T.swigluInPlace(gate, up), /only without a tape/);
    assert.throws(() => T.noGrad(() => T.swigluInPlace(gate, randTensor([3, 36], 7, dtype))), /differ in shape/);
  }
});
