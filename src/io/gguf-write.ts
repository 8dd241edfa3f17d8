// Writing a model as a GGUF file llama.cpp loads: metadata (general.*, the architecture's keys,
// tokenizer.*, sampling defaults), then every tensor of the llama.cpp layout, encoded as the file
// type's mix says. Tensors are produced one at a time from a reader of HF tensors, so memory holds
// at most one tensor (as float32) at a time, whatever the model's size.
import { dequantize, quantize } from '../kernels/quant/index.js';
import { GGML_TYPES, rowBytes, type GgmlType } from '../kernels/quant/types.js';
import type { ModelConfig } from '../model/config.js';
import type { StoredTensor } from '../model/weights.js';
import { ggufVal, writeGguf, type GgufMetadata, type GgufTensorToWrite } from './gguf.js';
import { buildGgufTensor, ggufArchitectureMetadata, ggufArchOf, ggufLayout, permuteRows, ropeFreqsTensor, type GgufTensorPlan, type MlaLayout } from './gguf-model.js';
import { GENERAL_FILE_TYPE, tensorTypeFor, type FileType, type MixContext } from './quant-mix.js';

export interface WriteGgufModelOptions {
  config: ModelConfig;
  fileType: FileType;
  /** Reads one HF tensor in its stored encoding. */
  read: (hf: string) => Promise<StoredTensor>;
  /** tokenizer.* (and tokenizer.chat_template) entries. */
  tokenizer: GgufMetadata;
  /** general.sampling.* and any other extra entries. */
  extra?: GgufMetadata;
  /** general.name */
  name: string;
  mla?: MlaLayout;
  /** Called after each tensor is written. */
  onTensor?: (name: string, type: GgmlType, done: number, total: number) => void;
}

export interface WrittenGguf {
  /** Tensors per ggml type. */
  types: Partial<Record<GgmlType, number>>;
  tensors: number;
}

function asFloat32(t: StoredTensor): Float32Array {
  if (t.type === 'F32' && t.bytes.byteOffset % 4 === 0) return new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.length / 4);
  const out = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
  dequantize(t.type, t.bytes, out);
  return out;
}

/** The mix context llama.cpp's quantizer would derive from this layout. */
export function mixContext(cfg: ModelConfig, plan: readonly GgufTensorPlan[]): MixContext {
  const experts = cfg.model_type === 'deepseek_v3' && cfg.first_k_dense_replace < cfg.num_hidden_layers ? cfg.n_routed_experts : 0;
  return {
    layers: cfg.num_hidden_layers,
    experts,
    tied: cfg.tie_word_embeddings,
    seventyB: cfg.num_hidden_layers === 80 && (cfg.model_type !== 'llama' || cfg.num_key_value_heads !== cfg.num_attention_heads),
    valueTensors: plan.map((t) => t.name).filter((n) => /\.(attn_v|attn_qkv|attn_kv_b)\.weight$/.test(n)),
  };
}

/** Writes `path` atomically. Returns the type census. */
export async function writeGgufModel(path: string, opts: WriteGgufModelOptions): Promise<WrittenGguf> {
  const cfg = opts.config;
  const mla = opts.mla ?? 'split';
  const plan = ggufLayout(cfg, mla);
  const ctx = mixContext(cfg, plan);
  const meta: GgufMetadata = new Map();
  meta.set('general.architecture', ggufVal.string(ggufArchOf(cfg)));
  meta.set('general.type', ggufVal.string('model'));
  meta.set('general.name', ggufVal.string(opts.name));
  meta.set('general.file_type', ggufVal.u32(GENERAL_FILE_TYPE[opts.fileType]));
  meta.set('general.quantization_version', ggufVal.u32(2));
  for (const [k, v] of opts.extra ?? []) meta.set(k, v);
  for (const [k, v] of ggufArchitectureMetadata(cfg, mla)) meta.set(k, v);
  for (const [k, v] of opts.tokenizer) meta.set(k, v);

  const tensors: GgufTensorToWrite[] = [];
  const types: Partial<Record<GgmlType, number>> = {};
  const total = plan.length + (ropeFreqsTensor(cfg) ? 1 : 0);
  let done = 0;
  const count = (name: string, type: GgmlType) => {
    types[type] = (types[type] ?? 0) + 1;
    opts.onTensor?.(name, type, ++done, total);
  };
  const freqs = ropeFreqsTensor(cfg);
  if (freqs !== null) {
    tensors.push({ name: 'rope_freqs.weight', ne: [freqs.length], type: 'F32', data: () => (count('rope_freqs.weight', 'F32'), new Uint8Array(freqs.buffer)) });
  }
  for (const t of plan) {
    const type = tensorTypeFor(opts.fileType, t.name, t.ne, ctx);
    tensors.push({
      name: t.name,
      ne: t.ne,
      type,
      data: async () => {
        const bytes = await encodeTensor(cfg, t, type, opts.read);
        count(t.name, type);
        return bytes;
      },
    });
  }
  await writeGguf(path, meta, tensors);
  return { types, tensors: tensors.length };
}

/** One GGUF tensor's bytes: copied as stored when nothing changes, else decoded, rearranged and encoded. */
async function encodeTensor(cfg: ModelConfig, t: GgufTensorPlan, type: GgmlType, read: (hf: string) => Promise<StoredTensor>): Promise<Uint8Array> {
  const p = t.piece;
  if (p.kind === 'empty') return new Uint8Array(0);
  if (p.kind === 'copy') {
    const s = await read(p.hf);
    // Same encoding: the bytes as they are, rows reordered whole (no second rounding).
    if (s.type === type) return p.perm === undefined ? s.bytes : permuteRows(s.bytes, p.perm, rowBytes(type, t.ne[0]));
    return quantize(type, buildGgufTensor(cfg, t, () => asFloat32(s)));
  }
  const names = p.kind === 'experts' ? p.hf : [p.hf];
  const loaded = new Map<string, Float32Array>();
  if (p.kind === 'experts' && names.length > 0) {
    // Experts already in the target encoding are stacked as bytes.
    const first = await read(names[0]);
    if (first.type === type && GGML_TYPES[type].blockSize <= t.ne[0]) {
      const parts = [first.bytes];
      for (const n of names.slice(1)) parts.push((await read(n)).bytes);
      const out = new Uint8Array(parts.reduce((a, b) => a + b.length, 0));
      let o = 0;
      for (const b of parts) {
        out.set(b, o);
        o += b.length;
      }
      return out;
    }
    loaded.set(names[0], asFloat32(first));
  }
  for (const n of names) if (!loaded.has(n)) loaded.set(n, asFloat32(await read(n)));
  const f32 = buildGgufTensor(cfg, t, (hf) => loaded.get(hf)!);
  return quantize(type, f32);
}
