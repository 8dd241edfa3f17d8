// Expert-load recordings and placements as files: the recorder counts what the routers chose, step by
// step; the file round-trips and bad ones are refused by field; training logs read as recordings; and
// the SGLang exports have exactly the keys and shapes SGLang's expert_location.py reads — a row per
// decoder layer, experts + redundant slots divisible by the EP size, every logical expert placed —
// and read back as placements for our own runtime.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addStep, emptyLoad, ExpertLoadRecorder, loadFromMetrics, MAX_SERIES, parseLoad, parsePlacement, planFromLoad, readLoad, readPlacement, sglangLogicalCount,
  sglangPlacement, trivialPlacement, writeLoad, writePlan,
} from '../src/experts/index.js';
import { presetConfig } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import * as T from '../src/tensor/index.js';

/** The nano preset, with 2 dense layers first so MoE layer indices and SGLang rows differ. */
function model(): CausalLM {
  const cfg = presetConfig('nano', { vocabSize: 64 });
  return new CausalLM({ ...cfg, first_k_dense_replace: 2 } as typeof cfg, { seed: 3 });
}

async function tempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'nanoseek-experts-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

describe('expert load', () => {
  it('the recorder counts every routing choice, one series entry per forward pass, and continues a saved recording', async () => {
    const m = model();
    assert.deepEqual(m.moeLayerIds(), [2, 3]);
    const rec = new ExpertLoadRecorder(m, { label: 'nano', source: 'test' }).attach();
    T.noGrad(() => T.tidy(() => m.forward([1, 2, 3, 4, 5, 6], 2, 3)));
    T.noGrad(() => T.tidy(() => m.forward([7, 8, 9, 10], 1, 4)));
    const r = rec.snapshot();
    assert.equal(r.steps, 2);
    assert.equal(r.tokens, 10);
    assert.deepEqual(r.layers, [2, 3]);
    assert.equal(r.series.counts.length, 2);
    for (let l = 0; l < 2; l++) {
      assert.equal(r.load[l].reduce((a, b) => a + b, 0), 10 * r.topk, 'every token counted topk times');
      assert.equal(r.series.counts[0][l].reduce((a, b) => a + b, 0), 6 * r.topk);
      assert.deepEqual(r.load[l], r.series.counts[0][l].map((v, e) => v + r.series.counts[1][l][e]));
    }
    assert.deepEqual(r.load[1], Array.from(m.moeLayers()[1].lastLoad).map((v, e) => v + r.series.counts[0][1][e]));
    rec.detach();

    const t = await tempDir();
    try {
      const path = join(t.dir, 'load.json');
      await writeLoad(path, r);
      const back = await readLoad(path);
      assert.deepEqual(back, r);
      const more = new ExpertLoadRecorder(m, { label: 'nano', source: 'test', resume: back }).attach();
      T.noGrad(() => T.tidy(() => m.forward([1, 2, 3], 1, 3)));
      assert.equal(more.snapshot().steps, 3);
      more.detach();
      const other = new CausalLM(presetConfig('nano', { vocabSize: 64 }), { seed: 3 });
      assert.throws(() => new ExpertLoadRecorder(other, { label: 'x', source: 't', resume: back }), /has MoE layers \[2,3\], the model \[1,2,3\]/);
    } finally {
      await t.remove();
    }
  });

  it('the series stays bounded: past MAX_SERIES entries neighbours merge and totals are kept', () => {
    const r = emptyLoad(model(), 'm', 't');
    const steps = 3 * MAX_SERIES + 5;
    for (let s = 0; s < steps; s++) addStep(r, r.load.map((row) => row.map((_, e) => e + s)), 1);
    assert.ok(r.series.counts.length <= MAX_SERIES);
    assert.equal(r.series.every, 4);
    assert.equal(r.series.counts.length, Math.ceil(steps / 4));
    const total = r.series.counts.reduce((a, entry) => a + entry[0][0], 0);
    assert.equal(total, r.load[0][0]);
    assert.equal(r.load[0][0], (steps * (steps - 1)) / 2);
    assert.deepEqual(parseLoad(JSON.parse(JSON.stringify(r)), 'x'), r);
  });

  it('refuses a bad recording with the file and field', () => {
    const r = emptyLoad(model(), 'm', 't');
    addStep(r, r.load.map((row) => row.map(() => 1)), 2);
    const bad = (patch: object) => JSON.parse(JSON.stringify({ ...r, ...patch })) as unknown;
    assert.throws(() => parseLoad(bad({ format: 'other' }), 'f.json'), /f\.json: format = "other": must be "nanoseek-expert-load"/);
    assert.throws(() => parseLoad(bad({ load: [[1, 2]] }), 'f.json'), /f\.json: load = "1 rows": must be 2 rows of 16 numbers/);
    assert.throws(() => parseLoad(bad({ load: r.load.map((row, i) => (i ? row.map(() => -1) : row)) }), 'f.json'), /f\.json: load\[1\]\[0\] = -1: must be a finite number >= 0/);
    assert.throws(() => parseLoad(bad({ steps: 5 }), 'f.json'), /series = 5: holds 1 entries of 1 steps, but steps is 5/);
    assert.throws(() => parseLoad(bad({ extra: 1 }), 'f.json'), /f\.json: extra = 1: unknown field/);
  });

  it('a training run\'s metrics.jsonl reads as a recording (shares × routed rows per interval)', () => {
    const cfg = presetConfig('nano', { vocabSize: 64 });
    const shares = (hot: number) => [1, 2, 3].map(() => Array.from({ length: 16 }, (_, e) => (e === hot ? 0.25 : 0.05)));
    const text = [{ step: 10, tokens: 100, expert_load: shares(0) }, { step: 20, tokens: 200, val_loss: 1 }, { step: 30, tokens: 300, expert_load: shares(3) }].map((x) => JSON.stringify(x)).join('\n');
    const r = loadFromMetrics(text, 'run/metrics.jsonl', cfg);
    assert.deepEqual(r.layers, [1, 2, 3]);
    assert.equal(r.steps, 2);
    assert.equal(r.tokens, 300);
    assert.ok(Math.abs(r.series.counts[0][0][0] - 0.25 * 100 * 4) < 1e-9);
    assert.ok(Math.abs(r.series.counts[1][0][3] - 0.25 * 200 * 4) < 1e-9);
    assert.throws(() => loadFromMetrics('{"step":1}', 'm.jsonl', cfg), /no logged interval has expert_load/);
  });
});

describe('SGLang export', () => {
  it('physical_to_logical_map: a row per decoder layer (dense ones trivial), experts + redundant slots, every expert placed; reads back as our placement', async () => {
    const m = model();
    const r = emptyLoad(m, 'nano', 'test');
    addStep(r, r.load.map((row, l) => row.map((_, e) => (e === l ? 100 : 5 + e))), 10);
    const plan = planFromLoad(r, { replicas: 20, groups: r.groups, nodes: 1, gpus: 4 }, 'load.json');
    const json = JSON.parse(JSON.stringify(sglangPlacement(plan))) as Record<string, unknown>;
    // What SGLang's init_by_mapping reads: the one key, shape (num_hidden_layers, experts + redundant).
    assert.deepEqual(Object.keys(json), ['physical_to_logical_map']);
    const map = json.physical_to_logical_map as number[][];
    assert.equal(map.length, m.config.num_hidden_layers);
    const epSize = 4, redundant = 4;
    for (const row of map) {
      assert.equal(row.length, 16 + redundant);
      assert.equal(row.length % epSize, 0);
      assert.deepEqual([...new Set(row)].sort((a, b) => a - b), Array.from({ length: 16 }, (_, e) => e), 'every logical expert has a physical slot');
      assert.ok(row.every((e) => Number.isInteger(e)));
    }
    assert.deepEqual(map[0], Array.from({ length: 20 }, (_, s) => s % 16), 'a dense layer gets the trivial row');
    assert.deepEqual(map[2], plan.phy2log[0]);
    assert.deepEqual(map[3], plan.phy2log[1]);
    // The hot expert of each MoE layer got replicas.
    assert.ok(plan.logcnt[0][0] > 1 && plan.logcnt[1][1] > 1);

    const shape = { num_hidden_layers: 4, layers: m.moeLayerIds(), experts: 16 };
    assert.deepEqual(parsePlacement(json, 'p.json', shape, 4).phy2log, plan.phy2log);
    assert.throws(() => parsePlacement(json, 'p.json', shape, 3), /20 expert slots per layer do not split evenly over 3 devices/);
    assert.throws(() => parsePlacement({ physical_to_logical_map: map.slice(1) }, 'p.json', shape, 4), /p\.json: physical_to_logical_map = "3 rows": must have a row for each of the model's 4 decoder layers/);
    const holey = map.map((row) => row.map((e) => (e === 7 ? 8 : e)));
    assert.throws(() => parsePlacement({ physical_to_logical_map: holey }, 'p.json', shape, 4), /physical_to_logical_map\[0\] = "20 slots": has no slot for expert 7/);
    assert.throws(() => parsePlacement({ logical_count: [] }, 'c.json', shape, 4), /holds logical_count \(load counts\), not a placement/);

    const t = await tempDir();
    try {
      await writePlan(join(t.dir, 'plan.json'), plan);
      assert.deepEqual((await readPlacement(join(t.dir, 'plan.json'), shape, 4)).phy2log, plan.phy2log);
      await assert.rejects(readPlacement(join(t.dir, 'plan.json'), shape, 2), /plan\.json: gpus = 4: the plan packs its slots for this many devices, not the 2 asked for/);
      await writeFile(join(t.dir, 'bad.json'), '{');
      await assert.rejects(readPlacement(join(t.dir, 'bad.json'), shape, 2), /bad\.json: not JSON/);
    } finally {
      await t.remove();
    }
  });

  it('logical_count: [step][decoder layer][expert] integer counts, dense layers zero', async () => {
    const m = model();
    const r = emptyLoad(m, 'nano', 'test');
    addStep(r, r.load.map((row) => row.map((_, e) => e)), 4);
    addStep(r, r.load.map((row) => row.map(() => 2)), 4);
    const json = JSON.parse(JSON.stringify(sglangLogicalCount(r))) as Record<string, unknown>;
    assert.deepEqual(Object.keys(json), ['logical_count']);
    const c = json.logical_count as number[][][];
    assert.deepEqual([c.length, c[0].length, c[0][0].length], [2, 4, 16]);
    assert.deepEqual(c[0][0], new Array(16).fill(0));
    assert.deepEqual(c[0][2], Array.from({ length: 16 }, (_, e) => e));
    assert.deepEqual(c[1][3], new Array(16).fill(2));
    assert.ok(c.flat(2).every((v) => Number.isInteger(v)));
    assert.deepEqual(trivialPlacement(2, 16, 4, 20).phy2log[1], Array.from({ length: 20 }, (_, s) => s % 16));

  });
});
