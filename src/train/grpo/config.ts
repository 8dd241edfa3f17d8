// The GRPO configuration: one JSON file (configs/r1zero*.json, the `grpo` section of an r1zero
// config). Like the pretraining config, every field is checked for type and range, unknown fields
// are refused, and each error names the field.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PROMPT_TEMPLATES, validateSpec, type PromptTemplate, type TaskSpec } from '../../tasks/index.js';
import type { Aggregation } from './loss.js';
import { getReward } from './reward.js';
import { ConfigFieldError, isRecord, JsonFields, show, type Json } from '../../util/json-fields.js';

export type GrpoData = { source: 'tasks'; tasks: TaskSpec[]; seed: number } | { source: 'jsonl'; path: string; seed: number };

export interface GrpoConfig {
  stage: 'grpo';
  /** The policy to start from (and the frozen reference when beta > 0). */
  model: { init: string };
  /** Tokenizer file or directory; null: the one in model.init. */
  tokenizer: string | null;
  data: GrpoData;
  template: PromptTemplate;
  /** R1-Zero template only: end the prompt with "<think>" (TinyZero's nudge into the format). */
  open_think: boolean;
  /** Reward name → weight (built-ins: accuracy, format, overlong; others via registerReward). */
  rewards: Record<string, number>;
  steps: number;
  /** Prompts per step (each sampled group_size times). */
  prompts_per_step: number;
  group_size: number;
  max_new_tokens: number;
  temperature: number;
  top_p: number;
  top_k: number;
  /** Policy updates (optimizer steps) per rollout batch. */
  mu: number;
  eps_low: number;
  /** Clip-higher (DAPO); null: eps_low. */
  eps_high: number | null;
  /** KL weight to the frozen reference; 0 keeps no reference model. */
  beta: number;
  aggregation: Aggregation;
  /** The 'constant' aggregation's length; null: max_new_tokens. */
  constant_length: number | null;
  /** Divide advantages by the group's std (off in Dr. GRPO). */
  scale_by_std: boolean;
  /** Drop groups whose rewards are all equal (DAPO). */
  dynamic_sampling: boolean;
  /** With dynamic sampling: at most this many extra rollout rounds to refill the dropped groups. */
  oversample_rounds: number;
  /** Sequences per forward/backward pass. */
  micro_batch: number;
  lr: number;
  warmup: number;
  min_lr_ratio: number;
  weight_decay: number;
  beta1: number;
  beta2: number;
  adam_eps: number;
  grad_clip: number;
  bias_update_speed: number;
  /** Prompt order and sampling. */
  seed: number;
  /** Held-out greedy accuracy every this many steps (0: never during training). */
  eval_every: number;
  /** Held-out problems per task for that evaluation. */
  eval_problems: number;
  save_every: number;
  log_every: number;
  keep_checkpoints: number;
}

/** Fields that hold paths: relative ones are relative to the config file (resolvePathFields). */
export const GRPO_PATH_FIELDS = ['model.init', 'tokenizer', 'data.path'] as const;

/** Fields a resumed run may change: none alters the weights a step produces. */
export const GRPO_RESUMABLE_FIELDS = ['steps', 'eval_every', 'eval_problems', 'save_every', 'log_every', 'keep_checkpoints'] as const;

/** A task spec from JSON, checked by the generators' own validation; the error names the field. */
export function parseTaskSpec(value: unknown, field: string, source: string): TaskSpec {
  const fail = (problem: string): never => {
    throw new Error(`${source}: ${field} = ${show(value)}: ${problem}`);
  };
  if (!isRecord(value)) fail('must be a task spec like {"task": "arithmetic", "digits": [3, 3], "ops": ["+"]}');
  const spec = value as Json;
  const allowed = spec.task === 'arithmetic' ? ['task', 'digits', 'ops'] : ['task', 'count', 'numberMax', 'targetMax'];
  for (const k of Object.keys(spec)) if (!allowed.includes(k)) fail(`unknown key "${k}" (allowed: ${allowed.join(', ')})`);
  try {
    validateSpec(spec as unknown as TaskSpec);
  } catch (err) {
    fail((err as Error).message);
  }
  return structuredClone(spec) as unknown as TaskSpec;
}

function parseData(f: JsonFields, seed: number, source: string): GrpoData {
  const src = f.oneOf('source', ['tasks', 'jsonl'] as const, 'tasks');
  const dataSeed = f.int('seed', 0, seed);
  let out: GrpoData;
  if (src === 'tasks') {
    const tasks = f.raw('tasks');
    if (!Array.isArray(tasks) || tasks.length === 0) f.fail('tasks', 'must be a non-empty list of task specs');
    out = { source: 'tasks', tasks: tasks.map((t, i) => parseTaskSpec(t, `data.tasks[${i}]`, source)), seed: dataSeed };
  } else {
    out = { source: 'jsonl', path: f.str('path'), seed: dataSeed };
  }
  f.done();
  return out;
}

/** Validates a GRPO config object, filling the defaults. */
export function parseGrpoConfig(json: unknown, source = 'grpo config'): GrpoConfig {
  if (!isRecord(json)) throw new Error(`${source}: a GRPO config must be a JSON object, got ${show(json)}`);
  const f = new JsonFields(json, source);
  f.oneOf('stage', ['grpo'] as const, 'grpo');
  const m = f.object('model');
  const model = { init: m.str('init') };
  m.done();
  const tok = f.optStr('tokenizer');
  const seed = f.int('seed', 0, 0);
  const data = parseData(f.object('data'), seed, source);
  const rewardsRaw = f.raw('rewards') ?? { accuracy: 0.9, format: 0.1 };
  if (!isRecord(rewardsRaw) || Object.keys(rewardsRaw).length === 0) f.fail('rewards', 'must be an object of reward name → weight, like {"accuracy": 0.9, "format": 0.1}');
  const rewards: Record<string, number> = {};
  for (const [name, w] of Object.entries(rewardsRaw)) {
    if (typeof w !== 'number' || !Number.isFinite(w)) f.fail('rewards', `the weight of "${name}" must be a finite number`);
    try {
      getReward(name);
    } catch (err) {
      f.fail('rewards', (err as Error).message);
    }
    rewards[name] = w;
  }
  // Advantages are rewards relative to the rest of the group: a group of one has nothing to compare.
  if (f.has('group_size') && f.obj.group_size === 1) f.fail('group_size', 'GRPO scores each sample against the others of its group, so it needs at least 2');
  const steps = f.int('steps', 1);
  const maxNew = f.int('max_new_tokens', 1, 128);
  const cfg: GrpoConfig = {
    stage: 'grpo',
    model,
    tokenizer: tok,
    data,
    template: f.oneOf('template', PROMPT_TEMPLATES, 'r1-zero'),
    open_think: f.bool('open_think', false),
    rewards,
    steps,
    prompts_per_step: f.int('prompts_per_step', 1, 16),
    group_size: f.int('group_size', 2, 8),
    max_new_tokens: maxNew,
    temperature: f.num('temperature', 0, 1, 100, true),
    top_p: f.num('top_p', 0, 1, 1, true),
    top_k: f.int('top_k', 0, 0),
    mu: f.int('mu', 1, 1),
    eps_low: f.num('eps_low', 0, 0.2, 1),
    eps_high: f.raw('eps_high') == null ? null : f.num('eps_high', 0),
    beta: f.num('beta', 0, 0),
    aggregation: f.oneOf<Aggregation>('aggregation', ['sequence', 'token', 'constant'], 'sequence'),
    constant_length: f.raw('constant_length') == null ? null : f.int('constant_length', 1),
    scale_by_std: f.bool('scale_by_std', true),
    dynamic_sampling: f.bool('dynamic_sampling', false),
    oversample_rounds: f.int('oversample_rounds', 0, 0),
    micro_batch: f.int('micro_batch', 1, 16),
    lr: f.num('lr', 0, undefined, 1, true),
    warmup: f.int('warmup', 0, 0, steps),
    min_lr_ratio: f.num('min_lr_ratio', 0, 1, 1),
    weight_decay: f.num('weight_decay', 0, 0),
    beta1: f.num('beta1', 0, 0.9, 0.999999),
    beta2: f.num('beta2', 0, 0.99, 0.999999),
    adam_eps: f.num('adam_eps', 0, 1e-8, 1, true),
    grad_clip: f.num('grad_clip', 0, 1),
    bias_update_speed: f.num('bias_update_speed', 0, 0.001),
    seed,
    eval_every: f.int('eval_every', 0, 0),
    eval_problems: f.int('eval_problems', 1, 64),
    save_every: f.int('save_every', 0, 0),
    log_every: f.int('log_every', 1, 1),
    keep_checkpoints: f.int('keep_checkpoints', 1, 2),
  };
  if (cfg.open_think && cfg.template !== 'r1-zero') f.fail('open_think', 'applies to the r1-zero template only (the R1 chat template always opens <think>)');
  if (cfg.oversample_rounds > 0 && !cfg.dynamic_sampling) f.fail('oversample_rounds', 'refills groups dropped by dynamic sampling; set dynamic_sampling to true');
  if (cfg.aggregation !== 'constant' && cfg.constant_length !== null) f.fail('constant_length', `applies to the 'constant' aggregation only, not '${cfg.aggregation}'`);
  f.done();
  return cfg;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** The checks that need files: the init checkpoint, the tokenizer and the problem file exist. */
export async function checkGrpoConfig(cfg: GrpoConfig, source = 'grpo config'): Promise<void> {
  const init = cfg.model.init;
  const isGguf = /\.gguf$/i.test(init);
  if (!(await exists(init))) throw new ConfigFieldError(source, 'model.init', init, 'no such file or directory');
  if (!(await exists(isGguf ? init : join(init, 'config.json')))) throw new ConfigFieldError(source, 'model.init', init, 'not a checkpoint directory (no config.json) or GGUF file');
  const tok = cfg.tokenizer ?? (isGguf ? init : join(init, 'tokenizer.json'));
  if (!(await exists(tok))) {
    if (cfg.tokenizer === null) throw new ConfigFieldError(source, 'model.init', init, 'holds no tokenizer.json; give tokenizer');
    throw new ConfigFieldError(source, 'tokenizer', cfg.tokenizer, 'no such file or directory');
  }
  if (cfg.data.source === 'jsonl' && !(await exists(cfg.data.path))) throw new ConfigFieldError(source, 'data.path', cfg.data.path, 'no such file');
}
