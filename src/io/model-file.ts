// A model on disk, whatever its format: a Hugging Face checkpoint directory (config.json +
// safetensors) or a GGUF file. Opening one reads and validates the configuration and the tensor
// list only; tensors are read when asked for, already mapped onto nanoseek's names and layouts
// (Hugging Face names, [out, in] row-major), in the encoding the file stores them.
import { stat } from 'node:fs/promises';
import type { GgmlType } from '../kernels/quant/types.js';
import { expectedTensors, type ModelConfig } from '../model/config.js';
import { CausalLM } from '../model/model.js';
import type { StoredTensor, WeightMode, WeightSource } from '../model/weights.js';
import { PackedMatrix, type DType } from '../tensor/index.js';
import { openCheckpoint, saveCheckpoint, type CheckpointTensor, type GenerationConfig, type SaveCheckpointOptions } from './checkpoint.js';
import { isGgufFile, openGgufModel } from './gguf-model.js';

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
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${path}: no such file or directory`);
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
  const file = await openModelFile(path);
  try {
    const dtype = opts.dtype ?? 'f32';
    const weights = dtype === 'f64' ? 'f32' : chooseWeightMode(file, opts.weights);
    const stored = await readAllTensors(file);
    const source: WeightSource = { label: file.path, get: (name) => stored.get(name) };
    const model = new CausalLM(file.config, { dtype, source, weights });
    return { model, file };
  } finally {
    await file.close();
  }
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
