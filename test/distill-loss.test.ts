// Knowledge-distillation losses: each divergence, the temperature's τ² scaling, α mixing and the
// response-token mask against values worked out by hand, and every gradient against finite differences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { distillLoss, kdLoss, type Divergence } from '../src/train/distill/loss.js';
import { randTensor } from './helpers.js';

const close = (a: number, b: number, tol = 1e-6): void => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);
const LN3 = Math.log(3);

// Teacher logits [0, ln 3] → p_T = (1/4, 3/4); student logits [0, 0] → p_S = (1/2, 1/2).
//   forward KL(p_T‖p_S) = ¼·ln(¼/½) + ¾·ln(¾/½)            = 0.1308120
//   reverse KL(p_S‖p_T) = ½·ln(½/¼) + ½·ln(½/¾)            = 0.1438410
//   JSD(½): M = (3/8, 5/8); ½·[¼ ln(2/3) + ¾ ln(6/5)] + ½·[½ ln(4/3) + ½ ln(4/5)] = 0.0338225
const FORWARD = 0.25 * Math.log(0.5) + 0.75 * Math.log(1.5);
const REVERSE = 0.5 * Math.log(2) + 0.5 * Math.log(2 / 3);
const JSD_HALF = 0.5 * (0.25 * Math.log(2 / 3) + 0.75 * Math.log(6 / 5)) + 0.5 * (0.5 * Math.log(4 / 3) + 0.5 * Math.log(4 / 5));

function value(student: number[], teacher: number[], o: Parameters<typeof kdLoss>[2], mask?: number[]): number {
  return T.noGrad(() => T.tidy(() => kdLoss(T.fromArray(student, [student.length / 2, 2], 'f64'), teacher, o, mask).item()));
}

test('each divergence against hand-computed values', () => {
  close(FORWARD, 0.130812, 1e-6);
  close(REVERSE, 0.143841, 1e-6);
  close(JSD_HALF, 0.0338225, 1e-6);
  close(value([0, 0], [0, LN3], { divergence: 'forward' }), FORWARD, 1e-12);
  close(value([0, 0], [0, LN3], { divergence: 'reverse' }), REVERSE, 1e-12);
  close(value([0, 0], [0, LN3], { divergence: 'jsd', beta: 0.5 }), JSD_HALF, 1e-12);
  // β = 0 and β = 1 are forward and reverse KL (GKD's convention; the mixture would make both 0).
  close(value([0, 0], [0, LN3], { divergence: 'jsd', beta: 0 }), FORWARD, 1e-12);
  close(value([0, 0], [0, LN3], { divergence: 'jsd', beta: 1 }), REVERSE, 1e-12);
  // Identical distributions: every divergence is 0.
  for (const d of ['forward', 'reverse', 'jsd'] as Divergence[]) close(value([1, -2], [1, -2], { divergence: d }), 0, 1e-15);
});

test('temperature: both distributions softened by τ, the divergence scaled by τ²', () => {
  // At τ = 2, teacher logits [0, 2 ln 3] give p_T = (1/4, 3/4) again: the loss is 4 × the KL above.
  close(value([0, 0], [0, 2 * LN3], { divergence: 'forward', temperature: 2 }), 4 * FORWARD, 1e-12);
  close(value([0, 0], [0, 2 * LN3], { divergence: 'reverse', temperature: 2 }), 4 * REVERSE, 1e-12);
  // Student logits are softened too: [0, 2 ln 3] at τ = 2 matches the teacher exactly.
  close(value([0, 2 * LN3], [0, 2 * LN3], { divergence: 'forward', temperature: 2 }), 0, 1e-15);
  assert.throws(() => value([0, 0], [0, 0], { divergence: 'forward', temperature: 0 }), /temperature must be > 0/);
  assert.throws(() => value([0, 0], [0, 0], { divergence: 'jsd', beta: 1.5 }), /beta must be in \[0, 1\]/);
  assert.throws(() => value([0, 0], [0, 0, 1], { divergence: 'forward' }), /vocabularies must match/);
});

test('mask: rows outside it neither count in the mean nor get a gradient', () => {
  // Row 0 as above, row 1 far apart but masked out.
  close(value([0, 0, 5, -5], [0, LN3, -5, 5], { divergence: 'forward' }, [1, 0]), FORWARD, 1e-12);
  close(value([0, 0, 5, -5], [0, LN3, -5, 5], { divergence: 'forward' }, [0, 0]), 0, 0);
  const x = T.fromArray([0, 0, 5, -5], [2, 2], 'f64');
  x.requiresGrad = true;
  T.backward(kdLoss(x, [0, LN3, -5, 5], { divergence: 'forward' }, [1, 0]));
  // ∂KL/∂z = p_S − p_T = (½ − ¼, ½ − ¾) on row 0; nothing on row 1.
  assert.deepEqual(Array.from(x.grad!.data).map((v) => Math.round(v * 1e12) / 1e12), [0.25, -0.25, 0, 0]);
});

test('α mixes the SFT cross-entropy with the divergence; IGNORE_INDEX targets mask both', () => {
  const student = T.fromArray([0, 0, 3, 1], [2, 2], 'f64');
  // Row 0: target 1, CE = ln 2; row 1 ignored (a prompt token).
  const targets = [1, T.IGNORE_INDEX];
  const teacher = [0, 2 * LN3, 9, 9];
  const r = distillLoss(student, teacher, targets, { alpha: 0.5, divergence: 'forward', temperature: 2 });
  close(r.ce, Math.log(2), 1e-12);
  close(r.kd, 4 * FORWARD, 1e-12);
  close(r.loss.item(), 0.5 * Math.log(2) + 0.5 * 4 * FORWARD, 1e-12);
  assert.equal(r.tokens, 1);
  close(distillLoss(student, teacher, targets, { alpha: 1, divergence: 'forward' }).loss.item(), Math.log(2), 1e-12);
  const pure = distillLoss(student, teacher, targets, { alpha: 0, divergence: 'forward', temperature: 2 });
  close(pure.loss.item(), 4 * FORWARD, 1e-12);
  close(pure.ce, Math.log(2), 1e-12); // still reported
  assert.throws(() => distillLoss(student, teacher, targets, { alpha: 2, divergence: 'forward' }), /alpha must be in \[0, 1\]/);
});

for (const [name, o] of [
  ['forward KL', { divergence: 'forward' }],
  ['reverse KL', { divergence: 'reverse' }],
  ['JSD β = 0.3', { divergence: 'jsd', beta: 0.3 }],
  ['JSD β = 0.9, τ = 1.7', { divergence: 'jsd', beta: 0.9, temperature: 1.7 }],
  ['forward KL, τ = 2', { divergence: 'forward', temperature: 2 }],
  ['reverse KL, τ = 0.5', { divergence: 'reverse', temperature: 0.5 }],
] as const) {
  test(`gradient against finite differences: ${name}`, () => {
    const student = randTensor([5, 7], 1, 'f64', 2);
    const teacher = randTensor([5, 7], 2, 'f64', 2).toArray();
    const mask = [1, 0, 1, 1, 0];
    const r = T.gradcheck(() => kdLoss(student, teacher, o, mask), [student]);
    assert.ok(r.maxError < 1e-7, `max error ${r.maxError} at ${r.worst.index}: analytic ${r.worst.analytic}, numeric ${r.worst.numeric}`);
    const targets = [3, T.IGNORE_INDEX, 0, 6, T.IGNORE_INDEX];
    const mixed = T.gradcheck(() => distillLoss(student, teacher, targets, { ...o, alpha: 0.3 }).loss, [student]);
    assert.ok(mixed.maxError < 1e-7, `α-mixed: max error ${mixed.maxError}`);
  });
}
