// Where a model's weights come from when it is built from a file rather than initialised at random.
// A file reader (src/io) maps its own names and layouts onto ours — Hugging Face names, [out, in]
// row-major matrices — and hands the model this view; the model pulls each tensor as it is built.
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
}

/**
 * How weights are held once loaded: 'f32' decodes every tensor to float32 on the WASM heap (needed
 * to train; fastest while it fits); 'packed' keeps the projection and embedding matrices in their
 * stored encoding and decodes them on the fly (inference only; lets models beyond the heap run).
 */
export type WeightMode = 'f32' | 'packed';
