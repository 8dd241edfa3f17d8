// GRPO (DeepSeekMath, DeepSeek-R1) with its published switches, on the checkpoint, metrics and
// resume machinery of the other trainers.
//
// One step: draw prompts_per_step problems, sample group_size completions of each with the current
// weights (their per-token log-probs become π_old), score them with the configured rewards,
// normalise rewards within each group, optionally drop groups whose rewards are all equal (and roll
// out more problems to refill them), then make μ policy updates on that batch. Each update
// recomputes log π_θ with gradients and minimises the clipped-ratio loss against the stored π_old
// (plus β·KL to the frozen initial model), then applies AdamW and the MoE router-bias rule. The
// problem stream and the rollout RNG are in every checkpoint, so a resumed run is bit-identical.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../util/atomic.js';
import type { CausalLM } from '../../model/model.js';
import { loadModel, loadModelTokenizer } from '../../io/model-file.js';
import { METRICS_FILE, MetricsLog, type MetricsRecord } from '../../report/index.js';
import { sampleCompletions, type Completion } from '../../infer/index.js';
import { grade, heldOutSet, loadProblems, renderPrompt, sampleProblem, taskPhrase, type Problem, type RenderedPrompt, type TaskSpec } from '../../tasks/index.js';
import * as T from '../../tensor/index.js';
import { loadTokenizer, r1ZeroChatTemplate, type Tokenizer } from '../../tokenizer/index.js';
import type { ModelCard } from '../../io/model-card.js';
import { Rng, type RngState } from '../../util/rng.js';
import { evaluateModel } from '../../eval/evaluate.js';
import { thinkTokens } from '../../eval/metrics.js';
import { latestCheckpoint, loadOptimizerState, OPTIMIZER_FILE, pruneCheckpoints, readTrainerState, saveTrainingCheckpoint, type TrainerState } from '../checkpoint-state.js';
import { ListStream, type Stream } from '../data.js';
import { logInterval } from '../metrics.js';
import { checkGrpoConfig, GRPO_RESUMABLE_FIELDS, parseGrpoConfig, type GrpoConfig } from './config.js';
import { groupAdvantages, grpoLoss, informativeGroups } from './loss.js';
import { makeScorer, type ScoredCompletion } from './reward.js';
import { microBatchLogProbs, planMicroBatches, sequenceLogProbs, type Sequence } from './logprobs.js';
import { AdamW, cosineSchedule } from '../optim.js';

export const GRPO_CONFIG_FILE = 'grpo_config.json';

/** Positions per teacher-forced micro-batch (B·T): bounds memory, and fixes the buffer sizes. */
export const MICRO_TOKENS = 3840;

/** Draws training problems from task specs, uniformly over the specs; position = the RNG state. */
export class TaskProblemStream implements Stream<Problem> {
  private readonly rng: Rng;

  constructor(private readonly tasks: readonly TaskSpec[], seed: number, state?: unknown) {
    this.rng = new Rng(seed);
    if (state !== undefined) this.rng.setState((state as { rng: RngState }).rng);
  }

  next(): Problem {
    const spec = this.tasks.length === 1 ? this.tasks[0] : this.tasks[this.rng.int(0, this.tasks.length - 1)];
    return sampleProblem(spec, this.rng);
  }

  state(): { rng: RngState } {
    return { rng: this.rng.getState() };
  }
}

async function openProblems(cfg: GrpoConfig, state?: unknown): Promise<Stream<Problem>> {
  if (cfg.data.source === 'tasks') return new TaskProblemStream(cfg.data.tasks, cfg.data.seed, state);
  return new ListStream(await loadProblems(cfg.data.path), cfg.data.seed, true, state);
}

/** One scored completion of a rollout. */
export interface ScoredRollout extends Completion {
  problem: Problem;
  prompt: RenderedPrompt;
  score: ScoredCompletion;
  accuracy: number;
  format: number;
  thinkTokens: number;
}

/** What one policy update measured. */
export interface UpdateStats {
  loss: number;
  kl: number;
  clipFraction: number;
  meanRatio: number;
  /** max |log π_θ − log π_old| over the tokens (0 up to rounding on the first update). */
  maxLogRatio: number;
  gradNorm: number;
}

export interface GrpoStepInfo {
  step: number;
  total: number;
  lr: number;
  /** The first rollout round (prompts_per_step groups): an unbiased view of the current policy. */
  rollouts: ScoredRollout[];
  /** Groups that went into the updates. */
  groupsUsed: number;
  rolloutRounds: number;
  updates: UpdateStats[];
  rolloutSeconds: number;
  updateSeconds: number;
}

/** One metrics.jsonl line: averages over the steps since the previous line. */
export interface GrpoRecord extends MetricsRecord {
  reward: number;
  accuracy: number;
  /** Share of completions in the strict format. */
  format_rate: number;
  response_tokens: number;
  think_tokens: number;
  /** Share of completions cut at max_new_tokens. */
  truncated: number;
  /** Share of the first round's groups with unequal rewards. */
  informative: number;
  groups_used: number;
  kl: number;
  clip_fraction: number;
  ratio: number;
  grad_norm: number;
  loss: number;
  lr: number;
  rollout_s: number;
  update_s: number;
  elapsed_s: number;
  /** Held-out greedy accuracy and response length, on evaluation steps. */
  eval_accuracy?: number;
  eval_response_tokens?: number;
}

export interface GrpoOptions {
  out: string;
  resume?: boolean;
  signal?: AbortSignal;
  log?: (line: string) => void;
  onStep?: (info: GrpoStepInfo) => void;
  onRecord?: (record: GrpoRecord) => void;
  source?: string;
}

export interface GrpoResult {
  step: number;
  stopped: boolean;
  checkpoint: string;
  elapsedS: number;
  config: GrpoConfig;
}

type State = TrainerState<GrpoConfig, unknown>;

/** The saved config with the given one's resumable fields; any other difference is an error naming it. */
export function resumeGrpoConfig(saved: GrpoConfig, given: GrpoConfig | undefined, where: string): GrpoConfig {
  if (given === undefined) return saved;
  const out = { ...saved } as unknown as Record<string, unknown>;
  for (const key of Object.keys({ ...saved, ...given }) as (keyof GrpoConfig)[]) {
    if ((GRPO_RESUMABLE_FIELDS as readonly string[]).includes(key)) {
      out[key] = given[key];
    } else if (JSON.stringify(saved[key]) !== JSON.stringify(given[key])) {
      throw new Error(`${where}: cannot resume with ${key} = ${JSON.stringify(given[key])}: the run was started with ${JSON.stringify(saved[key])} (only ${GRPO_RESUMABLE_FIELDS.join(', ')} may change)`);
    }
  }
  return out as unknown as GrpoConfig;
}

/** The config stored in a run's newest checkpoint, or null when it has none. */
export async function savedGrpoConfig(out: string): Promise<GrpoConfig | null> {
  const latest = await latestCheckpoint(out);
  if (latest === null) return null;
  const state = await readTrainerState<unknown>(latest.dir);
  return parseGrpoConfig(state.config, join(latest.dir, 'trainer_state.json'));
}

/** Everything a step needs, set up once per process. */
interface Run {
  cfg: GrpoConfig;
  model: CausalLM;
  ref: CausalLM | null;
  tokenizer: Tokenizer;
  opt: AdamW;
  problems: Stream<Problem>;
  rolloutRng: Rng;
  scorer: ReturnType<typeof makeScorer>;
  padId: number;
}

/** Samples and scores group_size completions of each problem. */
async function rolloutRound(run: Run, problems: readonly Problem[]): Promise<ScoredRollout[]> {
  const { cfg, model, tokenizer } = run;
  const prompts = problems.map((p) => renderPrompt(tokenizer, p, cfg.template, cfg.open_think));
  const done = await sampleCompletions(model, tokenizer, prompts.map((p) => p.ids), {
    samples: cfg.group_size,
    maxNewTokens: cfg.max_new_tokens,
    temperature: cfg.temperature,
    topP: cfg.top_p,
    topK: cfg.top_k,
    seed: run.rolloutRng.int(0, 2 ** 48),
  });
  return done.map((c) => {
    const problem = problems[c.promptIndex];
    const prompt = prompts[c.promptIndex];
    const g = grade(problem, c.text, { promptOpensThink: prompt.opensThink });
    const score = run.scorer({ prompt: prompt.text, completion: c.text, problem, tokens: c.tokens, promptOpensThink: prompt.opensThink, maxTokens: cfg.max_new_tokens });
    return { ...c, problem, prompt, score, accuracy: g.accuracy, format: g.format, thinkTokens: thinkTokens(c.tokens, tokenizer.special, prompt.opensThink) };
  });
}

/** The groups to train on: all of the first round, or (dynamic sampling) the informative ones, refilled. */
async function collectGroups(run: Run): Promise<{ first: ScoredRollout[]; groups: ScoredRollout[][]; rounds: number }> {
  const { cfg } = run;
  const G = cfg.group_size;
  const toGroups = (rs: ScoredRollout[]) => Array.from({ length: rs.length / G }, (_, i) => rs.slice(i * G, (i + 1) * G));
  const draw = (n: number) => Array.from({ length: n }, () => run.problems.next()!);
  const first = await rolloutRound(run, draw(cfg.prompts_per_step));
  if (!cfg.dynamic_sampling) return { first, groups: toGroups(first), rounds: 1 };
  const keep = (rs: ScoredRollout[]) => informativeGroups(rs.map((r) => r.score.reward), G).map((g) => rs.slice(g * G, (g + 1) * G));
  const groups = keep(first);
  let rounds = 1;
  while (groups.length < cfg.prompts_per_step && rounds <= cfg.oversample_rounds) {
    groups.push(...keep(await rolloutRound(run, draw(cfg.prompts_per_step - groups.length))));
    rounds++;
  }
  return { first, groups: groups.slice(0, cfg.prompts_per_step), rounds };
}

/** μ policy updates on the collected groups; π_old stays the rollout's log-probs throughout. */
function policyUpdates(run: Run, groups: ScoredRollout[][], lr: number): UpdateStats[] {
  const { cfg, model, opt } = run;
  const flat = groups.flat();
  const seqs: Sequence[] = flat.map((r) => ({ prompt: r.prompt.ids, completion: r.tokens }));
  const adv = groupAdvantages(flat.map((r) => r.score.reward), cfg.group_size, { scaleByStd: cfg.scale_by_std });
  const ref = run.ref === null ? null : sequenceLogProbs(run.ref, seqs, run.padId, MICRO_TOKENS);
  const plan = planMicroBatches(seqs, MICRO_TOKENS);
  const S = seqs.length;
  const N = seqs.reduce((s, q) => s + q.completion.length, 0);
  const updates: UpdateStats[] = [];
  for (let u = 0; u < cfg.mu; u++) {
    opt.zeroGrad();
    const st = { loss: 0, kl: 0, clipFraction: 0, meanRatio: 0, maxLogRatio: 0 };
    for (const mb of plan) {
      const lengths = mb.members.map((s) => seqs[s].completion.length);
      const n = lengths.reduce((a, b) => a + b, 0);
      const gather = (per: (s: number) => ArrayLike<number>) => {
        const out = new Float64Array(n);
        let at = 0;
        for (const s of mb.members) {
          out.set(per(s), at);
          at += seqs[s].completion.length;
        }
        return out;
      };
      const oldLogp = gather((s) => flat[s].logprobs);
      const advantages = gather((s) => new Float64Array(seqs[s].completion.length).fill(adv[s]));
      const refLogp = ref === null ? null : gather((s) => ref[s]);
      // Each micro-batch's loss is normalised over its own sequences (tokens); this weight makes the
      // sum over micro-batches the loss of the whole batch.
      const weight = cfg.aggregation === 'token' ? n / N : mb.members.length / S;
      T.tidy(() => {
        const logp = microBatchLogProbs(model, seqs, mb, run.padId);
        const { loss, stats } = grpoLoss({
          logp, oldLogp, refLogp, advantages, lengths,
          epsLow: cfg.eps_low, epsHigh: cfg.eps_high ?? cfg.eps_low, beta: cfg.beta,
          aggregation: cfg.aggregation, constantLength: cfg.constant_length ?? cfg.max_new_tokens,
        });
        const value = loss.item();
        if (!Number.isFinite(value)) throw new Error(`GRPO: loss is ${value}`);
        T.backward(loss, weight);
        const lp = logp.data;
        for (let t = 0; t < n; t++) st.maxLogRatio = Math.max(st.maxLogRatio, Math.abs(lp[t] - oldLogp[t]));
        st.loss += weight * value;
        st.kl += (stats.kl * n) / N;
        st.clipFraction += (stats.clipFraction * n) / N;
        st.meanRatio += (stats.meanRatio * n) / N;
      });
    }
    const gradNorm = opt.update(lr);
    for (const m of model.moeLayers()) m.updateBias(cfg.bias_update_speed);
    updates.push({ ...st, gradNorm });
  }
  return updates;
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

/** The tasks held-out evaluation runs on (task data only: a problem file has no held-out split). */
function evalTasks(cfg: GrpoConfig): TaskSpec[] {
  return cfg.data.source === 'tasks' ? cfg.data.tasks : [];
}

/**
 * Trains with GRPO as `config` says, writing checkpoints and metrics.jsonl under `opts.out`; with
 * `resume`, continues the newest checkpoint there bit-exactly.
 */
export async function trainGrpo(config: GrpoConfig, opts: GrpoOptions): Promise<GrpoResult> {
  const log = opts.log ?? (() => {});
  const out = opts.out;
  const source = opts.source ?? 'grpo config';
  const latest = await latestCheckpoint(out);
  if (latest !== null && !opts.resume) throw new Error(`${out}: already holds a run (checkpoint-${latest.step}); pass --resume to continue it, or choose another --out`);
  let state: State | null = null;
  let cfg = config;
  if (latest !== null) {
    state = await readTrainerState<GrpoConfig, unknown>(latest.dir);
    if (state.stage !== 'grpo') throw new Error(`${out}: the run is ${state.stage}, not grpo`);
    cfg = resumeGrpoConfig(parseGrpoConfig(state.config, join(latest.dir, 'trainer_state.json')), config, source);
    if (state.step > cfg.steps) throw new Error(`${source}: steps = ${cfg.steps} is below the ${state.step} steps the run has already done`);
  }
  await checkGrpoConfig(cfg, source);
  if (evalTasks(cfg).length === 0 && cfg.eval_every > 0) throw new Error(`${source}: eval_every = ${cfg.eval_every}: held-out evaluation needs task data (data.source "tasks")`);
  await mkdir(out, { recursive: true });

  const from = latest?.dir ?? cfg.model.init;
  const tokenizer = latest !== null ? await loadTokenizer(latest.dir) : cfg.tokenizer !== null ? await loadTokenizer(cfg.tokenizer) : await loadModelTokenizer(cfg.model.init);
  const model = (await loadModel(from, { weights: 'f32' })).model;
  if (tokenizer.vocabSize > model.config.vocab_size) throw new Error(`${source}: the tokenizer's vocabulary (${tokenizer.vocabSize}) is larger than the model's (${model.config.vocab_size})`);
  const eos = tokenizer.special.eos;
  if (eos === undefined) throw new Error(`${source}: the tokenizer has no EOS token; completions could never end`);
  const ref = cfg.beta > 0 ? (await loadModel(cfg.model.init, { weights: 'f32' })).model : null;
  const opt = new AdamW(model.trainableParams(), { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.adam_eps, weightDecay: cfg.weight_decay, gradClip: cfg.grad_clip });
  // As in the pretraining trainer: with every gradient allocated, AdamW updates the same parameters
  // in a resumed process as in the one it continues (unreached experts included).
  for (const { tensor } of opt.params) T.gradOf(tensor);
  if (latest !== null) {
    await loadOptimizerState(join(latest.dir, OPTIMIZER_FILE), model, opt);
    log(`resuming ${out} from checkpoint-${latest.step}`);
  } else {
    await writeJsonAtomic(join(out, GRPO_CONFIG_FILE), cfg);
  }
  const run: Run = {
    cfg, model, ref, tokenizer, opt,
    problems: await openProblems(cfg, state?.data),
    rolloutRng: new Rng(cfg.seed),
    scorer: makeScorer(cfg.rewards),
    padId: tokenizer.special.pad ?? eos,
  };
  if (state?.rng?.rollout) run.rolloutRng.setState(state.rng.rollout);
  const evalSets = evalTasks(cfg).map((spec) => heldOutSet(spec, cfg.eval_problems));

  let step = state?.step ?? 0;
  let tokens = state?.tokens ?? 0;
  const elapsedBefore = state?.elapsed_s ?? 0;
  const started = performance.now();
  const elapsed = () => elapsedBefore + (performance.now() - started) / 1000;
  const metrics = await MetricsLog.open(join(out, METRICS_FILE), step);
  const logEvery = logInterval(cfg.log_every, cfg.steps);
  log(
    `grpo: ${cfg.steps} steps of ${cfg.prompts_per_step} prompts × ${cfg.group_size} samples (≤ ${cfg.max_new_tokens} tokens), μ = ${cfg.mu}, ` +
      `β = ${cfg.beta}${ref === null ? ' (no reference model)' : ''}, ε = ${cfg.eps_low}${cfg.eps_high !== null ? `/${cfg.eps_high}` : ''}, ` +
      `${cfg.aggregation} aggregation${cfg.dynamic_sampling ? ', dynamic sampling' : ''}; rewards ${Object.entries(cfg.rewards).map(([k, w]) => `${w}·${k}`).join(' + ')}`,
  );

  let checkpoint = latest?.dir ?? '';
  let savedStep = latest?.step ?? -1;
  const save = async () => {
    const st: State = { format: 'nanoseek-trainer-state', version: 1, stage: 'grpo', step, tokens, elapsed_s: elapsed(), val_loss: null, config: cfg, data: run.problems.state(), rng: { rollout: run.rolloutRng.getState() } };
    checkpoint = await saveTrainingCheckpoint(out, { model, optimizer: opt, tokenizer, state: st, ...grpoCard(cfg, step, out) });
    await pruneCheckpoints(out, cfg.keep_checkpoints);
    savedStep = step;
    log(`saved ${checkpoint}`);
  };

  let interval: GrpoStepInfo[] = [];
  let stopped = false;
  while (step < cfg.steps) {
    if (opts.signal?.aborted) {
      stopped = true;
      break;
    }
    const lr = cosineSchedule(step, cfg.lr, cfg.warmup, cfg.steps, cfg.min_lr_ratio);
    const t0 = performance.now();
    const { first, groups, rounds } = await collectGroups(run);
    const t1 = performance.now();
    const updates = groups.length > 0 ? policyUpdates(run, groups, lr) : [];
    const t2 = performance.now();
    step++;
    tokens += groups.flat().reduce((s, r) => s + r.tokens.length, 0);
    const info: GrpoStepInfo = { step, total: cfg.steps, lr, rollouts: first, groupsUsed: groups.length, rolloutRounds: rounds, updates, rolloutSeconds: (t1 - t0) / 1000, updateSeconds: (t2 - t1) / 1000 };
    interval.push(info);
    opts.onStep?.(info);

    const last = step === cfg.steps;
    const evalNow = evalSets.length > 0 && cfg.eval_every > 0 && (last || step % cfg.eval_every === 0);
    if (evalNow || last || step % logEvery === 0) {
      const record = summarise(interval, cfg, step, elapsed());
      if (evalNow) {
        const reports = [];
        for (const problems of evalSets) reports.push(await evaluateModel(model, tokenizer, problems, { template: cfg.template, openThink: cfg.open_think, n: 0, maxNewTokens: cfg.max_new_tokens, temperature: 1, seed: 0 }));
        record.eval_accuracy = mean(reports.map((r) => r['pass@1']));
        record.eval_response_tokens = mean(reports.map((r) => r.mean_response_tokens));
      }
      await metrics.append(record);
      opts.onRecord?.(record);
      log(
        `step ${step}/${cfg.steps}  reward ${record.reward.toFixed(3)}  acc ${record.accuracy.toFixed(3)}  format ${record.format_rate.toFixed(3)}  ` +
          `len ${record.response_tokens.toFixed(1)}  think ${record.think_tokens.toFixed(1)}  groups ${record.groups_used.toFixed(1)}  kl ${record.kl.toExponential(2)}  ` +
          `clip ${record.clip_fraction.toFixed(3)}  gnorm ${record.grad_norm.toFixed(3)}  ${(record.rollout_s + record.update_s).toFixed(1)} s/step` +
          (record.eval_accuracy !== undefined ? `  held-out ${record.eval_accuracy.toFixed(3)} (${record.eval_response_tokens!.toFixed(1)} tokens)` : ''),
      );
      interval = [];
    }
    if (last || (cfg.save_every > 0 && step % cfg.save_every === 0)) await save();
    await new Promise((r) => setImmediate(r));
  }
  if (stopped && savedStep !== step) await save();
  return { step, stopped, checkpoint, elapsedS: elapsed(), config: cfg };
}

/**
 * What a GRPO checkpoint says about itself: the prompt it was trained from and its task (for
 * `eval` without flags); a model trained on the R1-Zero prompt is served with it (its chat template).
 */
function grpoCard(cfg: GrpoConfig, step: number, out: string): { card: ModelCard; chatTemplate?: string } {
  const tasks = cfg.data.source === 'tasks' ? cfg.data.tasks : [];
  return {
    card: {
      description: `Trained with GRPO from ${cfg.model.init} on ${tasks.length > 0 ? taskPhrase(tasks) : (cfg.data as { path: string }).path}: step ${step} of ${cfg.steps} of the run in ${out}.`,
      examples: [],
      prompt: { template: cfg.template, open_think: cfg.open_think },
      task: tasks.length > 0 ? { ...tasks[0] } : null,
      source: `nanoseek grpo train --out ${out}`,
    },
    chatTemplate: cfg.template === 'r1-zero' ? r1ZeroChatTemplate(cfg.open_think) : undefined,
  };
}

function summarise(steps: readonly GrpoStepInfo[], cfg: GrpoConfig, step: number, elapsedS: number): GrpoRecord {
  const rs = steps.flatMap((s) => s.rollouts);
  const us = steps.flatMap((s) => s.updates);
  const G = cfg.group_size;
  const informative = mean(steps.map((s) => informativeGroups(s.rollouts.map((r) => r.score.reward), G).length / (s.rollouts.length / G)));
  const round = (x: number, d = 4) => Number(x.toFixed(d));
  return {
    step,
    reward: round(mean(rs.map((r) => r.score.reward))),
    accuracy: round(mean(rs.map((r) => r.accuracy))),
    format_rate: round(mean(rs.map((r) => (r.format === 1 ? 1 : 0)))),
    response_tokens: round(mean(rs.map((r) => r.tokens.length)), 2),
    think_tokens: round(mean(rs.map((r) => r.thinkTokens)), 2),
    truncated: round(mean(rs.map((r) => (r.finishReason === 'length' ? 1 : 0)))),
    informative: round(informative),
    groups_used: round(mean(steps.map((s) => s.groupsUsed)), 2),
    kl: mean(us.map((u) => u.kl)),
    clip_fraction: round(mean(us.map((u) => u.clipFraction))),
    ratio: round(mean(us.map((u) => u.meanRatio)), 6),
    grad_norm: round(mean(us.map((u) => u.gradNorm))),
    loss: mean(us.map((u) => u.loss)),
    lr: steps[steps.length - 1].lr,
    rollout_s: round(mean(steps.map((s) => s.rolloutSeconds)), 2),
    update_s: round(mean(steps.map((s) => s.updateSeconds)), 2),
    elapsed_s: round(elapsedS, 1),
  };
}
