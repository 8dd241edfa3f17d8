// Models to and from Hugging Face checkpoint directories (config.json + model.safetensors + …).
import { loadCheckpoint, saveCheckpoint, type Checkpoint, type CheckpointTensor, type SaveCheckpointOptions } from '../io/checkpoint.js';
import type { DType } from '../tensor/index.js';
import { expectedTensors } from './config.js';
import { CausalLM } from './model.js';

export interface LoadedModel {
  model: CausalLM;
  checkpoint: Checkpoint;
}

/** Reads a checkpoint directory into a new model (every tensor checked for name and shape). */
export async function loadModel(dir: string, opts: { dtype?: DType } = {}): Promise<LoadedModel> {
  const checkpoint = await loadCheckpoint(dir);
  const model = new CausalLM(checkpoint.config, { dtype: opts.dtype ?? 'f32' });
  for (const [name, param] of model.params.tensors) {
    const t = checkpoint.tensors.get(name);
    if (t === undefined) throw new Error(`${checkpoint.dir}: tensor ${name} is missing`);
    if (t.data.length !== param.size) throw new Error(`${checkpoint.dir}: tensor ${name} has ${t.data.length} values, the model needs ${param.size}`);
    param.data.set(t.data);
  }
  checkpoint.tensors.clear(); // the model holds the only copy now
  return { model, checkpoint };
}

/** The model's tensors by checkpoint name (float32 views, no copy for float32 models). */
export function modelTensors(model: CausalLM): Map<string, CheckpointTensor> {
  const out = new Map<string, CheckpointTensor>();
  const aliases = model.aliases();
  for (const { name } of expectedTensors(model.config)) {
    const t = model.params.tensors.get(aliases.get(name) ?? name);
    if (t === undefined) throw new Error(`model has no tensor ${name} that config.json implies`);
    out.set(name, { shape: t.shape, data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data) });
  }
  return out;
}

/** Writes the model atomically: an interrupted save leaves the previous checkpoint loadable. */
export async function saveModel(model: CausalLM, dir: string, opts: Omit<SaveCheckpointOptions, 'config' | 'tensors'> = {}): Promise<void> {
  await saveCheckpoint(dir, { ...opts, config: model.config, tensors: modelTensors(model) });
}
