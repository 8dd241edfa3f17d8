// Which ggml type each tensor of a GGUF file gets, for each file type nanoseek writes. Plain types
// (f32, f16, bf16, q8_0, q4_0, …) put every matrix in that type; the K-quant mixes (q4_k_m,
// q5_k_m) follow llama.cpp's quantizer, which spends more bits where errors hurt most: the output
// head, and the value projection and FFN down-projection of the first and last eighth of the layers
// plus every third layer between. One-dimensional tensors (norms, biases, the router's correction
// bias, rope_freqs) and the router matrix (ffn_gate_inp) always stay float32, as llama.cpp keeps
// them. Rows that are not whole blocks of the chosen type fall back as llama.cpp falls back.
import { GGML_TYPES, type GgmlType } from '../kernels/quant/types.js';

export const FILE_TYPE_NAMES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k_m', 'q5_k_m', 'q6_k'] as const;
export type FileType = (typeof FILE_TYPE_NAMES)[number];

/** llama.cpp's `general.file_type` numbers (LLAMA_FTYPE_*: not the same as ggml's tensor type ids). */
export const GENERAL_FILE_TYPE: Record<FileType, number> = {
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, q4_k_m: 15, q5_k_m: 17, q6_k: 18, bf16: 32,
};

const BASE_TYPE: Record<FileType, GgmlType> = {
  f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0', q4_0: 'Q4_0', q4_1: 'Q4_1', q5_0: 'Q5_0', q5_1: 'Q5_1', q4_k_m: 'Q4_K', q5_k_m: 'Q5_K', q6_k: 'Q6_K',
};

export function parseFileType(s: string, flag = '--type'): FileType {
  const t = s.toLowerCase();
  if (!(FILE_TYPE_NAMES as readonly string[]).includes(t)) throw new Error(`${flag} must be one of ${FILE_TYPE_NAMES.join(', ')}, got '${s}'`);
  return t as FileType;
}

/** What the mix needs to know about the model. */
export interface MixContext {
  /** block_count: the layer count the per-layer rule divides. */
  layers: number;
  /** Routed experts (0 for dense models): llama.cpp special-cases exactly 8 (Mixtral). */
  experts: number;
  /** No output.weight: token_embd doubles as the head and takes the head's type. */
  tied: boolean;
  /** Layer count 80 with grouped-query attention (llama.cpp's "70B" rule). */
  seventyB: boolean;
  /** Names of the value-like projections (attn_v, attn_qkv, attn_kv_b) in file order, for their ordinal. */
  valueTensors: readonly string[];
}

/** llama.cpp's rule for spending more bits on some layers: the first and last eighth, and every third between. */
function useMoreBits(i: number, n: number): boolean {
  const e = Math.floor(n / 8);
  return i < e || i >= Math.floor((7 * n) / 8) || (i - e) % 3 === 2;
}

function layerOf(name: string): number {
  const m = /^blk\.(\d+)\./.exec(name);
  if (m === null) throw new Error(`quant mix: cannot tell the layer of tensor ${name}`);
  return Number(m[1]);
}

/** Rows of another length than whole blocks: the type llama.cpp falls back to. */
function fallback(type: GgmlType, rowLength: number): GgmlType {
  let t = type;
  if (rowLength % GGML_TYPES[t].blockSize !== 0) {
    t = t === 'Q4_K' ? 'Q5_0' : t === 'Q5_K' ? 'Q5_1' : t === 'Q6_K' ? 'Q8_0' : t;
  }
  return rowLength % GGML_TYPES[t].blockSize === 0 ? t : 'F16';
}

/** Whether llama.cpp would ever quantize this tensor (norms, biases, vectors and the router stay as they are). */
export function isQuantizable(name: string, ne: readonly number[]): boolean {
  return ne.length >= 2 && name.endsWith('weight') && !name.includes('_norm.weight') && !name.includes('ffn_gate_inp.weight');
}

/** The ggml type of tensor `name` (ggml shape `ne`) in a file of type `fileType`. */
export function tensorTypeFor(fileType: FileType, name: string, ne: readonly number[], ctx: MixContext): GgmlType {
  if (!isQuantizable(name, ne)) return 'F32';
  const base = BASE_TYPE[fileType];
  if (fileType === 'f32' || fileType === 'f16' || fileType === 'bf16') return base;
  const nx = ne[0];
  let t = base;
  const kMix = fileType === 'q4_k_m' || fileType === 'q5_k_m';
  const eight = ctx.experts === 8;
  if (name === 'output.weight' || (ctx.tied && name === 'token_embd.weight')) {
    if (nx % GGML_TYPES[base].blockSize !== 0) t = 'Q8_0';
    else if (base !== 'Q8_0') t = 'Q6_K';
  } else if (name === 'token_embd.weight') {
    t = base;
  } else if (/\.(attn_v|attn_qkv|attn_kv_b)\.weight$/.test(name)) {
    if (eight) t = 'Q8_0';
    else if (kMix) {
      const i = ctx.valueTensors.indexOf(name);
      if (useMoreBits(i, ctx.valueTensors.length)) t = 'Q6_K';
      else if (fileType === 'q4_k_m' && ctx.seventyB) t = 'Q5_K';
    }
  } else if (/\.attn_k\.weight$/.test(name)) {
    if (eight) t = 'Q8_0';
  } else if (name.includes('ffn_down')) {
    if (kMix && useMoreBits(layerOf(name), ctx.layers)) t = 'Q6_K';
  } else if (/\.attn_output\.weight$/.test(name)) {
    if (eight && fileType === 'q4_k_m') t = 'Q5_K';
  }
  return fallback(t, nx);
}
