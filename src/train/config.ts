// The training configuration: one JSON file (configs/*.json) with flat hyper-parameters and three
// nested sections (model, tokenizer, data; and distill for stage "distill"). `parseTrainConfig` is the only way in: every field is
// checked for type and range, unknown fields are refused (a typo must not silently fall back to a
// default), and each error names the field. `checkTrainConfig` then checks what needs files on disk
// (the init checkpoint's context length, the tokenizer's vocabulary) before any training work starts.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { loadModelTokenizer, readModelFileConfig } from '../io/model-file.js';
import { PRESET_NAMES, presetConfig, type ModelConfig, type PresetName } from '../model/config.js';
import { EVAL_SEED, validateSpec, type ArithOp, type CountdownSpec, type TaskSpec } from '../tasks/index.js';
import { loadTokenizer } from '../tokenizer/index.js';
import { ConfigFieldError, isRecord, JsonFields, show, type Json } from '../util/json-fields.js';
import { DIVERGENCES, type Divergence } from './distill/loss.js';

/** The resolved config a run started with, written into the run directory for people and `nanoseek plot`. */
export const TRAIN_CONFIG_FILE = 'train_config.json';

export type Stage = 'pretrain' | 'sft' | 'distill';
export const STAGES: readonly Stage[] = ['pretrain', 'sft', 'distill'];

/**
 * Logit distillation (stage "distill"): the SFT data's replies (off-policy) or the student's own
 * samples (on-policy, a share λ of the steps), scored token by token by a teacher in the same
 * process; the loss is α·CE + (1 − α)·τ²·D(teacher ‖ student) on the reply tokens (src/train/distill).
 */
export interface DistillSpec {
  /** Checkpoint directory or GGUF file of the teacher; its tokenizer must be the student's. */
  teacher: string;
  divergence: Divergence;
  /** JSD's β (0: forward KL, 1: reverse KL). */
  beta: number;
  /** τ of both softmaxes; the divergence is scaled by τ². */
  temperature: number;
  /** Weight of the cross-entropy on the SFT replies (off-policy steps only). */
  alpha: number;
  /** Share of steps whose batches the student samples itself (GKD's λ; 0: off-policy only). */
  lambda: number;
  /** On-policy: training-split problems the student answers, in data.format's prompt. */
  tasks: TaskSpec[];
  max_new_tokens: number;
  /** The student's sampling temperature on-policy (GKD's default 0.9). */
  sample_temperature: number;
  top_p: number;
}

export type ModelSpec =
  | {
      preset: PresetName;
      /** Add DeepSeek-V3's multi-token-prediction module. */
      mtp: boolean;
      /** Embedding rows; default the tokenizer's vocabulary size. */
      vocab_size: number | null;
      /** Context length (max_position_embeddings); default the preset's. */
      context: number | null;
    }
  | { init: string };

export type TokenizerSpec =
  /** A tokenizer.json or a directory holding one. */
  | { path: string }
  /** Learn a byte-level BPE on the first `documents` training documents. */
  | { train: { vocab_size: number; documents: number; min_frequency: number } }
  /** The tokenizer stored in the init checkpoint. */
  | { from_init: true };

export interface CorpusData {
  source: 'tasks';
  seed: number;
  /** Seed of the validation stream; must differ from `seed`, so training never draws it. */
  val_seed: number;
  max_digits: number;
  ops: ArithOp[];
  countdown: CountdownSpec | null;
}

export interface FileData {
  source: 'text' | 'jsonl';
  path: string;
  /** JSONL: the string field holding each document (pretraining). */
  field: string;
  /** Validation documents; when null, documents whose hash falls below val_fraction are held out. */
  val_path: string | null;
  val_fraction: number;
  seed: number;
}

export type SftFormat = 'r1' | 'r1-zero';

export interface SftTaskData {
  source: 'tasks';
  tasks: TaskSpec[];
  seed: number;
  format: SftFormat;
}

export interface SftFileData {
  source: 'jsonl';
  path: string;
  val_path: string | null;
  val_fraction: number;
  seed: number;
  format: SftFormat;
}

export type DataSpec = CorpusData | FileData | SftTaskData | SftFileData;

export interface TrainConfig {
  stage: Stage;
  model: ModelSpec;
  tokenizer: TokenizerSpec;
  data: DataSpec;
  seq_len: number;
  /** Sequences per micro-batch. */
  batch_size: number;
  /** Micro-batches per optimizer step. */
  grad_accum: number;
  steps: number;
  lr: number;
  warmup: number;
  min_lr_ratio: number;
  weight_decay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Global gradient-norm clip (0: off). */
  grad_clip: number;
  /** Model initialisation and data order. */
  seed: number;
  mtp_weight: number;
  balance_alpha: number;
  /**
   * γ of the router bias update. DeepSeek-V3 used 0.001 over trillions of tokens; runs of a few
   * hundred steps need the faster 0.01 (default) to balance the experts at all.
   */
  bias_update_speed: number;
  /** Validation every this many steps (0: only at the end). */
  eval_every: number;
  /** Validation batches of batch_size sequences (0: no validation). */
  eval_batches: number;
  /** Checkpoint every this many steps (0: only at the end). */
  save_every: number;
  log_every: number;
  /** How many checkpoint-<step> directories to keep (the newest). */
  keep_checkpoints: number;
  /** Stage "distill" only (null otherwise). */
  distill: DistillSpec | null;
}

/** Fields that hold paths: relative ones are relative to the config file (resolvePathFields). */
export const TRAIN_PATH_FIELDS = ['model.init', 'tokenizer.path', 'data.path', 'data.val_path', 'distill.teacher'] as const;

/** Fields that may change when a run is resumed: none of them alters the weights a step produces. */
export const RESUMABLE_FIELDS = ['steps', 'eval_every', 'eval_batches', 'save_every', 'log_every', 'keep_checkpoints'] as const;

function taskSpec(r: JsonFields, field: string, value: unknown): TaskSpec {
  if (!isRecord(value)) r.fail(field, 'must be a task spec object like {"task": "arithmetic", "digits": [2, 2], "ops": ["+"]}', value);
  try {
    validateSpec(value as unknown as TaskSpec);
  } catch (err) {
    r.fail(field, (err as Error).message, value);
  }
  const allowed = value.task === 'arithmetic' ? ['task', 'digits', 'ops'] : ['task', 'count', 'numberMax', 'targetMax'];
  for (const k of Object.keys(value)) if (!allowed.includes(k)) r.fail(field, `unknown key "${k}" (allowed: ${allowed.join(', ')})`, value);
  return structuredClone(value) as unknown as TaskSpec;
}

function parseModel(r: JsonFields): ModelSpec {
  if (r.has('init')) {
    if (r.has('preset')) r.fail('init', 'give either model.preset or model.init, not both');
    const init = r.str('init');
    r.done();
    return { init };
  }
  const preset = r.oneOf<PresetName>('preset', PRESET_NAMES);
  const mtp = r.bool('mtp', false);
  const vocab = r.raw('vocab_size');
  if (vocab !== undefined && vocab !== null && !(typeof vocab === 'number' && Number.isSafeInteger(vocab) && vocab >= 1)) {
    r.fail('vocab_size', 'must be null (the tokenizer vocabulary size) or a positive integer');
  }
  if (mtp && preset.endsWith('-dense')) r.fail('mtp', `the MTP module exists in the DeepSeek presets only, not "${preset}"`);
  // null (as a saved run's config writes it) is the preset's own context.
  const rawContext = r.raw('context');
  const context = rawContext === undefined || rawContext === null ? null : r.int('context', 16);
  r.done();
  return { preset, mtp, vocab_size: (vocab as number | null | undefined) ?? null, context };
}

function parseTokenizer(r: JsonFields, hasInit: boolean): TokenizerSpec {
  if (r.has('path')) {
    const path = r.str('path');
    r.done();
    return { path };
  }
  if (r.has('train')) {
    const t = r.object('train');
    const spec = { train: { vocab_size: t.int('vocab_size', 265), documents: t.int('documents', 1, 5000), min_frequency: t.int('min_frequency', 1, 2) } };
    t.done();
    r.done();
    return spec;
  }
  // Parsed configs (in trainer_state.json) say {"from_init": true}; config files leave it out.
  if (r.has('from_init') && r.raw('from_init') !== true) r.fail('from_init', 'must be true (or left out)');
  r.done();
  if (!hasInit) r.fail('path', 'the tokenizer needs "path" or "train" (only a model.init checkpoint brings its own)');
  return { from_init: true };
}

function parseData(r: JsonFields, stage: Stage, seed: number): DataSpec {
  const source = r.oneOf('source', stage === 'pretrain' ? (['tasks', 'text', 'jsonl'] as const) : (['tasks', 'jsonl'] as const));
  const dataSeed = r.int('seed', 0, seed);
  let out: DataSpec;
  if (stage === 'pretrain' && source === 'tasks') {
    const valSeed = r.int('val_seed', 0, EVAL_SEED);
    if (valSeed === dataSeed) r.fail('val_seed', `must differ from data.seed (${dataSeed}): the validation stream must be one training never draws`);
    const ops = r.raw('ops') ?? ['+', '-', '*'];
    if (!Array.isArray(ops) || ops.length === 0 || !ops.every((o) => o === '+' || o === '-' || o === '*')) {
      r.fail('ops', 'must be a non-empty list of "+", "-", "*"', ops);
    }
    const cd = r.raw('countdown');
    if (cd !== undefined && cd !== null && !isRecord(cd)) r.fail('countdown', 'must be null or an object like {"count": [3, 4], "numberMax": 25, "targetMax": 100}');
    out = {
      source: 'tasks',
      seed: dataSeed,
      val_seed: valSeed,
      max_digits: r.int('max_digits', 1, 4, 40),
      ops: [...(ops as ArithOp[])],
      countdown: isRecord(cd) ? (taskSpec(r, 'countdown', { task: 'countdown', ...cd }) as CountdownSpec) : null,
    };
  } else if (stage !== 'pretrain' && source === 'tasks') {
    const tasks = r.raw('tasks');
    if (!Array.isArray(tasks) || tasks.length === 0) r.fail('tasks', 'must be a non-empty list of task specs');
    out = { source: 'tasks', tasks: tasks.map((t, i) => taskSpec(r, `tasks[${i}]`, t)), seed: dataSeed, format: r.oneOf<SftFormat>('format', ['r1', 'r1-zero'], 'r1') };
  } else {
    const path = r.str('path');
    const valPath = r.optStr('val_path');
    const fraction = r.num('val_fraction', 0, stage !== 'pretrain' ? 0.05 : 0.02, 0.5);
    if (valPath === null && fraction === 0) r.fail('val_fraction', 'must be > 0 when there is no val_path (validation needs held-out documents)');
    if (stage !== 'pretrain') {
      out = { source: 'jsonl', path, val_path: valPath, val_fraction: fraction, seed: dataSeed, format: r.oneOf<SftFormat>('format', ['r1', 'r1-zero'], 'r1') };
    } else {
      // A parsed config (trainer_state.json) carries field "text" for text files too.
      const field = r.str('field', 'text');
      if (source === 'text' && field !== 'text') r.fail('field', 'applies to jsonl data only');
      out = { source: source as 'text' | 'jsonl', path, field, val_path: valPath, val_fraction: fraction, seed: dataSeed };
    }
  }
  r.done();
  return out;
}

function parseDistill(r: JsonFields): DistillSpec {
  const tasks = r.raw('tasks') ?? [];
  if (!Array.isArray(tasks)) r.fail('tasks', 'must be a list of task specs (the on-policy problems)');
  const spec: DistillSpec = {
    teacher: r.str('teacher'),
    divergence: r.oneOf<Divergence>('divergence', DIVERGENCES, 'forward'),
    beta: r.num('beta', 0, 0.5, 1),
    temperature: r.num('temperature', 0, 1, 100, true),
    alpha: r.num('alpha', 0, 0.5, 1),
    lambda: r.num('lambda', 0, 0, 1),
    tasks: (tasks as unknown[]).map((t, i) => taskSpec(r, `tasks[${i}]`, t)),
    max_new_tokens: r.int('max_new_tokens', 1, 128),
    sample_temperature: r.num('sample_temperature', 0, 0.9, 100),
    top_p: r.num('top_p', 0, 1, 1, true),
  };
  if (spec.lambda > 0 && spec.tasks.length === 0) r.fail('tasks', `lambda = ${spec.lambda} samples on-policy batches from problems: give the task specs they come from`);
  r.done();
  return spec;
}

/**
 * Validates a training config object (defaults filled in). `stage` comes from the command line
 * (`nanoseek train pretrain|sft`) and must agree with the file's `stage` when that has one.
 */
export function parseTrainConfig(json: unknown, source = 'train config', stage?: Stage): TrainConfig {
  if (!isRecord(json)) throw new Error(`${source}: a training config must be a JSON object, got ${show(json)}`);
  const r = new JsonFields(json, source);
  const fileStage = r.has('stage') ? r.oneOf('stage', STAGES) : undefined;
  if (fileStage !== undefined && stage !== undefined && fileStage !== stage) r.fail('stage', `this config is for "${fileStage}", not "${stage}"`);
  const theStage = stage ?? fileStage ?? r.fail('stage', `required field is missing (one of ${STAGES.join(', ')})`);
  const seed = r.int('seed', 0, 0);
  const model = parseModel(r.object('model'));
  const hasInit = 'init' in model;
  const tokenizer = parseTokenizer(r.has('tokenizer') ? r.object('tokenizer') : new JsonFields({}, source, 'tokenizer.'), hasInit);
  const data = parseData(r.object('data'), theStage, seed);
  const steps = r.int('steps', 1);
  const cfg: TrainConfig = {
    stage: theStage,
    model,
    tokenizer,
    data,
    seq_len: r.int('seq_len', 2),
    batch_size: r.int('batch_size', 1),
    grad_accum: r.int('grad_accum', 1, 1),
    steps,
    lr: r.num('lr', 0, undefined, 1, true),
    warmup: r.int('warmup', 0, 0, steps),
    min_lr_ratio: r.num('min_lr_ratio', 0, 0.1, 1),
    weight_decay: r.num('weight_decay', 0, 0.1),
    beta1: r.num('beta1', 0, 0.9, 0.999999),
    beta2: r.num('beta2', 0, 0.95, 0.999999),
    eps: r.num('eps', 0, 1e-8, 1, true),
    grad_clip: r.num('grad_clip', 0, 1.0),
    seed,
    mtp_weight: r.num('mtp_weight', 0, 0),
    balance_alpha: r.num('balance_alpha', 0, 0),
    bias_update_speed: r.num('bias_update_speed', 0, 0.01),
    eval_every: r.int('eval_every', 0, 100),
    eval_batches: r.int('eval_batches', 0, 4),
    save_every: r.int('save_every', 0, 0),
    log_every: r.int('log_every', 1, 10),
    keep_checkpoints: r.int('keep_checkpoints', 1, 2),
    distill: null,
  };
  if (theStage === 'distill') cfg.distill = parseDistill(r.object('distill'));
  else if (r.raw('distill') != null) r.fail('distill', `applies to stage "distill" only, not "${theStage}"`);
  if ('preset' in model && !model.mtp && cfg.mtp_weight > 0) r.fail('mtp_weight', 'is > 0 but the model has no MTP module (set model.mtp to true)');
  r.done();
  return cfg;
}

/**
 * Applies `key=value` overrides (dotted paths into the JSON, values parsed as JSON when they parse,
 * strings otherwise) to a raw config object, before validation, so errors name the field.
 */
export function applyOverrides(json: unknown, overrides: Readonly<Record<string, unknown>>): Json {
  const out: Json = isRecord(json) ? structuredClone(json) : {};
  for (const [path, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const keys = path.split('.');
    let node = out;
    for (const k of keys.slice(0, -1)) {
      if (!isRecord(node[k])) node[k] = {};
      node = node[k] as Json;
    }
    node[keys[keys.length - 1]] = value;
  }
  return out;
}

/** Parses the text of a `--set key=value` flag's value: JSON when it is JSON, else the string. */
export function overrideValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export interface CheckedConfig {
  /** The model's config.json for a preset (vocab filled in later from the tokenizer), or the init checkpoint's. */
  modelConfig: ModelConfig | null;
  /** Vocabulary size of the tokenizer when it is known before training one. */
  tokenizerVocab: number | null;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * The checks that need files: data paths exist, seq_len fits the model's context, the tokenizer's
 * vocabulary fits the embedding. Cheap (config files only), so it runs before any work.
 */
export async function checkTrainConfig(cfg: TrainConfig, source = 'train config'): Promise<CheckedConfig> {
  const fail = (field: string, value: unknown, problem: string): never => {
    throw new ConfigFieldError(source, field, value, problem);
  };
  const data = cfg.data;
  if (cfg.distill !== null && !(await exists(cfg.distill.teacher))) fail('distill.teacher', cfg.distill.teacher, 'no such file or directory');
  if ('path' in data) {
    if (!(await exists(data.path))) fail('data.path', data.path, 'no such file');
    if (data.val_path !== null && !(await exists(data.val_path))) fail('data.val_path', data.val_path, 'no such file');
  }
  let modelConfig: ModelConfig | null = null;
  if ('init' in cfg.model) {
    if (!(await exists(cfg.model.init))) fail('model.init', cfg.model.init, 'no such file or directory');
    modelConfig = await readModelFileConfig(cfg.model.init);
  }
  const m = cfg.model;
  let context: number;
  let what: string;
  if ('init' in m) [context, what] = [modelConfig!.max_position_embeddings, "the init checkpoint's max_position_embeddings"];
  else if (m.context !== null) [context, what] = [m.context, 'model.context'];
  else [context, what] = [presetConfig(m.preset).max_position_embeddings, `max_position_embeddings of preset "${m.preset}"`];
  if (cfg.seq_len > context) fail('seq_len', cfg.seq_len, `exceeds ${what} (${context})`);

  let tokenizerVocab: number | null = null;
  const tok = cfg.tokenizer;
  if ('path' in tok) {
    if (!(await exists(tok.path))) fail('tokenizer.path', tok.path, 'no such file or directory');
    tokenizerVocab = (await loadTokenizer(tok.path)).vocabSize;
  } else if ('from_init' in tok) {
    const init = (cfg.model as { init: string }).init;
    const isDir = await stat(init).then((s) => s.isDirectory(), () => false);
    if (isDir && !(await exists(join(init, 'tokenizer.json')))) fail('tokenizer', undefined, `model.init ${init} holds no tokenizer.json; give tokenizer.path`);
    tokenizerVocab = (await loadModelTokenizer(init)).vocabSize;
  } else {
    tokenizerVocab = tok.train.vocab_size;
  }
  const modelVocab = modelConfig?.vocab_size ?? ('preset' in cfg.model ? cfg.model.vocab_size : null);
  if (modelVocab !== null && tokenizerVocab > modelVocab) {
    const problem = `the tokenizer's vocabulary (${tokenizerVocab}) is larger than the model's (${modelVocab})`;
    if ('preset' in cfg.model) fail('model.vocab_size', modelVocab, problem);
    if ('path' in tok) fail('tokenizer.path', tok.path, problem);
    if ('train' in tok) fail('tokenizer.train.vocab_size', tok.train.vocab_size, problem);
    fail('model.init', (cfg.model as { init: string }).init, problem);
  }
  if (modelConfig !== null && cfg.mtp_weight > 0 && (modelConfig.model_type !== 'deepseek_v3' || modelConfig.num_nextn_predict_layers === 0)) {
    fail('mtp_weight', cfg.mtp_weight, 'is > 0 but the init checkpoint has no MTP module');
  }
  return { modelConfig, tokenizerVocab };
}
