// The DeepSeek-V3-scale simulator: DeepSeek's units (EP32 prefill with 9 slots per GPU, EP144 decode
// with 2), the plan beating SGLang's trivial placement by more the more skewed the experts are, a
// recording resampled to 256 × 58, and the throughput bound moving with the imbalance.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addStep, CLUSTERS, DEEPSEEK_V3, emptyLoad, parseSkew, popularity, simulate } from '../src/experts/index.js';
import { presetConfig } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import { Rng } from '../src/util/rng.js';

describe('simulator', () => {
  it('DeepSeek\'s units: EP32 prefill (hierarchical, 9 slots per GPU) and EP144 decode (global, 2 per GPU); skew costs the trivial placement, not the plan', () => {
    const pre = simulate({ cluster: CLUSTERS.prefill, popularity: parseSkew('zipf:0.6'), steps: 8, historySteps: 8 });
    assert.equal(pre.slots, 288);
    assert.equal(pre.slotsPerGpu, 9);
    assert.equal(pre.policy, 'hierarchical');
    assert.equal(pre.phy2log.length, DEEPSEEK_V3.layers);
    const dec = simulate({ cluster: CLUSTERS.decode, popularity: parseSkew('zipf:0.6'), steps: 8, historySteps: 8 });
    assert.equal(dec.slotsPerGpu, 2);
    assert.equal(dec.policy, 'global');
    for (const r of [pre, dec]) {
      assert.ok(r.planned.stepImbalance < r.trivial.stepImbalance / 1.5, `${r.cluster.name}: ${r.trivial.stepImbalance} → ${r.planned.stepImbalance}`);
      assert.ok(r.planned.stepImbalance >= 1 && r.planned.worst >= r.planned.stepImbalance);
      // The bound follows the busiest GPU: the plan raises it, perfect balance bounds it.
      assert.ok(r.trivial.boundPerNode < r.planned.boundPerNode && r.planned.boundPerNode <= r.idealBoundPerNode);
    }
    // Decode's small batches leave more noise than prefill's large ones, even after the plan.
    assert.ok(dec.planned.stepImbalance > pre.planned.stepImbalance);
    // Without skew there is nothing for the plan to fix beyond noise.
    const flat = simulate({ cluster: CLUSTERS.prefill, popularity: parseSkew('lognormal:0'), steps: 8, historySteps: 8 });
    assert.ok(flat.planned.stepImbalance < 1.03, `${flat.planned.stepImbalance}`);
    // The same seed gives the same figures.
    assert.deepEqual(simulate({ cluster: CLUSTERS.decode, popularity: parseSkew('zipf:0.6'), steps: 8, historySteps: 8 }).planned, dec.planned);
  });

  it('resamples a recording to 256 experts × 58 layers, keeping its relative loads', () => {
    const m = new CausalLM(presetConfig('nano', { vocabSize: 64 }), { seed: 1 });
    const r = emptyLoad(m, 'nano', 'test');
    // Expert 0 takes 8× its fair share everywhere, the rest share the remainder.
    addStep(r, r.load.map((row) => row.map((_, e) => (e === 0 ? 800 : 20))), 10);
    const pop = popularity({ kind: 'recorded', load: r }, DEEPSEEK_V3, new Rng(1));
    assert.equal(pop.length, 58);
    assert.equal(pop[0].length, 256);
    for (const row of pop) {
      // Each target expert is a recorded one: the hot expert or a cold one, 40× apart; the layer's mean is 1.
      const values = [...new Set(row.map((v) => v.toFixed(9)))].map(Number).sort((a, b) => a - b);
      assert.ok(values.length <= 2);
      if (values.length === 2) assert.ok(Math.abs(values[1] / values[0] - 40) < 1e-6);
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) / row.length - 1) < 1e-9);
    }
    assert.ok(pop.some((row) => row.some((v) => v > 1)), 'hot experts were drawn');
    const sim = simulate({ cluster: CLUSTERS.decode, popularity: { kind: 'recorded', load: r }, steps: 4, historySteps: 4 });
    assert.match(sim.source, /resampled from nano \(3 layers × 16 experts\)/);
    assert.ok(sim.planned.stepImbalance < sim.trivial.stepImbalance);
    assert.throws(() => parseSkew('pareto:1'), /--synthetic: expected zipf:<exponent> or lognormal:<sigma>/);
    assert.throws(() => simulate({ cluster: { ...CLUSTERS.decode, gpus: 0 }, popularity: parseSkew('zipf:1') }), /gpus must be a positive integer/);
  });
});
