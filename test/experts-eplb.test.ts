// DeepSeek's EPLB as we implement it: the worked example of its README reproduced exactly, the
// invariants every plan keeps, the global policy, and refusals that name the option at fault.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { balancedPacking, gpuLoads, maxOverMean, rebalanceExperts, replicateExperts } from '../src/experts/index.js';

// deepseek-ai/EPLB README: 2 layers × 12 experts, 4 groups, 2 nodes × 4 GPUs, 16 replicas.
const WEIGHT = [
  [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
  [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27],
];
const README_PHY2LOG = [
  [5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
  [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1],
];

/** Every slot's expert appears in log2phy at its replica number, counts agree, all experts placed. */
function checkConsistent(plan: ReturnType<typeof rebalanceExperts>, experts: number, replicas: number): void {
  for (let l = 0; l < plan.phy2log.length; l++) {
    assert.equal(plan.phy2log[l].length, replicas);
    const count = new Array<number>(experts).fill(0);
    for (const e of plan.phy2log[l]) count[e]++;
    assert.deepEqual(plan.logcnt[l], count);
    assert.ok(count.every((c) => c >= 1), 'every expert has a slot');
    plan.log2phy[l].forEach((slots, e) => {
      const real = slots.filter((s) => s >= 0);
      assert.equal(real.length, count[e]);
      for (const s of real) assert.equal(plan.phy2log[l][s], e);
      assert.ok(slots.slice(real.length).every((s) => s === -1), 'padding is -1 after the real slots');
    });
  }
}

describe('EPLB', () => {
  it('reproduces the worked example of DeepSeek\'s README exactly (hierarchical policy)', () => {
    const plan = rebalanceExperts(WEIGHT, { replicas: 16, groups: 4, nodes: 2, gpus: 8 });
    assert.equal(plan.policy, 'hierarchical');
    assert.deepEqual(plan.phy2log, README_PHY2LOG);
    checkConsistent(plan, 12, 16);
    // Layer 0 by hand: node 0 gets groups 1 and 2 (loads 330 + 116), node 1 groups 0 and 3 (262 + 325).
    assert.deepEqual(new Set(plan.phy2log[0].slice(0, 8)), new Set([3, 4, 5, 6, 7, 8]));
    // The busiest GPU carries 1.21× the mean in layer 0.
    assert.equal(maxOverMean(gpuLoads(WEIGHT, plan.phy2log, 8)[0]).toFixed(2), '1.21');
  });

  it('global policy: replicates across the cluster and packs onto all GPUs; chosen when groups do not divide among nodes', () => {
    const plan = rebalanceExperts(WEIGHT, { replicas: 16, groups: 4, nodes: 2, gpus: 8, policy: 'global' });
    assert.equal(plan.policy, 'global');
    checkConsistent(plan, 12, 16);
    // The four spare slots go to the experts with the largest load per replica: layer 0's 183, 165, 132, 104.
    assert.deepEqual(plan.logcnt[0].flatMap((c, e) => (c > 1 ? [e] : [])), [1, 4, 5, 10]);
    const loads = gpuLoads(WEIGHT, plan.phy2log, 8);
    assert.ok(maxOverMean(loads[0]) < 1.08, `layer 0 global max/mean ${maxOverMean(loads[0])}`);
    assert.equal(rebalanceExperts([WEIGHT[0]], { replicas: 24, groups: 4, nodes: 3, gpus: 6 }).policy, 'global');
  });

  it('balanced packing fills every pack with the same count, heaviest first into the lightest', () => {
    const { pack, rank } = balancedPacking([10, 9, 8, 1, 1, 1], 2);
    assert.deepEqual(pack, [0, 1, 1, 0, 0, 1]);
    assert.deepEqual(rank, [0, 0, 1, 1, 2, 2]);
    const r = replicateExperts([100, 10, 30], 5);
    assert.deepEqual(r.count, [3, 1, 1]);
    assert.deepEqual(r.phy2log, [0, 1, 2, 0, 0]);
    assert.deepEqual(r.rank, [0, 0, 0, 1, 2]);
  });

  it('refuses shapes that cannot work, naming the option', () => {
    const bad: [object, RegExp][] = [
      [{ replicas: 10, groups: 4, nodes: 2, gpus: 8 }, /replicas \(10\) must be at least the number of experts \(12\)/],
      [{ replicas: 18, groups: 4, nodes: 2, gpus: 8 }, /replicas \(18\) must be a multiple of gpus \(8\)/],
      [{ replicas: 16, groups: 5, nodes: 2, gpus: 8 }, /groups \(5\) must divide the 12 experts/],
      [{ replicas: 16, groups: 4, nodes: 3, gpus: 8 }, /gpus \(8\) must be a multiple of nodes \(3\)/],
      [{ replicas: 24, groups: 4, nodes: 3, gpus: 6, policy: 'hierarchical' }, /hierarchical policy needs groups \(4\) to be a multiple of nodes \(3\)/],
      [{ replicas: 16, groups: 4, nodes: 2, gpus: 0 }, /gpus must be a positive integer/],
    ];
    for (const [o, re] of bad) assert.throws(() => rebalanceExperts(WEIGHT, o as never), re);
    assert.throws(() => rebalanceExperts([[1, 2, Number.NaN, 4]], { replicas: 4, groups: 1, nodes: 1, gpus: 2 }), /layer 0, expert 2 is NaN/);
    assert.throws(() => rebalanceExperts([[1, 2], [1, 2, 3]], { replicas: 4, groups: 1, nodes: 1, gpus: 2 }), /layer 1 has 3 experts, layer 0 has 2/);
  });
});
