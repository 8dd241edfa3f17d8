// Training checkpoints: `<run>/checkpoint-<step>/` holds a Hugging Face model directory (config.json,
// model.safetensors, tokenizer files) plus what resuming needs: optimizer.safetensors (AdamW's
// moments under PyTorch's names exp_avg / exp_avg_sq, the step in the metadata) and
// trainer_state.json (step, data position, RNG states, the run's config). The directory is written
// to a temporary sibling and renamed into place, so it is all there or not there: a run killed at
// any instant resumes from the newest checkpoint directory that exists. `<run>/latest` is a symlink
// to it, for `--init` and for people.
import { lstat, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { replaceDirAtomic } from '../util/atomic.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import type { CausalLM } from '../model/model.js';
import { saveModel } from '../io/model-file.js';
import { setChatTemplate, type Tokenizer } from '../tokenizer/index.js';
import { writeModelCard, type ModelCard } from '../io/model-card.js';
import type { RngState } from '../util/rng.js';
import type { AdamW } from './optim.js';

export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const LATEST_LINK = 'latest';
const CHECKPOINT_PATTERN = /^checkpoint-(\d+)$/;

/** What a trainer needs, beyond weights and optimizer moments, to continue exactly. */
export interface TrainerState<C = unknown, D = unknown> {
  format: 'nanoseek-trainer-state';
  version: 1;
  /** Which trainer wrote it ('pretrain', 'sft', 'grpo', …). */
  stage: string;
  /** Optimizer steps done. */
  step: number;
  /** Target tokens trained on so far. */
  tokens: number;
  /** Training wall-clock seconds so far, over all resumes. */
  elapsed_s: number;
  /** The most recent validation loss, if any. */
  val_loss: number | null;
  /** The run's configuration, as the trainer parsed it. */
  config: C;
  /** The data position (the streams' `state()`). */
  data: D;
  /** RNGs outside the data streams (e.g. sampling), by name. */
  rng?: Record<string, RngState>;
}

export function checkpointDir(runDir: string, step: number): string {
  return join(runDir, `checkpoint-${step}`);
}

/** The model's parameters by checkpoint name, in the optimizer's order. */
function parameterNames(model: CausalLM, opt: AdamW): string[] {
  const names = new Map([...model.params.tensors].map(([name, t]) => [t, name]));
  return opt.params.map(({ tensor }) => {
    const name = names.get(tensor);
    if (name === undefined) throw new Error('optimizer: a parameter is not one of the model\'s tensors');
    return name;
  });
}

function f32(data: Float32Array | Float64Array): Float32Array {
  return data instanceof Float32Array ? data : Float32Array.from(data);
}

/** AdamW's moments and step as safetensors (`exp_avg.<param>`, `exp_avg_sq.<param>`). */
export async function saveOptimizerState(path: string, model: CausalLM, opt: AdamW): Promise<void> {
  const names = parameterNames(model, opt);
  const tensors: Array<[string, TensorToWrite]> = [];
  names.forEach((name, i) => {
    tensors.push([`exp_avg.${name}`, { shape: opt.m[i].shape, data: f32(opt.m[i].data) }]);
    tensors.push([`exp_avg_sq.${name}`, { shape: opt.v[i].shape, data: f32(opt.v[i].data) }]);
  });
  await writeSafetensors(path, tensors, { optimizer: 'adamw', step: String(opt.step) });
}

/** Restores what saveOptimizerState wrote into an optimizer over the same model's parameters. */
export async function loadOptimizerState(path: string, model: CausalLM, opt: AdamW): Promise<void> {
  const { tensors, metadata } = await readSafetensors(path, { loadAs: 'f32' });
  const step = Number(metadata.step);
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`${path}: metadata step = ${JSON.stringify(metadata.step)} is not a step count`);
  const names = parameterNames(model, opt);
  const expected = new Set<string>();
  names.forEach((name, i) => {
    for (const [key, target] of [[`exp_avg.${name}`, opt.m[i]], [`exp_avg_sq.${name}`, opt.v[i]]] as const) {
      expected.add(key);
      const t = tensors.get(key);
      if (t === undefined) throw new Error(`${path}: tensor ${key} is missing`);
      if (t.data.length !== target.size) throw new Error(`${path}: tensor ${key} has ${t.data.length} values, the model needs ${target.size}`);
      target.data.set(t.data as Float32Array);
    }
  });
  for (const key of tensors.keys()) if (!expected.has(key)) throw new Error(`${path}: unexpected tensor ${key} (a different model?)`);
  opt.step = step;
}

export interface SaveTrainingCheckpoint<C, D> {
  model: CausalLM;
  optimizer: AdamW;
  tokenizer: Tokenizer;
  state: TrainerState<C, D>;
  /** What the checkpoint says about itself (prompt format, task): model_card.json. */
  card?: ModelCard;
  /** Replaces the tokenizer's chat template in the checkpoint (a model trained on the R1-Zero prompt is served with it). */
  chatTemplate?: string;
}

/** Writes `<runDir>/checkpoint-<step>` as one atomic directory, then points `latest` at it. */
export async function saveTrainingCheckpoint<C, D>(runDir: string, ck: SaveTrainingCheckpoint<C, D>): Promise<string> {
  const dir = checkpointDir(runDir, ck.state.step);
  await replaceDirAtomic(dir, async (tmp) => {
    // saveModel swaps its own directory in; inside our fresh temporary that is just a few renames.
    await saveModel(ck.model, tmp, { metadata: { step: String(ck.state.step) } });
    await ck.tokenizer.save(tmp);
    if (ck.chatTemplate !== undefined) await setChatTemplate(tmp, ck.chatTemplate);
    if (ck.card !== undefined) await writeModelCard(tmp, ck.card);
    await saveOptimizerState(join(tmp, OPTIMIZER_FILE), ck.model, ck.optimizer);
    await writeFile(join(tmp, TRAINER_STATE_FILE), `${JSON.stringify(ck.state, null, 2)}\n`);
  });
  await pointLatest(runDir, ck.state.step);
  return dir;
}

/** Re-points `<runDir>/latest` at checkpoint-<step> (a new link renamed over the old one). */
async function pointLatest(runDir: string, step: number): Promise<void> {
  const link = join(runDir, LATEST_LINK);
  const existing = await lstat(link).catch(() => null);
  if (existing !== null && !existing.isSymbolicLink()) throw new Error(`${link}: exists and is not a symlink; move it away`);
  const tmp = join(runDir, `.${LATEST_LINK}.${process.pid}`);
  await rm(tmp, { force: true });
  await symlink(`checkpoint-${step}`, tmp);
  await rename(tmp, link);
}

export interface CheckpointRef {
  step: number;
  dir: string;
}

/** The run's complete checkpoints, oldest first. */
export async function listCheckpoints(runDir: string): Promise<CheckpointRef[]> {
  const names = await readdir(runDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const out: CheckpointRef[] = [];
  for (const name of names) {
    const m = CHECKPOINT_PATTERN.exec(name);
    if (m === null) continue;
    const dir = join(runDir, name);
    if ((await lstat(join(dir, TRAINER_STATE_FILE)).catch(() => null)) !== null) out.push({ step: Number(m[1]), dir });
  }
  return out.sort((a, b) => a.step - b.step);
}

export async function latestCheckpoint(runDir: string): Promise<CheckpointRef | null> {
  const all = await listCheckpoints(runDir);
  return all.length > 0 ? all[all.length - 1] : null;
}

/** Deletes all but the newest `keep` checkpoints (never the one `latest` points at). */
export async function pruneCheckpoints(runDir: string, keep: number): Promise<void> {
  const all = await listCheckpoints(runDir);
  const target = await readlink(join(runDir, LATEST_LINK)).catch(() => null);
  for (const ck of all.slice(0, Math.max(0, all.length - keep))) {
    if (target !== null && resolve(runDir, target) === resolve(ck.dir)) continue;
    await rm(ck.dir, { recursive: true, force: true });
  }
}

export async function readTrainerState<C = unknown, D = unknown>(dir: string): Promise<TrainerState<C, D>> {
  const path = join(dir, TRAINER_STATE_FILE);
  const state = JSON.parse(await readFile(path, 'utf8')) as TrainerState<C, D>;
  if (state?.format !== 'nanoseek-trainer-state' || state.version !== 1) throw new Error(`${path}: not a nanoseek trainer state (format ${JSON.stringify(state?.format)}, version ${JSON.stringify(state?.version)})`);
  if (!Number.isSafeInteger(state.step) || state.step < 0) throw new Error(`${path}: step = ${JSON.stringify(state.step)} is not a step count`);
  return state;
}
