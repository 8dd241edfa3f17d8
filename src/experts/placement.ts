// Where each MoE layer's experts live: physical slots numbered GPU-major (slot s on device
// floor(s / slotsPerDevice)), each holding one logical expert; an expert in several slots has
// replicas. A placement comes from EPLB (`experts plan`), from SGLang's --init-expert-location JSON
// (physical_to_logical_map), or is SGLang's trivial one (slot s holds expert s mod E).
//
// Files: our plan (format nanoseek-expert-placement: the plan, the cluster shape and the balance it
// predicts), and SGLang's two forms — {physical_to_logical_map: [layer][slot]} with a row for every
// decoder layer of the model (dense layers included, as SGLang's DeepSeek model counts them), and
// {logical_count: [step][layer][expert]}, raw counts from which SGLang runs EPLB itself.
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic.js';
import { isRecord, JsonFields } from '../util/json-fields.js';
import { rebalanceExperts, type EplbOptions, type Policy } from './eplb.js';
import { compactJson, type ExpertLoad } from './load.js';

export const PLAN_FORMAT = 'nanoseek-expert-placement';

/** The slots of every MoE layer, for `devices` devices. */
export interface Placement {
  devices: number;
  /** [MoE layer][slot] → logical expert, in the order of the model's MoE layers. */
  phy2log: number[][];
}

export interface PlanFile extends EplbOptions {
  format: typeof PLAN_FORMAT;
  version: 1;
  policy: Policy;
  /** The recording the plan was made from. */
  load: string;
  num_hidden_layers: number;
  layers: number[];
  experts: number;
  phy2log: number[][];
  log2phy: number[][][];
  logcnt: number[][];
  /** Per layer, max / mean load per GPU under the plan (replicas sharing their expert's load evenly), and under SGLang's trivial placement with as many slots. */
  balance: { trivial: number[]; planned: number[] };
}

/** SGLang's trivial placement: slot s holds expert s mod E. */
export function trivialPlacement(layers: number, experts: number, devices: number, slots = experts): Placement {
  if (!Number.isInteger(devices) || devices < 1) throw new Error(`expert parallelism: devices must be a positive integer, got ${devices}`);
  if (slots % devices !== 0) throw new Error(`expert parallelism: ${slots} expert slots do not split evenly over ${devices} devices`);
  return { devices, phy2log: Array.from({ length: layers }, () => Array.from({ length: slots }, (_, s) => s % experts)) };
}

/**
 * Each GPU's load when every expert's load is shared evenly by its replicas: [layer][gpu].
 */
export function gpuLoads(load: readonly (readonly number[])[], phy2log: readonly (readonly number[])[], gpus: number): number[][] {
  return phy2log.map((slots, l) => {
    const count = new Array<number>(load[l].length).fill(0);
    for (const e of slots) count[e]++;
    const per = slots.length / gpus;
    const out = new Array<number>(gpus).fill(0);
    slots.forEach((e, s) => (out[Math.floor(s / per)] += load[l][e] / count[e]));
    return out;
  });
}

/** max / mean of a row (1 when all are equal; 1 for an all-zero row). */
export function maxOverMean(row: readonly number[]): number {
  const total = row.reduce((a, b) => a + b, 0);
  return total > 0 ? Math.max(...row) / (total / row.length) : 1;
}

/** EPLB over a recording, with the balance it predicts against the trivial placement. */
export function planFromLoad(rec: ExpertLoad, o: EplbOptions, loadLabel: string): PlanFile {
  const plan = rebalanceExperts(rec.load, o);
  const trivial = trivialPlacement(rec.layers.length, rec.experts, o.gpus, o.replicas).phy2log;
  return {
    format: PLAN_FORMAT, version: 1, load: loadLabel, num_hidden_layers: rec.num_hidden_layers, layers: rec.layers, experts: rec.experts,
    replicas: o.replicas, groups: o.groups, nodes: o.nodes, gpus: o.gpus, policy: plan.policy,
    phy2log: plan.phy2log, log2phy: plan.log2phy, logcnt: plan.logcnt,
    balance: {
      trivial: gpuLoads(rec.load, trivial, o.gpus).map(maxOverMean),
      planned: gpuLoads(rec.load, plan.phy2log, o.gpus).map(maxOverMean),
    },
  };
}

export async function writePlan(path: string, plan: PlanFile): Promise<void> {
  await writeFileAtomic(path, compactJson(plan));
}

/** SGLang's --init-expert-location with an exact placement: a row per decoder layer (dense ones trivial). */
export function sglangPlacement(plan: Pick<PlanFile, 'num_hidden_layers' | 'layers' | 'experts' | 'phy2log'>): { physical_to_logical_map: number[][] } {
  const slots = plan.phy2log[0].length;
  const rows = Array.from({ length: plan.num_hidden_layers }, () => Array.from({ length: slots }, (_, s) => s % plan.experts));
  plan.layers.forEach((layer, l) => {
    if (layer < plan.num_hidden_layers) rows[layer] = [...plan.phy2log[l]]; // an MTP block is SGLang's draft model, not a row here
  });
  return { physical_to_logical_map: rows };
}

/** SGLang's --init-expert-location with load counts, [step][decoder layer][expert] (dense layers zero). */
export function sglangLogicalCount(rec: ExpertLoad): { logical_count: number[][][] } {
  const counts = rec.series.counts.length > 0 ? rec.series.counts : [rec.load];
  return {
    logical_count: counts.map((entry) => {
      const rows = Array.from({ length: rec.num_hidden_layers }, () => new Array<number>(rec.experts).fill(0));
      rec.layers.forEach((layer, l) => {
        if (layer < rec.num_hidden_layers) rows[layer] = entry[l].map((v) => Math.round(v));
      });
      return rows;
    }),
  };
}

/** The model shape a placement must fit. */
export interface PlacementShape {
  num_hidden_layers: number;
  /** Decoder-layer indices of the MoE layers, in order. */
  layers: readonly number[];
  experts: number;
}

function slotRows(f: JsonFields, field: string, shape: PlacementShape, rowsOf: (v: unknown[]) => unknown[]): number[][] {
  const v = f.raw(field);
  if (!Array.isArray(v)) f.fail(field, 'must be a list of rows of logical expert ids');
  const rows = rowsOf(v);
  let width = -1;
  return rows.map((row, i) => {
    if (!Array.isArray(row) || row.length === 0) f.fail(`${field}[${i}]`, 'must be a non-empty list of logical expert ids', row);
    if (width >= 0 && row.length !== width) f.fail(`${field}[${i}]`, `has ${row.length} slots, row 0 has ${width}`, row.length);
    width = row.length;
    const seen = new Uint8Array(shape.experts);
    row.forEach((e: unknown, s) => {
      if (!Number.isInteger(e) || (e as number) < 0 || (e as number) >= shape.experts) f.fail(`${field}[${i}][${s}]`, `must be an expert id in [0, ${shape.experts})`, e);
      seen[e as number] = 1;
    });
    const missing = seen.indexOf(0);
    if (missing >= 0) f.fail(`${field}[${i}]`, `has no slot for expert ${missing} (every expert needs at least one)`, `${row.length} slots`);
    return row as number[];
  });
}

/**
 * A placement file: our plan, or SGLang's JSON with physical_to_logical_map (rows for every decoder
 * layer; the MoE layers' rows are used). `devices` must divide the slots.
 */
export function parsePlacement(json: unknown, source: string, shape: PlacementShape, devices: number): Placement {
  if (!isRecord(json)) throw new Error(`${source}: a placement must be a JSON object`);
  const f = new JsonFields(json, source);
  let phy2log: number[][];
  if (json.format === PLAN_FORMAT) {
    phy2log = slotRows(f, 'phy2log', shape, (v) => v);
    const layers = f.raw('layers');
    if (!Array.isArray(layers) || layers.join() !== shape.layers.join()) f.fail('layers', `must be the model's MoE layers [${shape.layers.join(', ')}]`, layers);
    if (phy2log.length !== shape.layers.length) f.fail('phy2log', `must have a row per MoE layer (${shape.layers.length})`, `${phy2log.length} rows`);
    if (f.raw('gpus') !== devices) f.fail('gpus', `the plan packs its slots for this many devices, not the ${devices} asked for: plan again with --gpus ${devices}`);
  } else if (json.physical_to_logical_map !== undefined) {
    const all = f.raw('physical_to_logical_map');
    if (!Array.isArray(all) || all.length !== shape.num_hidden_layers) {
      f.fail('physical_to_logical_map', `must have a row for each of the model's ${shape.num_hidden_layers} decoder layers`, Array.isArray(all) ? `${all.length} rows` : all);
    }
    phy2log = slotRows(f, 'physical_to_logical_map', shape, (v) => v).filter((_, i) => shape.layers.includes(i));
  } else if (json.logical_count !== undefined) {
    throw new Error(`${source}: holds logical_count (load counts), not a placement: plan one with \`nanoseek experts plan --load ${source} ...\``);
  } else {
    throw new Error(`${source}: neither a nanoseek plan (format "${PLAN_FORMAT}") nor SGLang's physical_to_logical_map`);
  }
  const slots = phy2log[0].length;
  if (!Number.isInteger(devices) || devices < 1 || slots % devices !== 0) throw new Error(`${source}: its ${slots} expert slots per layer do not split evenly over ${devices} devices`);
  return { devices, phy2log };
}

export async function readPlacement(path: string, shape: PlacementShape, devices: number): Promise<Placement> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${path}: cannot read (${err.code ?? err.message})`);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not JSON (${(err as Error).message})`);
  }
  return parsePlacement(json, path, shape, devices);
}
