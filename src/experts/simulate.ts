// The paper-scale plan, simulated: DeepSeek-V3's 256 routed experts × 58 MoE layers on a cluster
// shape such as DeepSeek's prefill unit (EP32: 4 nodes × 8 GPUs, 32 redundant experts, 9 routed
// experts per GPU) or decode unit (EP144: 18 nodes × 8 GPUs, 32 redundant, 2 per GPU).
//
// Expert popularity comes from a recording of ours, resampled to the large shape (every target layer
// takes a recorded layer at random, every target expert the relative load — load ÷ the layer's mean —
// of a recorded expert of it drawn with replacement), or from a synthetic skew (Zipf or log-normal).
// Steps are then drawn at random: each of tokensPerGpu × gpus tokens picks topk experts, approximated
// as independent draws by popularity (counts Poisson around their expectation; group-limited routing
// is not modelled). EPLB plans on a history of such steps; the plan and SGLang's trivial placement
// (slot s holds expert s mod 256, the same number of slots) are then measured on fresh steps, each
// expert's rows split evenly among its replicas, as EPLB assumes.
//
// Measures, over the fresh steps and all layers: Σ busiest GPU's rows ÷ Σ mean GPU's rows (how much
// longer the expert phase takes than with perfect balance, if time ∝ rows), and a throughput bound:
// tokens/s per node if the routed and shared experts' GEMMs ran at the GPU's peak and nothing else
// took time — an upper bound to compare placements by, not a prediction.
import { Rng } from '../util/rng.js';
import { rebalanceExperts, type Policy } from './eplb.js';
import type { ExpertLoad } from './load.js';
import { sglangPlacement, trivialPlacement } from './placement.js';

export interface ModelShape {
  name: string;
  /** MoE layers. */
  layers: number;
  /** Decoder layers in all (SGLang's expert maps have a row for each; the first ones are dense). */
  numHiddenLayers: number;
  experts: number;
  topk: number;
  groups: number;
  hidden: number;
  /** Width of one routed expert (moe_intermediate_size); the shared expert is as wide times `shared`. */
  expertWidth: number;
  shared: number;
}

export const DEEPSEEK_V3: ModelShape = {
  name: 'DeepSeek-V3', layers: 58, numHiddenLayers: 61, experts: 256, topk: 8, groups: 8, hidden: 7168, expertWidth: 2048, shared: 1,
};

export interface ClusterShape {
  name: string;
  nodes: number;
  gpus: number;
  /** Redundant expert slots per layer (slots = experts + redundant). */
  redundant: number;
  /** Tokens each GPU brings to a step. */
  tokensPerGpu: number;
  /** Default: hierarchical when the groups divide among the nodes, else global. */
  policy?: Policy;
}

/** DeepSeek's units (open-infra week, day 6); tokens per GPU per step are our choice, not published. */
export const CLUSTERS: Record<'prefill' | 'decode', ClusterShape> = {
  prefill: { name: 'prefill EP32', nodes: 4, gpus: 32, redundant: 32, tokensPerGpu: 4096 },
  decode: { name: 'decode EP144', nodes: 18, gpus: 144, redundant: 32, tokensPerGpu: 128 },
};

/** H800 (as H100 SXM) dense FP8 peak, FLOP/s: DeepSeek's MoE GEMMs run in FP8. */
export const H800_FP8_PEAK = 1979e12;

export type Popularity = { kind: 'recorded'; load: ExpertLoad } | { kind: 'zipf'; s: number } | { kind: 'lognormal'; sigma: number };

/** Parses 'zipf:1.1' or 'lognormal:0.8'. */
export function parseSkew(text: string): Popularity {
  const m = /^(zipf|lognormal):([0-9.]+)$/.exec(text.trim());
  const v = m === null ? NaN : Number(m[2]);
  if (m === null || !Number.isFinite(v) || v < 0) throw new Error(`--synthetic: expected zipf:<exponent> or lognormal:<sigma> (e.g. zipf:1.0), got '${text}'`);
  return m[1] === 'zipf' ? { kind: 'zipf', s: v } : { kind: 'lognormal', sigma: v };
}

/** Each layer's relative expert loads (mean 1), [layer][expert], for the model shape. */
export function popularity(src: Popularity, model: ModelShape, rng: Rng): number[][] {
  const rows = Array.from({ length: model.layers }, () => {
    const w = new Array<number>(model.experts);
    if (src.kind === 'zipf') {
      const rank = rng.shuffle(Array.from({ length: model.experts }, (_, j) => j));
      for (let j = 0; j < model.experts; j++) w[j] = 1 / (rank[j] + 1) ** src.s;
    } else if (src.kind === 'lognormal') {
      for (let j = 0; j < model.experts; j++) w[j] = Math.exp(src.sigma * rng.normal());
    } else {
      const layer = rng.pick(src.load.load);
      const mean = layer.reduce((a, b) => a + b, 0) / layer.length;
      if (!(mean > 0)) throw new Error(`${src.load.model}: a recorded layer has no load at all; record more before simulating`);
      for (let j = 0; j < model.experts; j++) w[j] = rng.pick(layer) / mean;
    }
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    return w.map((x) => x / mean);
  });
  return rows;
}

/** A Poisson draw (normal approximation above 30). */
function poisson(rng: Rng, lambda: number): number {
  if (lambda <= 0) return 0;
  if (lambda > 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * rng.normal()));
  const limit = Math.exp(-lambda);
  let k = 0;
  for (let p = rng.next(); p > limit; p *= rng.next()) k++;
  return k;
}

/** One step's rows per expert [layer][expert]. */
function drawStep(pop: readonly (readonly number[])[], rowsPerLayer: number, rng: Rng): number[][] {
  return pop.map((w) => w.map((r) => poisson(rng, (rowsPerLayer * r) / w.length)));
}

/** Rows per GPU [layer][gpu] for a step, each expert's rows split evenly among its replicas. */
function perGpu(step: readonly (readonly number[])[], phy2log: readonly (readonly number[])[], count: readonly (readonly number[])[], gpus: number): number[][] {
  return phy2log.map((slots, l) => {
    const per = slots.length / gpus;
    const out = new Array<number>(gpus).fill(0);
    slots.forEach((e, s) => (out[Math.floor(s / per)] += step[l][e] / count[l][e]));
    return out;
  });
}

export interface PlacementFigures {
  /** Σ over steps and layers of the busiest GPU's rows ÷ Σ of the mean GPU's. */
  stepImbalance: number;
  /** The worst single (step, layer): max ÷ mean. */
  worst: number;
  /** Tokens/s per node if the expert GEMMs ran at peak and nothing else took time. */
  boundPerNode: number;
}

export interface SimResult {
  model: ModelShape;
  cluster: ClusterShape;
  policy: Policy;
  slots: number;
  slotsPerGpu: number;
  steps: number;
  historySteps: number;
  source: string;
  trivial: PlacementFigures;
  planned: PlacementFigures;
  /** The bound with every GPU at the mean (perfect balance). */
  idealBoundPerNode: number;
  /** The plan: [MoE layer][slot] → expert. */
  phy2log: number[][];
}

export interface SimOptions {
  model?: ModelShape;
  cluster: ClusterShape;
  popularity: Popularity;
  /** Fresh steps measured (default 32) and history steps planned on (default 32). */
  steps?: number;
  historySteps?: number;
  seed?: number;
  /** FLOP/s of one GPU (default H800 FP8). */
  peak?: number;
  gpusPerNode?: number;
}

export function simulate(o: SimOptions): SimResult {
  const model = o.model ?? DEEPSEEK_V3;
  const c = o.cluster;
  const steps = o.steps ?? 32;
  const historySteps = o.historySteps ?? 32;
  const peak = o.peak ?? H800_FP8_PEAK;
  const rng = new Rng(o.seed ?? 0);
  for (const [k, v] of [['steps', steps], ['history steps', historySteps], ['gpus', c.gpus], ['nodes', c.nodes], ['tokens per GPU', c.tokensPerGpu]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`simulate: ${k} must be a positive integer, got ${v}`);
  }
  const slots = model.experts + c.redundant;
  const pop = popularity(o.popularity, model, rng);
  const rowsPerLayer = c.tokensPerGpu * c.gpus * model.topk;

  const history = pop.map((w) => w.map(() => 0));
  for (let t = 0; t < historySteps; t++) drawStep(pop, rowsPerLayer, rng).forEach((row, l) => row.forEach((v, e) => (history[l][e] += v)));
  const plan = rebalanceExperts(history, { replicas: slots, groups: model.groups, nodes: c.nodes, gpus: c.gpus, policy: c.policy });
  const trivial = trivialPlacement(model.layers, model.experts, c.gpus, slots).phy2log;
  const countsOf = (p: number[][]): number[][] => p.map((row) => {
    const n = new Array<number>(model.experts).fill(0);
    for (const e of row) n[e]++;
    return n;
  });
  const placements = { trivial: { phy2log: trivial, count: countsOf(trivial) }, planned: { phy2log: plan.phy2log, count: plan.logcnt } };

  const flopsPerRow = 6 * model.hidden * model.expertWidth;
  const gpusPerNode = o.gpusPerNode ?? c.gpus / c.nodes;
  const acc = { trivial: { max: 0, mean: 0, worst: 0 }, planned: { max: 0, mean: 0, worst: 0 } };
  for (let t = 0; t < steps; t++) {
    const step = drawStep(pop, rowsPerLayer, rng);
    for (const key of ['trivial', 'planned'] as const) {
      const p = placements[key];
      for (const row of perGpu(step, p.phy2log, p.count, c.gpus)) {
        const max = Math.max(...row);
        const mean = row.reduce((a, b) => a + b, 0) / row.length;
        acc[key].max += max;
        acc[key].mean += mean;
        if (mean > 0) acc[key].worst = Math.max(acc[key].worst, max / mean);
      }
    }
  }
  // Per step and GPU: the routed rows of the busiest GPU in each layer, plus its own tokens through the shared expert.
  const bound = (rowsSum: number): number => {
    const seconds = ((rowsSum / steps + model.layers * c.tokensPerGpu * model.shared) * flopsPerRow) / peak;
    return (c.tokensPerGpu * gpusPerNode) / seconds;
  };
  const figures = (k: 'trivial' | 'planned'): PlacementFigures => ({
    stepImbalance: acc[k].mean > 0 ? acc[k].max / acc[k].mean : 1, worst: acc[k].worst, boundPerNode: bound(acc[k].max),
  });
  return {
    model, cluster: c, policy: plan.policy, slots, slotsPerGpu: slots / c.gpus, steps, historySteps,
    source: o.popularity.kind === 'recorded' ? `resampled from ${o.popularity.load.model} (${o.popularity.load.layers.length} layers × ${o.popularity.load.experts} experts)` : o.popularity.kind === 'zipf' ? `Zipf, exponent ${o.popularity.s}` : `log-normal, σ ${o.popularity.sigma}`,
    trivial: figures('trivial'), planned: figures('planned'), idealBoundPerNode: bound(acc.planned.mean), phy2log: plan.phy2log,
  };
}

/** A simulated plan as SGLang's --init-expert-location JSON: a row per decoder layer, the first (dense) ones trivial. */
export function simulatedSglangPlacement(r: SimResult): { physical_to_logical_map: number[][] } {
  const m = r.model;
  const layers = Array.from({ length: m.layers }, (_, l) => m.numHiddenLayers - m.layers + l);
  return sglangPlacement({ num_hidden_layers: m.numHiddenLayers, layers, experts: m.experts, phy2log: r.phy2log });
}
