// A model on disk, whatever its format: a Hugging Face checkpoint directory (config.json +
// safetensors) or a GGUF file. Opening one reads and validates the configuration and the tensor
// list only; tensors are read when asked for, already mapped onto nanoseek's names and layouts
// (Hugging Face names, [out, in] row-major), in the encoding the file stores them.
import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { rowBytes, type GgmlType } from '../kernels/quant/types.js';
import { expectedTensors, type ModelConfig } from '../model/config.js';
import { CausalLM } from '../model/model.js';
import { checkFinite, type StoredTensor, type WeightMode, type WeightSource } from '../model/weights.js';
import { modelCard, type ModelCard } from './model-card.js';
import { PackedMatrix, type DType } from '../tensor/index.js';
import { openCheckpoint, saveCheckpoint, type CheckpointTensor, type GenerationConfig, type SaveCheckpointOptions } from './checkpoint.js';
import { isGgufFile, openGgufModel, type GgufModelFile } from './gguf-model.js';
import { tokenizerFromGguf } from './gguf-tokenizer.js';
import { loadTokenizer, type Tokenizer } from '../tokenizer/index.js';

export interface TensorEntry {
  type: GgmlType;
  shape: readonly number[];
}

export interface ModelFile {
  /** The path read: a checkpoint directory (or its backup after an interrupted save), or a .gguf file. */
  path: string;
  format: 'safetensors' | 'gguf';
  config: ModelConfig;
  /** Sampling defaults (generation_config.json, or GGUF's general.sampling.* keys), if any. */
  generationConfig: GenerationConfig | null;
  /** Every tensor the config implies, by Hugging Face name: stored type and shape. */
  tensors: ReadonlyMap<string, TensorEntry>;
  /** Total bytes of tensor data on disk. */
  weightBytes: number;
  /** Format-level metadata: safetensors `__metadata__` strings. */
  metadata: Record<string, string>;
  /** One tensor's stored bytes (reads the file). */
  read(name: string): Promise<StoredTensor>;
  close(): Promise<void>;
}

/** Reads every tensor of an open model file (for building a model or converting it). */
export async function readAllTensors(file: ModelFile, names: Iterable<string> = file.tensors.keys()): Promise<Map<string, StoredTensor>> {
  const out = new Map<string, StoredTensor>();
  for (const name of names) out.set(name, await file.read(name));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Models from and to files

/** Above this many bytes of float32 weights, 'auto' keeps matrices packed rather than widening them. */
const AUTO_F32_LIMIT = 2 ** 30;

export interface LoadModelOptions {
  /** float32 (default) or float64 (gradient checks). */
  dtype?: DType;
  /**
   * 'f32' widens every weight (needed to train), 'packed' keeps stored encodings for inference,
   * 'auto' (default) widens while the float32 model stays under 1 GiB and packs beyond.
   */
  weights?: WeightMode | 'auto';
  /** Refuse weights holding NaN or Infinity, naming the tensor (default true; false saves about 0.35 s of CPU per GiB). */
  checkFinite?: boolean;
}

export interface LoadedModel {
  model: CausalLM;
  /** The file it came from (closed; its config, metadata and tensor list stay readable). */
  file: ModelFile;
}

/** Opens a model: a checkpoint directory or a GGUF file. */
export async function openModelFile(path: string): Promise<ModelFile> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${path}: no such file or directory (expected a checkpoint directory or a .gguf file)`);
    throw err;
  }
  if (st.isDirectory()) return openCheckpoint(path);
  if (await isGgufFile(path)) return openGgufModel(path);
  throw new Error(`${path}: not a model (expected a checkpoint directory with config.json, or a .gguf file)`);
}

export function chooseWeightMode(file: ModelFile, requested: LoadModelOptions['weights'] = 'auto'): WeightMode {
  if (requested !== 'auto') return requested;
  let floats = 0;
  for (const t of file.tensors.values()) floats += t.shape.reduce((a, b) => a * b, 1);
  return floats * 4 > AUTO_F32_LIMIT ? 'packed' : 'f32';
}

/** Reads a model (every tensor checked for name and shape against its config). */
export async function loadModel(path: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  return loadModelFrom(await openModelFile(path), opts);
}

/** Builds the model of an opened file, then closes the file. */
export async function loadModelFrom(file: ModelFile, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  try {
    const dtype = opts.dtype ?? 'f32';
    const weights = dtype === 'f64' ? 'f32' : chooseWeightMode(file, opts.weights);
    const stored = await readAllTensors(file);
    const source: WeightSource = { label: file.path, get: (name) => stored.get(name), skipFiniteCheck: opts.checkFinite === false };
    const model = new CausalLM(file.config, { dtype, source, weights });
    return { model, file };
  } finally {
    await file.close();
  }
}

/**
 * The tokenizer that belongs to a model file: a checkpoint directory's tokenizer.json (with its
 * tokenizer_config.json), or the tokenizer a GGUF file carries in its metadata.
 */
export async function modelTokenizer(file: ModelFile): Promise<Tokenizer> {
  if (file.format === 'gguf') return tokenizerFromGguf((file as GgufModelFile).gguf.metadata, file.path).tokenizer;
  const json = join(file.path, 'tokenizer.json');
  if (!(await stat(json).then((s) => s.isFile(), () => false))) {
    throw new Error(`${file.path} has no tokenizer.json: pass --tokenizer <tokenizer.json or directory>`);
  }
  return loadTokenizer(file.path);
}

/**
 * The tokenizer to run a model with: `tokenizerPath`'s, else the model's own; refused when it has
 * more tokens than the model has embedding rows.
 */
export async function tokenizerFor(file: ModelFile, tokenizerPath?: string): Promise<Tokenizer> {
  const tokenizer = tokenizerPath !== undefined ? await loadTokenizer(tokenizerPath) : await modelTokenizer(file);
  if (tokenizer.vocabSize > file.config.vocab_size) {
    throw new Error(`${tokenizerPath ?? file.path}: the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${file.config.vocab_size}: they do not belong together`);
  }
  return tokenizer;
}

export interface ModelFileCheck {
  tokenizer: Tokenizer;
  card: ModelCard | null;
  /** Tensors whose bytes were read and found finite (0 with checkFinite false). */
  tensorsChecked: number;
}

/**
 * Everything a model file needs to be used, beyond what opening it checks (config, tensor names,
 * shapes and byte ranges): every tensor's values finite (reads all the weights; skipped with
 * checkFinite false), a tokenizer that loads and fits the vocabulary, a valid model card. The first
 * problem is thrown, naming the file and what to do.
 */
export async function checkModelFile(file: ModelFile, opts: { tokenizer?: string; checkFinite?: boolean } = {}): Promise<ModelFileCheck> {
  let tensorsChecked = 0;
  if (opts.checkFinite !== false) {
    for (const name of file.tensors.keys()) {
      checkFinite(file.path, name, await file.read(name));
      tensorsChecked++;
    }
  }
  const tokenizer = await tokenizerFor(file, opts.tokenizer);
  return { tokenizer, card: await modelCard(file), tensorsChecked };
}

/** The name a server calls a model by: its directory or file name, without .gguf. */
export function modelName(path: string): string {
  return basename(resolve(path)).replace(/\.gguf$/i, '');
}

/** The model's tensors by checkpoint name, as float32 (views without a copy where they are float32 already). */
export function modelTensors(model: CausalLM): Map<string, CheckpointTensor> {
  const out = new Map<string, CheckpointTensor>();
  const aliases = model.aliases();
  for (const { name, shape } of expectedTensors(model.config)) {
    const w = model.params.weight(aliases.get(name) ?? name);
    const data = w instanceof PackedMatrix ? w.toFloat32() : w.data instanceof Float32Array ? w.data : Float32Array.from(w.data);
    out.set(name, { shape, data });
  }
  return out;
}

/** Writes the model as a checkpoint directory, atomically: an interrupted save leaves the previous one loadable. */
export async function saveModel(model: CausalLM, dir: string, opts: Omit<SaveCheckpointOptions, 'config' | 'tensors'> = {}): Promise<void> {
  await saveCheckpoint(dir, { ...opts, config: model.config, tensors: modelTensors(model) });
}

/** The tokenizer of a model path (checkpoint directory or GGUF file). */
export async function loadModelTokenizer(path: string): Promise<Tokenizer> {
  const file = await openModelFile(path);
  try {
    return await modelTokenizer(file);
  } finally {
    await file.close();
  }
}

/** The config of a model path, validated with its tensor list (no weights read). */
export async function readModelFileConfig(path: string): Promise<ModelConfig> {
  const file = await openModelFile(path);
  await file.close();
  return file.config;
}

export interface ModelFileSummary {
  format: ModelFile['format'];
  path: string;
  /** Tensor data on disk. */
  weightBytes: number;
  /** Tensors per stored type. */
  types: Partial<Record<GgmlType, number>>;
  /** How `loadModel` would hold the weights by default. */
  weights: WeightMode;
  /** Memory the weights take once loaded that way (the KV cache comes on top). */
  residentBytes: number;
}

/**
 * Whether the model keeps a tensor packed in 'packed' mode: projection and embedding matrices do;
 * vectors, the MoE router and MLA's kv_b (sliced per head when decoding) are widened to float32.
 */
function keptPacked(name: string, t: TensorEntry): boolean {
  return t.shape.length === 2 && t.type !== 'F32' && !name.endsWith('.kv_b_proj.weight') && !name.endsWith('.mlp.gate.weight');
}

export function summarizeModelFile(file: ModelFile, weights?: LoadModelOptions['weights']): ModelFileSummary {
  const mode = chooseWeightMode(file, weights);
  const types: Partial<Record<GgmlType, number>> = {};
  let resident = 0;
  // A GGUF is described by its own tensors (experts stacked, MLA's k_b/v_b), a checkpoint by its files'.
  const stored = file.format === 'gguf' ? [...(file as GgufModelFile).gguf.tensors.values()].map((t) => t.type) : [...file.tensors.values()].map((t) => t.type);
  for (const t of stored) types[t] = (types[t] ?? 0) + 1;
  for (const [name, t] of file.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    resident += mode === 'packed' && keptPacked(name, t) ? rowBytes(t.type, t.shape[1]) * t.shape[0] : n * 4;
  }
  return { format: file.format, path: file.path, weightBytes: file.weightBytes, types, weights: mode, residentBytes: resident };
}
