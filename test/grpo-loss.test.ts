// GRPO advantages and loss against hand-computed values, every aggregation mode, β = 0, clip-higher, μ > 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { grpoLoss, groupAdvantages, informativeGroups, type GrpoLossInputs } from '../src/train/grpo/loss.js';

const close = (a: number, b: number, tol = 1e-9): void => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test('G = 1 is refused with a message that says why', () => {
  assert.throws(() => groupAdvantages([1, 0], 1), /at least 2 samples per prompt \(group size G = 1\)/);
});

test('group advantages: centred, divided by the sample std; all-equal groups get zero', () => {
  const a = groupAdvantages([1, 0, 0.5, 0.5, 1, 1, 0, 0.25], 4);
  const mean = 0.5, std = Math.sqrt((0.25 + 0.25 + 0 + 0) / 3);
  [1, 0, 0.5, 0.5].forEach((r, i) => close(a[i], (r - mean) / (std + 1e-4)));
  const m2 = 2.25 / 4, s2 = Math.sqrt(((1 - m2) ** 2 * 2 + m2 ** 2 + (0.25 - m2) ** 2) / 3);
  close(a[4], (1 - m2) / (s2 + 1e-4));
  const equal = groupAdvantages([0.1, 0.1, 0.1, 0.7, 0.2, 0.2], 3);
  assert.deepEqual(Array.from(equal.subarray(0, 3)), [0, 0, 0]);
  const noStd = groupAdvantages([1, 0], 2, { scaleByStd: false });
  assert.deepEqual(Array.from(noStd), [0.5, -0.5]);
  assert.deepEqual(informativeGroups([0.1, 0.1, 0.1, 0.7, 0.2, 0.2], 3), [1]);
  assert.throws(() => groupAdvantages([1, NaN], 2), /reward NaN at index 1/);
});

function run(over: Omit<Partial<GrpoLossInputs>, 'logp'> & { logp: number[] }): { loss: number; grad: number[]; stats: ReturnType<typeof grpoLoss>['stats'] } {
  const logp = T.fromArray(over.logp, [over.logp.length], 'f64');
  logp.requiresGrad = true;
  const inputs: GrpoLossInputs = {
    oldLogp: over.logp, refLogp: null, advantages: [1, 1, -1], lengths: [2, 1], epsLow: 0.2, beta: 0, aggregation: 'sequence', ...over, logp,
  };
  const { loss, stats } = grpoLoss(inputs);
  const value = loss.item();
  T.backward(loss);
  return { loss: value, grad: Array.from(logp.grad!.data), stats };
}

test('aggregation modes at ratio 1 (first of μ updates): sequence, token, constant', () => {
  const lp = [-1, -2, -0.5];
  // sequence: ½·(1+1)/2 + ½·(−1)/1 = 0; token: (1+1−1)/3; constant (L = 4): (1+1−1)/(2·4)
  let r = run({ logp: lp });
  close(r.loss, -0);
  r.grad.forEach((g, i) => close(g, -[0.25, 0.25, -0.5][i]));
  r = run({ logp: lp, aggregation: 'token' });
  close(r.loss, -1 / 3);
  r.grad.forEach((g, i) => close(g, -[1, 1, -1][i] / 3));
  r = run({ logp: lp, aggregation: 'constant', constantLength: 4 });
  close(r.loss, -1 / 8);
  assert.throws(() => run({ logp: lp, aggregation: 'constant' }), /needs a positive constantLength/);
  assert.equal(r.stats.clipFraction, 0);
  close(r.stats.meanRatio, 1);
});

test('clipping (μ > 1: the policy has moved since sampling), symmetric and clip-higher', () => {
  const old = [0, 0, 0];
  const lp = [Math.log(1.5), Math.log(1.25), Math.log(1.5)];
  // token 0: A=1, ρ=1.5 → clipped to 1.2, no gradient; token 1: A=1, ρ=1.25 → clipped to 1.2;
  // token 2: A=−1, ρ=1.5 → min(−1.5, −1.2) = −1.5, unclipped, gradient ρ·A.
  let r = run({ logp: lp, oldLogp: old, aggregation: 'token' });
  close(r.loss, -(1.2 + 1.2 - 1.5) / 3);
  close(r.grad[0], 0);
  close(r.grad[1], 0);
  close(r.grad[2], -(1.5 * -1) / 3);
  close(r.stats.clipFraction, 2 / 3);
  // ε_high = 0.28 lets token 1 (ρ = 1.25) through unclipped.
  r = run({ logp: lp, oldLogp: old, aggregation: 'token', epsHigh: 0.28 });
  close(r.loss, -(1.28 + 1.25 - 1.5) / 3); // token 0 now clips at 1 + ε_high
  close(r.grad[1], -1.25 / 3);
  close(r.stats.clipFraction, 1 / 3);
  // A negative advantage with a ratio below 1 − ε is clipped from below: min(0.7·−1, 0.8·−1) = −0.8.
  r = run({ logp: [Math.log(0.7)], oldLogp: [0], advantages: [-1], lengths: [1], aggregation: 'token' });
  close(r.loss, 0.8);
  close(r.grad[0], 0);
});

test('KL to the reference (k3) with β, and β = 0 needs no reference', () => {
  const lp = [-1, -2, -0.5], ref = [-0.5, -2, -1];
  const r = run({ logp: lp, refLogp: ref, beta: 0.1, aggregation: 'token', advantages: [0, 0, 0] });
  const kl = (d: number): number => Math.exp(d) - d - 1;
  const kls = [kl(0.5), kl(0), kl(-0.5)];
  close(r.loss, (0.1 * (kls[0] + kls[1] + kls[2])) / 3);
  close(r.stats.kl, (kls[0] + kls[1] + kls[2]) / 3);
  // d/dlogp of β·k3 = β·(1 − e^{ref − logp})
  [0.5, 0, -0.5].forEach((d, i) => close(r.grad[i], (0.1 * (1 - Math.exp(d))) / 3));
  assert.throws(() => run({ logp: lp, beta: 0.1 }), /needs reference log-probs/);
  assert.equal(run({ logp: lp, beta: 0 }).stats.kl, 0);
});

test('GRPO loss gradient agrees with finite differences away from the clip kinks', () => {
  const logp = T.fromArray([-1.1, -0.3, -2.2, -0.7, -1.6], [5], 'f64');
  const old = [-1.0, -0.35, -2.0, -0.9, -1.5];
  const ref = [-1.2, -0.2, -2.1, -0.8, -1.4];
  for (const aggregation of ['sequence', 'token', 'constant'] as const) {
    const r = T.gradcheck(() => grpoLoss({ logp, oldLogp: old, refLogp: ref, advantages: [0.7, 0.7, -1.2, -1.2, -1.2], lengths: [2, 3], epsLow: 0.2, epsHigh: 0.28, beta: 0.05, aggregation, constantLength: 6 }).loss, [logp]);
    assert.ok(r.maxError < 1e-7, `${aggregation}: ${r.maxError}`);
  }
});
