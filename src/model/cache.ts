// Per-sequence key/value caches for incremental decoding.
// MLA caches only the compressed latent and the shared rope key: kv_lora_rank + qk_rope_head_dim numbers
// per token per layer. Dense models cache full keys and values for their kv heads.
import { allocF32, freeF32 } from '../kernels/memory.js';
import type { DType, FloatArray } from '../tensor/index.js';

/** Rows of fixed width that grow by doubling. */
export class GrowableRows {
  data: FloatArray;
  capacity: number;

  constructor(readonly width: number, private readonly dtype: DType, capacity = 16) {
    this.capacity = capacity;
    this.data = this.alloc(capacity * width);
  }

  private alloc(n: number): FloatArray {
    return this.dtype === 'f32' ? allocF32(n) : new Float64Array(n);
  }

  /** Makes room for `rows` rows in total, keeping the first `keep` rows. */
  reserve(rows: number, keep: number): void {
    if (rows <= this.capacity) return;
    let cap = this.capacity;
    while (cap < rows) cap *= 2;
    const next = this.alloc(cap * this.width);
    next.set(this.data.subarray(0, keep * this.width));
    this.release();
    this.data = next;
    this.capacity = cap;
  }

  /** The first `rows` rows as a subarray (no copy). */
  rows(rows: number): FloatArray {
    return this.data.subarray(0, rows * this.width);
  }

  release(): void {
    if (this.data instanceof Float32Array) freeF32(this.data);
  }
}

export class KVCache {
  /** Tokens already in the cache (the position of the next token). */
  length = 0;
  /** Per layer: MLA keeps [ckv ‖ k_pe] in `keys` and no values; dense models keep both. */
  readonly keys: GrowableRows[];
  readonly values: (GrowableRows | null)[];
  private disposed = false;

  constructor(layers: number, keyWidth: number, valueWidth: number, dtype: DType) {
    this.keys = Array.from({ length: layers }, () => new GrowableRows(keyWidth, dtype));
    this.values = Array.from({ length: layers }, () => (valueWidth > 0 ? new GrowableRows(valueWidth, dtype) : null));
  }

  /** Bytes held for the tokens in the cache. */
  bytes(): number {
    const per = this.keys.reduce((s, k, i) => s + k.width + (this.values[i]?.width ?? 0), 0);
    return per * this.length * (this.keys[0]?.data instanceof Float64Array ? 8 : 4);
  }

  /** Forgets tokens from position `length` on (e.g. to reuse a shared prompt prefix). */
  truncate(length: number): void {
    if (length < 0 || length > this.length) throw new Error(`KVCache.truncate: ${length} outside [0, ${this.length}]`);
    this.length = length;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const k of this.keys) k.release();
    for (const v of this.values) v?.release();
  }
}

/** One sequence's share of a batched cached forward: its rows in the flat batch and its cache. */
export interface Segment {
  /** First row of this sequence's new tokens in the [M, D] batch. */
  start: number;
  /** Number of new tokens. */
  length: number;
  cache: KVCache;
}
