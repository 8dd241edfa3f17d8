// A checkpoint is a Hugging Face model directory: config.json, generation_config.json,
// model.safetensors (HF tensor names) and optional extras such as tokenizer.json. It loads in
// transformers/vLLM as it is. Saving replaces the whole directory atomically, so an interrupted
// save leaves the previous checkpoint loadable; loading checks the config and every tensor's
// presence and shape against what the config implies.
import { copyFile, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { expectedTensors, parseModelConfig, type ModelConfig } from '../model/config.js';
import { backupPathFor, replaceDirAtomic } from '../util/atomic.js';
import { dequantize } from '../kernels/quant/index.js';
import type { GgmlType } from '../kernels/quant/types.js';
import type { StoredTensor } from '../model/weights.js';
import type { ModelFile, TensorEntry } from './model-file.js';
import {
  openSafetensorsCollection, openShardedSafetensors, writeSafetensors,
  type SafetensorsCollection, type SafetensorsDtype, type TensorToWrite,
} from './safetensors.js';

export const CONFIG_FILE = 'config.json';
export const GENERATION_CONFIG_FILE = 'generation_config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
const RESERVED = new Set([CONFIG_FILE, GENERATION_CONFIG_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE]);

/** generation_config.json: token ids and sampling defaults, as transformers' generate() reads them. */
export interface GenerationConfig {
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
  pad_token_id?: number | null;
  do_sample?: boolean;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  max_new_tokens?: number;
  repetition_penalty?: number;
}

export interface CheckpointTensor {
  shape: readonly number[];
  data: Float32Array;
}

/** Contents of an extra file, or the path of a file to copy in. */
export type ExtraFile = string | Uint8Array | { copyFrom: string };

export interface SaveCheckpointOptions {
  config: ModelConfig;
  /** Exactly the tensors `expectedTensors(config)` lists, with those shapes. */
  tensors: ReadonlyMap<string, CheckpointTensor>;
  /** Defaults to `defaultGenerationConfig(config)`; missing bos/eos ids are taken from the config. */
  generationConfig?: GenerationConfig;
  /** Further files by name (tokenizer.json, tokenizer_config.json, …). */
  extraFiles?: Readonly<Record<string, ExtraFile>>;
  /** F32 (default, bit-exact), BF16 or F16 (half the size; the router bias stays F32, as in DeepSeek-V3). */
  dtype?: 'F32' | 'BF16' | 'F16';
  /** Extra `__metadata__` entries for model.safetensors (e.g. training step). */
  metadata?: Readonly<Record<string, string>>;
}

export interface Checkpoint {
  /** Where it was read from: `dir`, or its backup when a crash interrupted the last save. */
  dir: string;
  config: ModelConfig;
  tensors: Map<string, CheckpointTensor>;
  generationConfig: GenerationConfig | null;
  /** Stored dtype of the embedding matrix (representative of the weights). */
  dtype: SafetensorsDtype;
  metadata: Record<string, string>;
}

export interface LoadCheckpointOptions {
  /** Allocates each tensor's Float32Array (e.g. in a shared WASM heap) so loading makes no copy. */
  allocF32?: (n: number) => Float32Array;
}

/** DeepSeek-R1's recommended sampling (temperature 0.6, top-p 0.95) with the config's special tokens. */
export function defaultGenerationConfig(config: ModelConfig): GenerationConfig {
  return { bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id, do_sample: true, temperature: 0.6, top_p: 0.95 };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validate generation_config.json; fields other than the typed ones are kept as they are. */
export function parseGenerationConfig(json: unknown, source = GENERATION_CONFIG_FILE): GenerationConfig {
  if (!isRecord(json)) throw new Error(`${source}: must be a JSON object`);
  const bad = (field: string, problem: string): never => {
    throw new Error(`${source}: ${field} = ${JSON.stringify(json[field])}: ${problem}`);
  };
  const isId = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  for (const field of ['bos_token_id', 'pad_token_id'] as const) {
    const v = json[field];
    if (v !== undefined && v !== null && !isId(v)) bad(field, 'must be null or a token id');
  }
  const eos = json.eos_token_id;
  if (eos !== undefined && eos !== null && !isId(eos) && !(Array.isArray(eos) && eos.length > 0 && eos.every(isId))) {
    bad('eos_token_id', 'must be null, a token id or a non-empty list of token ids');
  }
  if (json.do_sample !== undefined && typeof json.do_sample !== 'boolean') bad('do_sample', 'must be true or false');
  const num = (field: string, ok: (v: number) => boolean, range: string) => {
    const v = json[field];
    if (v !== undefined && v !== null && !(typeof v === 'number' && Number.isFinite(v) && ok(v))) bad(field, `must be ${range}`);
  };
  num('temperature', (v) => v >= 0, 'a number >= 0');
  num('top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  num('top_k', (v) => Number.isSafeInteger(v) && v >= 0, 'an integer >= 0');
  num('max_new_tokens', (v) => Number.isSafeInteger(v) && v >= 1, 'an integer >= 1');
  num('repetition_penalty', (v) => v > 0, 'a number > 0');
  return json as GenerationConfig;
}

function describeShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Compare tensors against the config's expected list; returns one line summing up the problems
 * (how many tensors are missing, unexpected or of another shape, one example of each), or null
 * when all match.
 */
function tensorMismatches(config: ModelConfig, shapes: ReadonlyMap<string, readonly number[]>, fileOf: (name: string) => string): string | null {
  const expected = new Map(expectedTensors(config).map((t) => [t.name, t.shape]));
  const missing: string[] = [];
  const reshaped: string[] = [];
  const unexpected: string[] = [];
  for (const [name, shape] of expected) {
    const got = shapes.get(name);
    if (!got) missing.push(`"${name}" ${describeShape(shape)} (not in ${fileOf(name)})`);
    else if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      reshaped.push(`"${name}" in ${fileOf(name)} has shape ${describeShape(got)}, config implies ${describeShape(shape)}`);
    }
  }
  for (const name of shapes.keys()) if (!expected.has(name)) unexpected.push(`"${name}" in ${fileOf(name)} (not part of this config)`);
  const parts: string[] = [];
  const part = (list: string[], one: string, many: string) => {
    if (list.length === 1) parts.push(`${one} ${list[0]}`);
    else if (list.length > 1) parts.push(`${list.length} ${many}, e.g. ${list[0]}`);
  };
  part(reshaped, 'tensor', 'tensors of other shapes');
  part(missing, 'missing tensor', 'missing tensors');
  part(unexpected, 'unexpected tensor', 'unexpected tensors');
  if (parts.length === 0) return null;
  // The embedding table tells what the weights were made for.
  const embed = shapes.get('model.embed_tokens.weight');
  const hint = embed?.length === 2 && (embed[0] !== config.vocab_size || embed[1] !== config.hidden_size)
    ? ` (the weights were made for vocab_size ${embed[0]}, hidden_size ${embed[1]}; the config says ${config.vocab_size}, ${config.hidden_size})`
    : '';
  return `${parts.join('; ')}${hint}`;
}

function checkExtraName(dir: string, name: string): void {
  // Plain names only: an extra file must land inside the checkpoint, never beside or above it.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name !== basename(name)) {
    throw new Error(`${dir}: extra file name ${JSON.stringify(name)} must be a plain file name`);
  }
  if (RESERVED.has(name)) throw new Error(`${dir}: extra file "${name}" would overwrite a file the checkpoint writes itself`);
}

/** Save a checkpoint directory, replacing any previous one at `dir` atomically. */
export async function saveCheckpoint(dir: string, opts: SaveCheckpointOptions): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  const config = parseModelConfig(
    { ...opts.config, torch_dtype: dtype === 'BF16' ? 'bfloat16' : dtype === 'F16' ? 'float16' : 'float32' },
    `${dir}: config to save`,
  );
  const mismatch = tensorMismatches(config, new Map([...opts.tensors].map(([n, t]) => [n, t.shape])), () => 'the tensors to save');
  if (mismatch) throw new Error(`${dir}: cannot save: ${mismatch}`);
  const extras = Object.entries(opts.extraFiles ?? {});
  for (const [name] of extras) checkExtraName(dir, name);
  const generation = parseGenerationConfig(
    { bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id, ...(opts.generationConfig ?? defaultGenerationConfig(config)) },
    `${dir}: generation config to save`,
  );

  // Written in the config's canonical order, so identical models give identical files.
  const ordered: Array<[string, TensorToWrite]> = expectedTensors(config).map(({ name }) => {
    const t = opts.tensors.get(name)!;
    const keepF32 = dtype === 'F32' || name.endsWith('.e_score_correction_bias');
    return [name, { dtype: keepF32 ? 'F32' : dtype, shape: t.shape, data: t.data }];
  });

  await replaceDirAtomic(dir, async (tmp) => {
    await writeFile(join(tmp, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
    await writeFile(join(tmp, GENERATION_CONFIG_FILE), `${JSON.stringify(generation, null, 2)}\n`);
    // transformers refuses safetensors whose metadata lacks format "pt".
    await writeSafetensors(join(tmp, WEIGHTS_FILE), ordered, { ...opts.metadata, format: 'pt' });
    for (const [name, content] of extras) {
      const path = join(tmp, name);
      if (typeof content === 'object' && 'copyFrom' in content) await copyFile(content.copyFrom, path);
      else await writeFile(path, content);
    }
  });
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function readJson(path: string): Promise<unknown> {
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

/** Read and validate `config.json` (a path to the file or to its directory). */
export async function readModelConfig(path: string): Promise<ModelConfig> {
  const file = (await isFile(path)) ? path : join(path, CONFIG_FILE);
  return parseModelConfig(await readJson(file), file);
}

/** The directory to read: `dir`, or the last complete version if a crash interrupted a save. */
async function resolveCheckpointDir(dir: string): Promise<string> {
  if (await isFile(join(dir, CONFIG_FILE))) return dir;
  const backup = backupPathFor(dir);
  if (await isFile(join(backup, CONFIG_FILE))) return backup;
  throw new Error(`${dir}: not a checkpoint directory (no ${CONFIG_FILE})`);
}

const STORED_TYPES: Partial<Record<SafetensorsDtype, GgmlType>> = { F32: 'F32', F16: 'F16', BF16: 'BF16' };

/**
 * Opens and validates a checkpoint directory (config, generation config, every tensor's name, dtype
 * and shape) without reading the weights; they come back in their stored dtype when read.
 */
export async function openCheckpoint(dir: string): Promise<ModelFile> {
  const root = await resolveCheckpointDir(dir);
  const config = await readModelConfig(join(root, CONFIG_FILE));
  const genPath = join(root, GENERATION_CONFIG_FILE);
  const generationConfig = (await isFile(genPath)) ? parseGenerationConfig(await readJson(genPath), genPath) : null;

  const single = join(root, WEIGHTS_FILE);
  const index = join(root, WEIGHTS_INDEX_FILE);
  let files: SafetensorsCollection;
  let listing: string;
  if (await isFile(single)) files = await openSafetensorsCollection((listing = single));
  else if (await isFile(index)) files = await openShardedSafetensors((listing = index));
  else throw new Error(`${root}: no ${WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE}`);

  try {
    // A missing tensor is "not in" the file that lists the checkpoint's tensors.
    const fileOf = (name: string) => files.tensors.get(name)?.file ?? listing;
    const tensors = new Map<string, TensorEntry>();
    let weightBytes = 0;
    for (const [name, info] of files.tensors) {
      // Old Llama exports carry the rotary tables as buffers; they are recomputed, never loaded.
      if (name.endsWith('.rotary_emb.inv_freq')) continue;
      const type = STORED_TYPES[info.dtype];
      if (type === undefined) throw new Error(`${info.file}: tensor "${name}" has dtype ${info.dtype}; weights must be F32, F16 or BF16`);
      tensors.set(name, { type, shape: info.shape });
      weightBytes += info.end - info.begin;
    }
    const mismatch = tensorMismatches(config, new Map([...tensors].map(([n, t]) => [n, t.shape])), fileOf);
    if (mismatch) throw new Error(`${root}: checkpoint does not match its ${CONFIG_FILE}: ${mismatch}`);
    return {
      path: root,
      format: 'safetensors',
      config,
      generationConfig,
      tensors,
      weightBytes,
      metadata: files.metadata,
      async read(name: string): Promise<StoredTensor> {
        const t = tensors.get(name);
        if (t === undefined) throw new Error(`${root}: no tensor "${name}"`);
        return { type: t.type, shape: t.shape, bytes: await files.readBytes(name) };
      },
      close: () => files.close(),
    };
  } catch (err) {
    await files.close();
    throw err;
  }
}

/** Load and validate a checkpoint directory; every weight comes back as float32. */
export async function loadCheckpoint(dir: string, opts: LoadCheckpointOptions = {}): Promise<Checkpoint> {
  const file = await openCheckpoint(dir);
  try {
    const alloc = opts.allocF32 ?? ((n: number) => new Float32Array(n));
    const tensors = new Map<string, CheckpointTensor>();
    for (const name of file.tensors.keys()) {
      const t = await file.read(name);
      const data = alloc(t.shape.reduce((a, b) => a * b, 1));
      dequantize(t.type, t.bytes, data);
      tensors.set(name, { shape: t.shape, data });
    }
    const dtype = file.tensors.get('model.embed_tokens.weight')!.type as SafetensorsDtype;
    return { dir: file.path, config: file.config, tensors, generationConfig: file.generationConfig, dtype, metadata: file.metadata };
  } finally {
    await file.close();
  }
}
