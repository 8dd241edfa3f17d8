// Pretraining and SFT: the loop around trainStep. Everything that decides the weights (config, data
// position, optimizer state, router biases) is in each checkpoint, and nothing else feeds the
// computation, so a run resumed from a checkpoint continues bit for bit as if it had never stopped.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../util/atomic.js';
import { countParameters, presetConfig } from '../model/config.js';
import { CausalLM } from '../model/model.js';
import { loadModel, loadModelTokenizer } from '../io/model-file.js';
import { METRICS_FILE, MetricsLog } from '../report/index.js';
import * as T from '../tensor/index.js';
import { loadTokenizer, r1ZeroChatTemplate, trainTokenizer, type Tokenizer } from '../tokenizer/index.js';
import type { ModelCard } from '../io/model-card.js';
import { taskPhrase } from '../tasks/index.js';
import { checkTrainConfig, parseTrainConfig, RESUMABLE_FIELDS, TRAIN_CONFIG_FILE, type SftFileData, type SftTaskData, type TrainConfig } from './config.js';
import {
  latestCheckpoint,
  loadOptimizerState,
  OPTIMIZER_FILE,
  pruneCheckpoints,
  readTrainerState,
  saveTrainingCheckpoint,
  type TrainerState,
} from './checkpoint-state.js';
import { openTrainData, tokenizerTexts } from './data.js';
import { expertStats, logInterval, type TrainRecord } from './metrics.js';
import { AdamW, cosineSchedule } from './optim.js';
import { countTargets, trainStep, type Batch, type StepStats } from './step.js';
import { Distiller, type DistillStats } from './distill/distiller.js';

export const TOKENIZER_DIR = 'tokenizer';

export interface StepInfo {
  step: number;
  total: number;
  lr: number;
  stats: StepStats;
  /** Positions (padding included) per second in this step, batching included. */
  tokensPerS: number;
}

export interface TrainOptions {
  /** The run directory: checkpoints, metrics.jsonl, train_config.json. */
  out: string;
  /** Continue from the newest checkpoint in `out` (a fresh start when there is none). */
  resume?: boolean;
  /** Aborting stops after the current step and saves a checkpoint (resumable, bit-exact). */
  signal?: AbortSignal;
  /** Human-readable lines: setup, logged steps, evaluations, saves. */
  log?: (line: string) => void;
  onStep?: (info: StepInfo) => void;
  /** Each record as it is appended to metrics.jsonl. */
  onRecord?: (record: TrainRecord) => void;
  /** Names the config in error messages. */
  source?: string;
}

export interface TrainResult {
  /** Steps done. */
  step: number;
  /** True when the signal stopped the run before `steps`. */
  stopped: boolean;
  /** The last checkpoint written. */
  checkpoint: string;
  valLoss: number | null;
  tokens: number;
  elapsedS: number;
  config: TrainConfig;
}

type State = TrainerState<TrainConfig, unknown>;

/** Mean cross-entropy per target token over fixed batches (no gradients, router state untouched). */
export function evaluate(model: CausalLM, batches: readonly Batch[]): number {
  let total = 0;
  let count = 0;
  for (const b of batches) {
    const n = countTargets(b);
    if (n === 0) continue;
    total += n * T.noGrad(() => T.tidy(() => model.loss(b.ids, b.targets, b.B, b.T).ce));
    count += n;
  }
  return count > 0 ? total / count : NaN;
}

/** The first field (dotted path) where two configs differ, ignoring `ignore`; null when equal. */
function firstDifference(a: unknown, b: unknown, path = '', ignore: readonly string[] = []): string | null {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return JSON.stringify(a) === JSON.stringify(b) ? null : path;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    if (path === '' && ignore.includes(k)) continue;
    const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path === '' ? k : `${path}.${k}`);
    if (d !== null) return d;
  }
  return null;
}

/**
 * The config a resumed run continues with: the saved one, with the given config's RESUMABLE_FIELDS
 * (steps, eval/save/log cadence). Any other difference is an error naming the field: it would make
 * the continuation a different run.
 */
export function resumeConfig(saved: TrainConfig, given: TrainConfig | undefined, where: string): TrainConfig {
  if (given === undefined) return saved;
  const diff = firstDifference(saved, given, '', RESUMABLE_FIELDS);
  if (diff !== null) {
    const pick = (c: unknown) => JSON.stringify(diff.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], c));
    throw new Error(`${where}: cannot resume with ${diff} = ${pick(given)}: the run was started with ${pick(saved)} (only ${RESUMABLE_FIELDS.join(', ')} may change)`);
  }
  const out: TrainConfig = { ...saved };
  for (const k of RESUMABLE_FIELDS) (out as unknown as Record<string, unknown>)[k] = given[k];
  return out;
}

/** The config stored in a run's newest checkpoint (null when it has none), for `--resume` without `--config`. */
export async function savedRunConfig(out: string): Promise<TrainConfig | null> {
  const latest = await latestCheckpoint(out);
  if (latest === null) return null;
  const state = await readTrainerState<unknown>(latest.dir);
  return parseTrainConfig(state.config, join(latest.dir, 'trainer_state.json'));
}

async function setupTokenizer(cfg: TrainConfig, out: string, log: (line: string) => void): Promise<Tokenizer> {
  const spec = cfg.tokenizer;
  if ('path' in spec) return loadTokenizer(spec.path);
  if ('from_init' in spec) return loadModelTokenizer((cfg.model as { init: string }).init);
  const t0 = performance.now();
  const texts = await tokenizerTexts(cfg.data, cfg.stage, spec.train.documents);
  const tokenizer = await trainTokenizer(texts, { vocabSize: spec.train.vocab_size, minFrequency: spec.train.min_frequency });
  await tokenizer.save(join(out, TOKENIZER_DIR));
  log(`trained a tokenizer on ${texts.length} documents: vocab ${tokenizer.vocabSize} (asked ${spec.train.vocab_size}), ${((performance.now() - t0) / 1000).toFixed(1)} s, saved to ${join(out, TOKENIZER_DIR)}`);
  return tokenizer;
}

async function setupModel(cfg: TrainConfig, tokenizer: Tokenizer): Promise<CausalLM> {
  const m = cfg.model;
  if ('init' in m) return (await loadModel(m.init, { weights: 'f32' })).model;
  const eos = tokenizer.special.eos ?? 1;
  const config = presetConfig(m.preset, { vocabSize: m.vocab_size ?? tokenizer.vocabSize, bosTokenId: tokenizer.special.bos ?? eos, eosTokenId: eos, mtp: m.mtp, maxPositionEmbeddings: m.context ?? undefined });
  return new CausalLM(config, { seed: cfg.seed });
}

function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n);
}

/**
 * What an SFT checkpoint says about itself: the prompt format it was fine-tuned in and its task, so
 * `eval` measures it as trained, without flags (pretraining checkpoints have neither). A model
 * fine-tuned on the R1-Zero prompt is also served with it (its chat template).
 */
function sftCard(cfg: TrainConfig, step: number, out: string): { card?: ModelCard; chatTemplate?: string } {
  if (cfg.stage === 'pretrain') return {};
  const data = cfg.data as SftTaskData | SftFileData;
  const tasks = data.source === 'tasks' ? data.tasks : (cfg.distill?.tasks ?? []);
  const from = 'init' in cfg.model ? ` from ${cfg.model.init}` : '';
  const d = cfg.distill;
  const how = d === null
    ? `Fine-tuned (SFT, ${data.format} format)${from}`
    : `Distilled from ${d.teacher}${from} (${d.divergence}${d.divergence === 'jsd' ? ` β ${d.beta}` : ''} KD, τ ${d.temperature}, α ${d.alpha}, λ ${d.lambda}; ${data.format} format)`;
  return {
    card: {
      description: `${how} on ${tasks.length > 0 ? taskPhrase(tasks) : (data as SftFileData).path}: step ${step} of ${cfg.steps} of the run in ${out}.`,
      examples: [],
      prompt: { template: data.format, open_think: false },
      task: tasks.length > 0 ? { ...tasks[0] } : null,
      source: `nanoseek train ${cfg.stage} --out ${out}`,
    },
    chatTemplate: data.format === 'r1-zero' ? r1ZeroChatTemplate(false) : undefined,
  };
}

/** Interval sums between two metrics lines. */
class Interval {
  steps = 0;
  loss = 0;
  ce = 0;
  mtp = 0;
  balance = 0;
  kd = 0;
  onPolicy = 0;
  gradNorm = 0;
  positions = 0;
  seconds = 0;
  hasMtp = false;
  hasBalance = false;
  load: number[][] = [];

  add(s: StepStats | DistillStats, positions: number, seconds: number): void {
    this.steps++;
    this.loss += s.loss;
    this.ce += s.ce;
    if ('kd' in s) {
      this.kd += s.kd;
      if (s.onPolicy) this.onPolicy++;
    }
    if (s.mtpCe !== null) {
      this.hasMtp = true;
      this.mtp += s.mtpCe;
    }
    if (s.balance !== null) {
      this.hasBalance = true;
      this.balance += s.balance;
    }
    this.gradNorm += s.gradNorm;
    this.positions += positions;
    this.seconds += seconds;
    s.expertLoad.forEach((layer, i) => {
      this.load[i] ??= layer.map(() => 0);
      layer.forEach((v, e) => (this.load[i][e] += v));
    });
  }
}

/**
 * Trains a model as `config` says, writing checkpoints and metrics under `opts.out`. Validates the
 * config (and what it refers to on disk) before doing anything else.
 */
export async function train(config: TrainConfig, opts: TrainOptions): Promise<TrainResult> {
  const log = opts.log ?? (() => {});
  const out = opts.out;
  const source = opts.source ?? 'train config';
  const latest = await latestCheckpoint(out);
  if (latest !== null && !opts.resume) {
    throw new Error(`${out}: already holds a run (checkpoint-${latest.step}); pass --resume to continue it, or choose another --out`);
  }
  let state: State | null = null;
  let cfg = config;
  if (latest !== null) {
    state = await readTrainerState<TrainConfig, unknown>(latest.dir);
    const saved = parseTrainConfig(state.config, join(latest.dir, 'trainer_state.json'));
    if (saved.stage !== config.stage) throw new Error(`${out}: the run is ${saved.stage}, not ${config.stage}`);
    cfg = resumeConfig(saved, config, source);
    if (state.step > cfg.steps) throw new Error(`${source}: steps = ${cfg.steps} is below the ${state.step} steps the run has already done`);
  } else {
    await checkTrainConfig(cfg, source);
  }

  await mkdir(out, { recursive: true });
  await writeJsonAtomic(join(out, TRAIN_CONFIG_FILE), cfg);
  let tokenizer: Tokenizer;
  let model: CausalLM;
  if (latest !== null) {
    tokenizer = await loadTokenizer(latest.dir);
    model = (await loadModel(latest.dir, { weights: 'f32' })).model;
    log(`resuming ${out} from checkpoint-${latest.step}`);
  } else {
    tokenizer = await setupTokenizer(cfg, out, log);
    model = await setupModel(cfg, tokenizer);
  }
  if (tokenizer.vocabSize > model.config.vocab_size) {
    throw new Error(`${source}: tokenizer: its vocabulary (${tokenizer.vocabSize}) is larger than the model's (${model.config.vocab_size})`);
  }
  const opt = new AdamW(model.trainableParams(), { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: cfg.weight_decay, gradClip: cfg.grad_clip });
  if (latest !== null) await loadOptimizerState(join(latest.dir, OPTIMIZER_FILE), model, opt);
  const data = await openTrainData(cfg, tokenizer, state?.data);
  const distill = cfg.distill === null ? null : await Distiller.open(cfg.distill, model, tokenizer, (cfg.data as SftFileData).format, cfg.seed, state?.rng, source);
  const padId = tokenizer.special.pad ?? tokenizer.special.eos ?? 0;

  let step = state?.step ?? 0;
  let tokens = state?.tokens ?? 0;
  let valLoss = state?.val_loss ?? null;
  const elapsedBefore = state?.elapsed_s ?? 0;
  const metrics = await MetricsLog.open(join(out, METRICS_FILE), step);
  const p = countParameters(model.config);
  const perStep = cfg.batch_size * cfg.grad_accum * cfg.seq_len;
  const logEvery = logInterval(cfg.log_every, cfg.steps);
  log(
    `${cfg.stage}: ${model.config.architectures[0]} ${formatCount(p.total)} params (${formatCount(p.active)} active), vocab ${model.config.vocab_size}; ` +
      `${cfg.steps} steps of ${cfg.grad_accum}×${cfg.batch_size}×${cfg.seq_len} = ${perStep} tokens${cfg.stage === 'sft' ? ' at most' : ''}; ` +
      `${distill === null ? '' : `teacher ${cfg.distill!.teacher} (${countParameters(distill.teacher.config).active} active params), ${cfg.distill!.divergence} KD, α ${cfg.distill!.alpha}, τ ${cfg.distill!.temperature}, on-policy share λ ${cfg.distill!.lambda}; `}` +
      `validation ${data.val.length} batches; a log line every ${logEvery === 1 ? 'step' : `${logEvery} steps`}${logEvery < cfg.log_every ? ` (log_every ${cfg.log_every} would leave this run too few points to plot)` : ''}`,
  );

  const started = performance.now();
  const elapsed = () => elapsedBefore + (performance.now() - started) / 1000;
  let checkpoint = latest?.dir ?? '';
  let savedStep = latest?.step ?? -1;
  const save = async () => {
    const st: State = { format: 'nanoseek-trainer-state', version: 1, stage: cfg.stage, step, tokens, elapsed_s: elapsed(), val_loss: valLoss, config: cfg, data: data.batcher.state(), ...(distill === null ? {} : { rng: distill.rngState() }) };
    checkpoint = await saveTrainingCheckpoint(out, { model, optimizer: opt, tokenizer, state: st, ...sftCard(cfg, step, out) });
    await pruneCheckpoints(out, cfg.keep_checkpoints);
    savedStep = step;
    log(`saved ${checkpoint}`);
  };

  let interval = new Interval();
  let stopped = false;
  while (step < cfg.steps) {
    if (opts.signal?.aborted) {
      stopped = true;
      break;
    }
    const lr = cosineSchedule(step, cfg.lr, cfg.warmup, cfg.steps, cfg.min_lr_ratio);
    const t0 = performance.now();
    let stats: StepStats | DistillStats;
    let micro: Batch[];
    if (distill === null) {
      micro = Array.from({ length: cfg.grad_accum }, () => data.batcher.next());
      stats = trainStep(model, opt, micro, { lr, mtpWeight: cfg.mtp_weight, balanceAlpha: cfg.balance_alpha, biasUpdateSpeed: cfg.bias_update_speed });
    } else {
      const next = await distill.nextBatches(model, tokenizer, { accum: cfg.grad_accum, batch: cfg.batch_size, seqLen: cfg.seq_len, padId }, () => data.batcher.next());
      micro = next.micro;
      stats = distill.step(model, opt, micro, next.onPolicy, { lr, biasUpdateSpeed: cfg.bias_update_speed });
    }
    const seconds = (performance.now() - t0) / 1000;
    step++;
    tokens += stats.tokens;
    const positions = micro.reduce((s, b) => s + b.B * b.T, 0);
    interval.add(stats, positions, seconds);
    opts.onStep?.({ step, total: cfg.steps, lr, stats, tokensPerS: positions / seconds });

    const last = step === cfg.steps;
    const evalNow = cfg.eval_batches > 0 && (last || (cfg.eval_every > 0 && step % cfg.eval_every === 0));
    if (evalNow) valLoss = evaluate(model, data.val);
    if (evalNow || last || step % logEvery === 0) {
      const n = interval.steps;
      const record: TrainRecord = {
        step,
        loss: interval.loss / n,
        ce: interval.ce / n,
        mtp: interval.hasMtp ? interval.mtp / n : null,
        balance: interval.hasBalance ? interval.balance / n : null,
        ...(distill === null ? {} : { kd: interval.kd / n, on_policy: interval.onPolicy / n }),
        lr,
        grad_norm: interval.gradNorm / n,
        tokens,
        tokens_per_s: interval.positions / interval.seconds,
        elapsed_s: Math.round(elapsed() * 10) / 10,
      };
      if (interval.load.length > 0) {
        const { shares, imbalance } = expertStats(interval.load);
        record.expert_load = shares;
        record.expert_imbalance = imbalance;
      }
      if (evalNow) record.val_loss = valLoss!;
      await metrics.append(record);
      opts.onRecord?.(record);
      // Training losses are means over the steps since the last line; the validation loss is on held-out batches.
      const parts = [`step ${step}/${cfg.steps}`, `train loss ${record.loss.toFixed(4)} (mean of ${n} step${n === 1 ? '' : 's'})`, `ce ${record.ce.toFixed(4)}`];
      if (record.mtp !== null) parts.push(`mtp ce ${record.mtp.toFixed(4)}`);
      if (record.kd !== undefined) parts.push(`kd ${record.kd.toFixed(4)}`, `on-policy ${interval.onPolicy}/${n}`);
      parts.push(`lr ${lr.toExponential(2)}`, `gnorm ${record.grad_norm.toFixed(3)}`, `${Math.round(record.tokens_per_s)} tok/s`);
      if (record.expert_imbalance) parts.push(`imbalance ${Math.max(...record.expert_imbalance).toFixed(2)}`);
      if (evalNow) parts.push(`val loss ${valLoss!.toFixed(4)}`);
      log(parts.join('  '));
      interval = new Interval();
    }
    if (last || (cfg.save_every > 0 && step % cfg.save_every === 0)) await save();
    // Lets signal handlers (Ctrl-C → abort) run between steps.
    await new Promise((r) => setImmediate(r));
  }
  if (stopped && savedStep !== step) await save();
  const sft = data.sftStats;
  if (sft !== null && sft.truncated + sft.skipped > 0) {
    log(`SFT examples longer than seq_len ${cfg.seq_len} in this session: ${sft.truncated} truncated, ${sft.skipped} skipped (prompt alone too long)`);
  }
  return { step, stopped, checkpoint, valLoss, tokens, elapsedS: elapsed(), config: cfg };
}
