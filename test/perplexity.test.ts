// The quantization-quality measure: identical models are 0 KL apart and always agree; a model with
// perturbed weights is measurably apart; perplexity is exp of the mean next-token loss, which the
// model's own cross-entropy confirms.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measurePerplexity } from '../src/eval/perplexity.js';
import { presetConfig } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import * as T from '../src/tensor/index.js';

test('perplexity and KL against a reference', () => {
  const cfg = presetConfig('nano', { vocabSize: 64 });
  const a = new CausalLM(cfg, { seed: 1 });
  const b = new CausalLM(cfg, { seed: 1 });
  const tokens = Array.from({ length: 96 }, (_, i) => (i * 7 + 3) % 64);
  const same = measurePerplexity(a, tokens, { window: 32 }, b);
  assert.equal(same.positions, 3 * 15);
  assert.ok(Math.abs(same.meanKl!) < 1e-9);
  assert.equal(same.top1Agreement, 1);
  assert.equal(same.perplexity, same.referencePerplexity);

  // Perplexity is exp(mean cross-entropy) over the scored positions (the second half of each window).
  const targets = new Int32Array(32).fill(-100);
  let ce = 0;
  for (let w = 0; w < 3; w++) {
    const ids = tokens.slice(w * 32, (w + 1) * 32);
    for (let t = 16; t < 31; t++) targets[t] = ids[t + 1];
    ce += T.noGrad(() => a.loss(ids, targets, 1, 32).ce);
  }
  assert.ok(Math.abs(Math.log(same.perplexity) - ce / 3) < 1e-4);

  for (const p of b.params.trainable()) for (let i = 0; i < p.size; i++) p.data[i] *= 1.5;
  const apart = measurePerplexity(a, tokens, { window: 32 }, b);
  assert.ok(apart.meanKl! > 1e-4, `KL ${apart.meanKl}`);
  assert.ok(apart.p99Kl! >= apart.meanKl!);
  assert.throws(() => measurePerplexity(a, tokens.slice(0, 10), { window: 32 }), /fewer than one window of 32/);
});
