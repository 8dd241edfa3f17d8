// Where a model's weights come from when it is built from a file rather than initialised at random.
// A file reader (src/io) maps its own names and layouts onto ours — Hugging Face names, [out, in]
// row-major matrices — and hands the model this view; the model pulls each tensor as it is built.
import { firstNonFinite } from '../kernels/quant/index.js';
import type { GgmlType } from '../kernels/quant/types.js';

/** One tensor as stored: its encoding, its shape in our convention, and its bytes (row-major). */
export interface StoredTensor {
  type: GgmlType;
  shape: readonly number[];
  bytes: Uint8Array;
}

export interface WeightSource {
  /** What to call the source in error messages (a file or directory path). */
  readonly label: string;
  /** The tensor of that Hugging Face name, or undefined when the source has none. */
  get(name: string): StoredTensor | undefined;
  /**
   * Skip the check that every stored value is finite (on by default: a NaN or Inf in the weights
   * is a damaged file, refused naming the tensor). The check reads bit patterns only; skipping it
   * saves about 0.35 s of CPU per GiB of weights (BENCHMARKS.md).
   */
  readonly skipFiniteCheck?: boolean;
}

/**
 * How weights are held once loaded: 'f32' decodes every tensor to float32 on the WASM heap (needed
 * to train; fastest while it fits); 'packed' keeps the projection and embedding matrices in their
 * stored encoding and decodes them on the fly (inference only; lets models beyond the heap run).
 */
export type WeightMode = 'f32' | 'packed';

/**
 * Refuses a stored tensor holding NaN or Infinity, naming the source, the tensor and the first bad
 * index (a block type's non-finite scale counts from its block's first value).
 */
export function checkFinite(label: string, name: string, t: StoredTensor): void {
  const at = firstNonFinite(t.type, t.bytes);
  if (at < 0) return;
  const where = t.shape.length === 2 ? ` (row ${Math.floor(at / t.shape[1])}, column ${at % t.shape[1]})` : '';
  throw new Error(
    `${label}: tensor ${name} holds NaN or Infinity at flat index ${at}${where}: the weights are damaged ` +
      '(re-export or re-download them; --no-finite-check loads them anyway)',
  );
}
