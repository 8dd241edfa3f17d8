// Every differentiable op against central finite differences in float64.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { randTensor } from './helpers.js';

/** Reduces an op's output to a scalar with fixed random weights, so every output element matters. */
function weightedSum(y: T.Tensor, seed = 99): T.Tensor {
  return T.sum(T.mul(y, randTensor([...y.shape], seed)));
}

function check(name: string, inputs: T.Tensor[], f: (...xs: T.Tensor[]) => T.Tensor, tol = 1e-6): void {
  test(`grad: ${name}`, () => {
    const r = T.gradcheck(() => weightedSum(f(...inputs)), inputs);
    assert.ok(r.maxError < tol, `${name}: max error ${r.maxError} at input ${r.worst.input}[${r.worst.index}] analytic ${r.worst.analytic} numeric ${r.worst.numeric}`);
    assert.ok(r.checked > 0);
  });
}

check('add (same shape)', [randTensor([3, 4], 1), randTensor([3, 4], 2)], T.add);
check('add (bias broadcast)', [randTensor([2, 3, 4], 1), randTensor([4], 2)], T.add);
check('sub (broadcast)', [randTensor([5, 3], 3), randTensor([3], 4)], T.sub);
check('mul (broadcast)', [randTensor([2, 3, 4], 5), randTensor([3, 4], 6)], T.mul);
check('scale', [randTensor([7], 7)], (x) => T.scale(x, -2.5));
check('sigmoid', [randTensor([17], 8, 'f64', 3)], T.sigmoid);
check('silu', [randTensor([17], 9, 'f64', 3)], T.silu);
check('swiglu', [randTensor([3, 5], 10, 'f64', 2), randTensor([3, 5], 11)], T.swiglu);
for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
  const a = ta ? randTensor([4, 3], 12) : randTensor([3, 4], 12);
  const b = tb ? randTensor([5, 4], 13) : randTensor([4, 5], 13);
  check(`matmul transA=${ta} transB=${tb}`, [a, b], (x, y) => T.matmul(x, y, ta, tb));
  const ab = ta ? randTensor([2, 4, 3], 14) : randTensor([2, 3, 4], 14);
  const bb = tb ? randTensor([2, 5, 4], 15) : randTensor([2, 4, 5], 15);
  check(`batched matmul transA=${ta} transB=${tb}`, [ab, bb], (x, y) => T.matmul(x, y, ta, tb));
}
check('matmul (leading dims folded)', [randTensor([2, 3, 4], 16), randTensor([4, 6], 17)], (x, y) => T.matmul(x, y));
check('linear with bias', [randTensor([2, 3, 4], 18), randTensor([5, 4], 19), randTensor([5], 20)], (x, w, b) => T.linear(x, w, b));
check('rmsnorm', [randTensor([3, 8], 21), randTensor([8], 22)], (x, w) => T.rmsnorm(x, w, 1e-6));
check('softmax', [randTensor([3, 7], 23, 'f64', 3)], T.softmax);
check('logSoftmax', [randTensor([3, 7], 24, 'f64', 3)], T.logSoftmax);
for (const style of ['interleaved', 'half'] as const) {
  const table = T.ropeTable([0, 3, 7], [1, 0.1, 0.01]);
  check(`rope ${style} [B,T,H,d]`, [randTensor([2, 3, 2, 6], 25)], (x) => T.rope(x, table, style));
  check(`rope ${style} [B,T,d]`, [randTensor([2, 3, 6], 26)], (x) => T.rope(x, table, style));
}
check('attention causal', [randTensor([2, 5, 2, 4], 27), randTensor([2, 5, 2, 4], 28), randTensor([2, 5, 2, 3], 29)], (q, k, v) =>
  T.attention(q, k, v, { scale: 0.5, causal: true }));
check('attention GQA + cached prefix (S > T)', [randTensor([1, 3, 4, 4], 30), randTensor([1, 6, 2, 4], 31), randTensor([1, 6, 2, 5], 32)], (q, k, v) =>
  T.attention(q, k, v, { scale: 0.7, causal: true }));
check('attention non-causal', [randTensor([1, 3, 2, 4], 33), randTensor([1, 4, 2, 4], 34), randTensor([1, 4, 2, 2], 35)], (q, k, v) =>
  T.attention(q, k, v, { scale: 0.3, causal: false }));
test('grad: crossEntropy with ignore index', () => {
  const logits = randTensor([5, 7], 36, 'f64', 3);
  const r = T.gradcheck(() => T.crossEntropy(logits, [1, -100, 6, 0, 3]), [logits]);
  assert.ok(r.maxError < 1e-6, `max error ${r.maxError}`);
});
check('tokenLogProbs', [randTensor([4, 6], 37, 'f64', 3)], (x) => T.tokenLogProbs(x, [5, 0, 2, 2]));
check('embedding', [randTensor([6, 3], 38)], (w) => T.embedding(w, [1, 5, 1, 0]));
check('gatherRows', [randTensor([5, 3], 39)], (x) => T.gatherRows(x, [4, 4, 0]));
check('scatterAddRows weighted', [randTensor([4, 3], 40), randTensor([4], 41)], (x, w) => T.scatterAddRows(x, [2, 0, 2, 1], 3, w));
check('scatterAddRows', [randTensor([4, 3], 42)], (x) => T.scatterAddRows(x, [2, 0, 2, 1], 3));
check('gatherCols', [randTensor([3, 5], 43)], (x) => T.gatherCols(x, [4, 0, 1, 1, 2, 3], 2));
check('normalizeRows', [T.fromArray([0.2, 0.5, 0.9, 0.1, 0.3, 0.6], [2, 3], 'f64')], (x) => T.normalizeRows(x));
check('reshape', [randTensor([2, 6], 44)], (x) => T.reshape(x, [3, -1]));
check('permute', [randTensor([2, 3, 4], 45)], (x) => T.permute(x, [2, 0, 1]));
check('transpose', [randTensor([2, 3, 4], 46)], (x) => T.transpose(x, 0, 1));
check('concat axis 1', [randTensor([2, 3, 2], 47), randTensor([2, 1, 2], 48)], (a, b) => T.concat([a, b], 1));
check('split last axis', [randTensor([3, 5], 49)], (x) => {
  const [a, b] = T.split(x, [2, 3], -1);
  return T.concat([T.scale(a, 3), b], -1);
});
check('expand', [randTensor([2, 1, 3], 50)], (x) => T.expand(x, 1, 4));
check('sum axis', [randTensor([2, 3, 4], 51)], (x) => T.sum(x, 1));
check('mean', [randTensor([2, 3], 52)], (x) => T.mean(T.mul(x, x)));
check('mean axis 0', [randTensor([4, 3], 53)], (x) => T.mean(x, 0));

// Gradients that meet: an intermediate that receives the output's gradient buffer (reshape, add) or a
// fresh one (written, not added to), then more gradient on top from a second use.
check('add of an input with itself', [randTensor([3, 4], 54)], (x) => T.add(x, x));
check('matmul of an input with itself', [randTensor([3, 3], 55)], (x) => T.matmul(x, x, false, true));
check('swiglu with gate = up', [randTensor([2, 5], 56, 'f64', 2)], (x) => T.swiglu(x, x));
check('attention with q = k = v', [randTensor([1, 4, 2, 3], 57)], (x) => T.attention(x, x, x, { scale: 0.6, causal: true }));
check('intermediates used twice (reshape, add, rmsnorm, concat, rope)', [randTensor([2, 3, 4], 58), randTensor([4], 59)], (x, w) => {
  const h = T.scale(x, 1.5); // an intermediate: its gradient buffer is not a parameter's
  const r = T.reshape(h, [6, 4]);
  const sum = T.add(T.reshape(r, [2, 3, 4]), h); // h receives the reshape chain's gradient and add's
  const n = T.rmsnorm(sum, w, 1e-6);
  const c = T.concat([n, sum], -1); // sum is used again
  const table = T.ropeTable([0, 1, 2], [1, 0.1, 0.01, 0.001]);
  return T.add(T.rope(T.reshape(c, [2, 3, 1, 8]), table, 'interleaved'), T.reshape(T.concat([sum, sum], -1), [2, 3, 1, 8]));
});
