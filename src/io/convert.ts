// `nanoseek convert`: a model from one format to the other — a Hugging Face directory or a GGUF file
// in, a GGUF file (any type nanoseek writes, with the complete metadata llama.cpp needs) or a
// Hugging Face directory (f32, f16 or bf16) out. The tokenizer and chat template travel with it.
import { stat } from 'node:fs/promises';
import { dequantize } from '../kernels/quant/index.js';
import type { GgmlType } from '../kernels/quant/types.js';
import type { StoredTensor } from '../model/weights.js';
import { ByteLevelBpeTokenizer } from '../tokenizer/index.js';
import { defaultGenerationConfig, saveCheckpoint, type CheckpointTensor } from './checkpoint.js';
import type { GgufMetadata } from './gguf.js';
import type { GgufModelFile } from './gguf-model.js';
import { ggufSamplingMetadata } from './gguf-model.js';
import { tokenizerToGguf } from './gguf-tokenizer.js';
import { writeGgufModel } from './gguf-write.js';
import { modelName, modelTokenizer, openModelFile, type ModelFile } from './model-file.js';
import type { FileType } from './quant-mix.js';

export interface ConvertOptions {
  /**
   * The output's type. GGUF: any FileType (default: the input's float type, f16 for quantized
   * inputs). Hugging Face directory: f32, f16 or bf16 (default bf16, or f32 for an all-f32 input).
   */
  type?: FileType;
  /** general.name of a GGUF output (default: the input's name). */
  name?: string;
  /** Progress, one line per tensor. */
  onTensor?: (name: string, type: GgmlType, done: number, total: number) => void;
}

export interface ConvertReport {
  format: 'gguf' | 'safetensors';
  type: FileType;
  /** Output tensors per stored type. */
  types: Partial<Record<GgmlType, number>>;
  bytes: number;
}

/** The float type that represents a file's weights without loss where possible. */
function naturalType(file: ModelFile): FileType {
  const types = new Set([...file.tensors.values()].filter((t) => t.shape.length >= 2).map((t) => t.type));
  if (types.size === 1 && types.has('F32')) return 'f32';
  if ([...types].every((t) => t === 'BF16' || t === 'F32')) return 'bf16';
  if ([...types].every((t) => t === 'F16' || t === 'F32')) return 'f16';
  return 'f16';
}

export function isGgufPath(path: string): boolean {
  return /\.gguf$/i.test(path);
}

/** Converts `input` (checkpoint directory or .gguf) into `output` (a path ending in .gguf, or a directory). */
export async function convertModel(input: string, output: string, opts: ConvertOptions = {}): Promise<ConvertReport> {
  const file = await openModelFile(input);
  try {
    return isGgufPath(output) ? await toGguf(file, input, output, opts) : await toCheckpoint(file, output, opts);
  } finally {
    await file.close();
  }
}

async function toGguf(file: ModelFile, input: string, output: string, opts: ConvertOptions): Promise<ConvertReport> {
  const type = opts.type ?? naturalType(file);
  let tokenizerMeta: GgufMetadata;
  if (file.format === 'gguf') {
    // The input's tokenizer entries, exactly as they were.
    tokenizerMeta = new Map([...(file as GgufModelFile).gguf.metadata].filter(([k]) => k.startsWith('tokenizer.') || k.startsWith('nanoseek.tokenizer.')));
  } else {
    const tokenizer = await modelTokenizer(file);
    if (!(tokenizer instanceof ByteLevelBpeTokenizer)) throw new Error(`${file.path}: only byte-level BPE tokenizers can be written to GGUF`);
    const c = file.config;
    const id = (v: number | number[] | null) => (typeof v === 'number' ? v : Array.isArray(v) ? v[0] : undefined);
    tokenizerMeta = tokenizerToGguf(tokenizer, { vocabSize: c.vocab_size, configIds: { bos: id(c.bos_token_id), eos: id(c.eos_token_id), pad: id(c.pad_token_id) } });
  }
  const written = await writeGgufModel(output, {
    config: file.config,
    fileType: type,
    name: opts.name ?? modelName(input),
    tokenizer: tokenizerMeta,
    extra: ggufSamplingMetadata(file.generationConfig ?? defaultGenerationConfig(file.config)),
    read: (hf) => file.read(hf),
    onTensor: opts.onTensor,
  });
  return { format: 'gguf', type, types: written.types, bytes: (await stat(output)).size };
}

async function toCheckpoint(file: ModelFile, output: string, opts: ConvertOptions): Promise<ConvertReport> {
  const type = opts.type ?? (naturalType(file) === 'f32' ? 'f32' : 'bf16');
  if (type !== 'f32' && type !== 'bf16' && type !== 'f16') {
    throw new Error(`--type ${type}: a Hugging Face directory stores f32, f16 or bf16 weights (quantized types are GGUF only)`);
  }
  const tokenizer = await modelTokenizer(file);
  if (!(tokenizer instanceof ByteLevelBpeTokenizer)) throw new Error(`${file.path}: the tokenizer cannot be saved`);
  const tensors = new Map<string, CheckpointTensor>();
  let done = 0;
  const dtype = type === 'f32' ? 'F32' : type === 'f16' ? 'F16' : 'BF16';
  for (const name of file.tensors.keys()) {
    const t: StoredTensor = await file.read(name);
    const data = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
    dequantize(t.type, t.bytes, data);
    tensors.set(name, { shape: t.shape, data });
    opts.onTensor?.(name, name.endsWith('e_score_correction_bias') ? 'F32' : dtype, ++done, file.tensors.size);
  }
  await saveCheckpoint(output, {
    config: file.config,
    tensors,
    dtype,
    generationConfig: file.generationConfig ?? defaultGenerationConfig(file.config),
    extraFiles: {
      'tokenizer.json': `${JSON.stringify(tokenizer.toJSON(), null, 2)}\n`,
      'tokenizer_config.json': `${JSON.stringify(tokenizer.configJSON(), null, 2)}\n`,
    },
  });
  let bytes = 0;
  for (const t of tensors.values()) bytes += t.data.length * (type === 'f32' ? 4 : 2);
  return { format: 'safetensors', type, types: { [dtype]: tensors.size }, bytes };
}
