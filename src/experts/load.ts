// Expert load: how many rows each routed expert of each MoE layer received, in total and as a series
// over the model's forward passes ("steps": an engine step while serving, a micro-batch while
// training). The recorder watches a model's routers; the file is what `experts stats`, `experts plan`
// and the SGLang export read. A training run's metrics.jsonl (per-interval expert shares) reads as one too.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isMoeLayer, parseModelConfig, type ModelConfig } from '../model/config.js';
import type { CausalLM } from '../model/model.js';
import type { MoE } from '../model/moe.js';
import { writeFileAtomic } from '../util/atomic.js';
import { isRecord, JsonFields } from '../util/json-fields.js';

export const LOAD_FORMAT = 'nanoseek-expert-load';

export interface ExpertLoad {
  format: typeof LOAD_FORMAT;
  version: 1;
  /** What was recorded (a checkpoint path or name). */
  model: string;
  /** Where: 'serve', 'eval', 'generate', 'train', 'metrics.jsonl', 'synthetic'… */
  source: string;
  /** Decoder layers of the model (SGLang's expert maps have a row for each). */
  num_hidden_layers: number;
  /** The decoder-layer index of each recorded MoE layer (an MTP block is num_hidden_layers). */
  layers: number[];
  experts: number;
  /** Experts per token (num_experts_per_tok). */
  topk: number;
  /** Expert groups of the router (n_group, 1 without). */
  groups: number;
  /** Tokens that went through the first recorded layer. */
  tokens: number;
  /** Forward passes recorded. */
  steps: number;
  /** [layer][expert]: rows routed over the whole recording. */
  load: number[][];
  /** [entry][layer][expert]: each entry sums `every` consecutive steps (the last may hold fewer). */
  series: { every: number; counts: number[][][] };
}

/** The series never grows past this many entries: when full, neighbours merge and `every` doubles. */
export const MAX_SERIES = 512;

/** An empty recording for a model. */
export function emptyLoad(model: CausalLM, label: string, source: string): ExpertLoad {
  const cfg = model.config;
  if (cfg.model_type !== 'deepseek_v3') throw new Error(`${label}: expert load needs a DeepSeek-V3 (MoE) model, this one is ${cfg.model_type}`);
  const layers = model.moeLayerIds();
  if (layers.length === 0) throw new Error(`${label}: the model has no MoE layers`);
  return {
    format: LOAD_FORMAT, version: 1, model: label, source,
    num_hidden_layers: cfg.num_hidden_layers, layers, experts: cfg.n_routed_experts, topk: cfg.num_experts_per_tok, groups: cfg.n_group ?? 1,
    tokens: 0, steps: 0, load: layers.map(() => new Array<number>(cfg.n_routed_experts).fill(0)), series: { every: 1, counts: [] },
  };
}

/** Appends one step's counts [layer][expert] to a recording. */
export function addStep(rec: ExpertLoad, counts: readonly (readonly number[])[], tokens: number): void {
  counts.forEach((row, l) => row.forEach((v, e) => (rec.load[l][e] += v)));
  const s = rec.series;
  if (rec.steps % s.every === 0) {
    if (s.counts.length === MAX_SERIES) {
      const merged: number[][][] = [];
      for (let i = 0; i < s.counts.length; i += 2) merged.push(s.counts[i].map((row, l) => row.map((v, e) => v + (s.counts[i + 1]?.[l][e] ?? 0))));
      s.counts = merged;
      s.every *= 2;
    }
  }
  if (rec.steps % s.every === 0) s.counts.push(counts.map((row) => [...row]));
  else counts.forEach((row, l) => row.forEach((v, e) => (s.counts[s.counts.length - 1][l][e] += v)));
  rec.steps++;
  rec.tokens += tokens;
}

/**
 * Watches a model's routers and adds up what they choose. A step ends when a layer routes a second
 * time (the next forward pass has begun), or at snapshot().
 */
export class ExpertLoadRecorder {
  readonly record: ExpertLoad;
  private readonly index = new Map<MoE, number>();
  private current: number[][];
  private seen: boolean[];
  private tokens = 0;

  /** `resume`: a recording of the same model shape to continue (e.g. the file from an earlier run). */
  constructor(private readonly model: CausalLM, opts: { label: string; source: string; resume?: ExpertLoad }) {
    const fresh = emptyLoad(model, opts.label, opts.source);
    if (opts.resume !== undefined) checkSameShape(opts.resume, fresh, opts.label);
    this.record = opts.resume ?? fresh;
    model.moeLayers().forEach((m, i) => this.index.set(m, i));
    this.current = this.record.load.map((row) => row.map(() => 0));
    this.seen = this.record.layers.map(() => false);
  }

  /** Starts watching (replacing any other observer of these layers). */
  attach(): this {
    for (const m of this.model.moeLayers()) m.observer = (moe, counts, tokens) => this.observe(moe, counts, tokens);
    return this;
  }

  detach(): void {
    for (const m of this.model.moeLayers()) m.observer = null;
  }

  private observe(moe: MoE, counts: Int32Array, tokens: number): void {
    const l = this.index.get(moe);
    if (l === undefined) return;
    if (this.seen[l]) this.endStep();
    this.seen[l] = true;
    if (l === 0) this.tokens = tokens;
    for (let e = 0; e < counts.length; e++) this.current[l][e] += counts[e];
  }

  private endStep(): void {
    if (!this.seen.some((s) => s)) return;
    addStep(this.record, this.current, this.tokens);
    this.current = this.current.map((row) => row.map(() => 0));
    this.seen.fill(false);
    this.tokens = 0;
  }

  /** The recording so far (the step in progress included). Call between forward passes. */
  snapshot(): ExpertLoad {
    this.endStep();
    return this.record;
  }

  /** Writes the recording so far, atomically. */
  async save(path: string): Promise<void> {
    await writeLoad(path, this.snapshot());
  }
}

function checkSameShape(a: ExpertLoad, b: ExpertLoad, label: string): void {
  for (const k of ['num_hidden_layers', 'experts', 'topk', 'groups'] as const) {
    if (a[k] !== b[k]) throw new Error(`${label}: the recording to continue has ${k} ${a[k]}, the model ${b[k]}`);
  }
  if (a.layers.join() !== b.layers.join()) throw new Error(`${label}: the recording to continue has MoE layers [${a.layers}], the model [${b.layers}]`);
}

/** JSON with every array of numbers on one line (a long series stays readable and small). */
export function compactJson(value: unknown): string {
  return `${JSON.stringify(value, (_k, v: unknown) => (Array.isArray(v) && v.every((x) => typeof x === 'number') ? `\u0000${JSON.stringify(v)}` : v), 1)
    .replace(/"\\u0000(\[[^"]*\])"/g, '$1')}\n`;
}

export async function writeLoad(path: string, rec: ExpertLoad): Promise<void> {
  await writeFileAtomic(path, compactJson(rec));
}

/** `v` (field `field` of f) as rows × cols non-negative numbers. */
function matrix(f: JsonFields, field: string, v: unknown, rows: number, cols: number): number[][] {
  if (!Array.isArray(v) || v.length !== rows) f.fail(field, `must be ${rows} rows of ${cols} numbers`, Array.isArray(v) ? `${v.length} rows` : v);
  v.forEach((row: unknown, i) => {
    if (!Array.isArray(row) || row.length !== cols) f.fail(`${field}[${i}]`, `must be ${cols} numbers`, row);
    row.forEach((x: unknown, j) => {
      if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) f.fail(`${field}[${i}][${j}]`, 'must be a finite number >= 0', x);
    });
  });
  return v as number[][];
}

/** Validates a parsed recording; errors name the file and the field. */
export function parseLoad(json: unknown, source: string): ExpertLoad {
  if (!isRecord(json)) throw new Error(`${source}: an expert-load file must be a JSON object`);
  const f = new JsonFields(json, source);
  if (f.raw('format') !== LOAD_FORMAT) f.fail('format', `must be "${LOAD_FORMAT}"`);
  f.int('version', 1, undefined, 1);
  const numHidden = f.int('num_hidden_layers', 1);
  const layersV = f.raw('layers');
  if (!Array.isArray(layersV) || layersV.length === 0 || !layersV.every((x) => Number.isInteger(x) && x >= 0 && x <= numHidden)) {
    f.fail('layers', `must be a non-empty list of layer indices in [0, ${numHidden}]`);
  }
  const layers = layersV as number[];
  const experts = f.int('experts', 1);
  const topk = f.int('topk', 1, undefined, experts);
  const groups = f.int('groups', 1, undefined, experts);
  if (experts % groups !== 0) f.fail('groups', `must divide experts (${experts})`);
  const load = matrix(f, 'load', f.raw('load'), layers.length, experts);
  const sf = f.object('series');
  const every = sf.int('every', 1);
  const countsV = sf.raw('counts');
  if (!Array.isArray(countsV)) sf.fail('counts', 'must be a list of [layer][expert] entries');
  const counts = (countsV as unknown[]).map((v, i) => matrix(sf, `counts[${i}]`, v, layers.length, experts));
  sf.done();
  const rec: ExpertLoad = {
    format: LOAD_FORMAT, version: 1, model: f.str('model'), source: f.str('source'), num_hidden_layers: numHidden, layers, experts, topk, groups,
    tokens: f.num('tokens', 0), steps: f.int('steps', 0), load, series: { every, counts },
  };
  f.done();
  if (Math.ceil(rec.steps / every) !== counts.length) f.fail('series', `holds ${counts.length} entries of ${every} steps, but steps is ${rec.steps}`, rec.steps);
  return rec;
}

/** A recording file, or a training run's metrics.jsonl (with the run's checkpoint config beside it). */
export async function readLoad(path: string): Promise<ExpertLoad> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${path}: cannot read (${err.code ?? err.message})`);
  });
  if (path.endsWith('.jsonl')) return loadFromMetrics(text, path, await runConfig(path));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not JSON (${(err as Error).message})`);
  }
  return parseLoad(json, path);
}

/** config.json of the run whose metrics.jsonl this is: its latest checkpoint's, else one beside the log. */
async function runConfig(metricsPath: string): Promise<ModelConfig> {
  const dir = dirname(metricsPath);
  for (const p of [join(dir, 'latest', 'config.json'), join(dir, 'config.json')]) {
    const text = await readFile(p, 'utf8').catch(() => null);
    if (text !== null) return parseModelConfig(JSON.parse(text), p);
  }
  throw new Error(`${metricsPath}: no latest/config.json beside it to tell which layers its expert loads belong to`);
}

/**
 * A training log as a recording: each logged interval's expert shares (which sum to 1 per layer)
 * times the routed rows of the interval become one series entry.
 */
export function loadFromMetrics(text: string, source: string, cfg: ModelConfig): ExpertLoad {
  if (cfg.model_type !== 'deepseek_v3') throw new Error(`${source}: the run's model is ${cfg.model_type}, not a MoE model`);
  const layers: number[] = [];
  for (let i = 0; i <= cfg.num_hidden_layers; i++) {
    if (i < cfg.num_hidden_layers ? isMoeLayer(cfg, i) : (cfg.num_nextn_predict_layers ?? 0) > 0) layers.push(i);
  }
  const rec: ExpertLoad = {
    format: LOAD_FORMAT, version: 1, model: source, source: 'train', num_hidden_layers: cfg.num_hidden_layers, layers, experts: cfg.n_routed_experts,
    topk: cfg.num_experts_per_tok, groups: cfg.n_group ?? 1, tokens: 0, steps: 0, load: layers.map(() => new Array<number>(cfg.n_routed_experts).fill(0)),
    series: { every: 1, counts: [] },
  };
  let lastTokens = 0;
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const r = JSON.parse(line) as { tokens?: number; expert_load?: number[][] };
    if (!Array.isArray(r.expert_load)) return;
    if (r.expert_load.length !== layers.length) throw new Error(`${source}:${i + 1}: expert_load has ${r.expert_load.length} layers, the model ${layers.length} MoE layers`);
    const tokens = typeof r.tokens === 'number' ? r.tokens - lastTokens : 1;
    lastTokens = typeof r.tokens === 'number' ? r.tokens : lastTokens;
    addStep(rec, r.expert_load.map((shares) => shares.map((s) => s * tokens * cfg.num_experts_per_tok)), tokens);
  });
  if (rec.steps === 0) throw new Error(`${source}: no logged interval has expert_load`);
  return rec;
}
