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

  /**
   * `capacity`: tokens to make room for up front. A caller that knows how long the sequence can get
   * (prompt plus the most tokens it may generate) passes it, so the cache never grows: growth by
   * doubling leaves each smaller buffer behind in its size class of the heap, about as many bytes
   * again as the final cache.
   */
  constructor(layers: number, keyWidth: number, valueWidth: number, dtype: DType, capacity = 16) {
    const cap = Math.max(1, Math.ceil(capacity));
    this.keys = Array.from({ length: layers }, () => new GrowableRows(keyWidth, dtype, cap));
    this.values = Array.from({ length: layers }, () => (valueWidth > 0 ? new GrowableRows(valueWidth, dtype, cap) : null));
  }

  /** Bytes one token takes over all layers. */
  get rowBytes(): number {
    const per = this.keys.reduce((s, k, i) => s + k.width + (this.values[i]?.width ?? 0), 0);
    return per * (this.keys[0]?.data instanceof Float64Array ? 8 : 4);
  }

  /** Bytes held for the tokens in the cache. */
  bytes(): number {
    return this.rowBytes * this.length;
  }

  /**
   * A copy of the first `rows` tokens of every layer. Row p depends only on tokens 0..p (attention is
   * causal), so the copy is valid for any sequence that starts with the same `rows` tokens.
   */
  snapshot(rows = this.length): KVSnapshot {
    if (!(Number.isInteger(rows) && rows >= 0 && rows <= this.length)) throw new Error(`KVCache.snapshot: ${rows} rows outside [0, ${this.length}]`);
    // slice() allocates an ordinary (non-shared) array: see KVSnapshot.
    return new KVSnapshot(
      rows,
      this.keys.map((k) => k.data.slice(0, rows * k.width)),
      this.values.map((v) => (v === null ? null : v.data.slice(0, rows * v.width))),
    );
  }

  /** Replaces the contents with the first `rows` tokens of a snapshot of a cache of the same shape and dtype. */
  restore(from: KVSnapshot, rows = from.length): void {
    if (!(Number.isInteger(rows) && rows >= 0 && rows <= from.length)) throw new Error(`KVCache.restore: ${rows} rows outside [0, ${from.length}]`);
    const fits = (dst: GrowableRows | null, src: FloatArray | null): boolean =>
      dst === null ? src === null : src !== null && src.length === from.length * dst.width && src.constructor === dst.data.constructor;
    if (from.keys.length !== this.keys.length || !this.keys.every((k, i) => fits(k, from.keys[i]) && fits(this.values[i], from.values[i]))) {
      throw new Error('KVCache.restore: the snapshot comes from a cache of another shape or dtype');
    }
    this.keys.forEach((k, i) => {
      k.reserve(rows, 0); // the old rows are overwritten: nothing to keep
      k.data.set(from.keys[i].subarray(0, rows * k.width));
      const v = this.values[i];
      if (v !== null) {
        v.reserve(rows, 0);
        v.data.set(from.values[i]!.subarray(0, rows * v.width));
      }
    });
    this.length = rows;
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

/**
 * The first `length` tokens of a KVCache, per layer [length × width] row-major (values null where the
 * cache keeps none, as MLA). The arrays are ordinary ones, not WASM-heap buffers: a snapshot outlives
 * the sequence it was taken from (a prompt prefix kept for reuse), so the GC frees it when it is
 * dropped, and it takes nothing from the heap's 4 GiB or its free lists.
 */
export class KVSnapshot {
  constructor(
    readonly length: number,
    readonly keys: readonly FloatArray[],
    readonly values: readonly (FloatArray | null)[],
  ) {}

  get bytes(): number {
    let n = 0;
    for (const k of this.keys) n += k.byteLength;
    for (const v of this.values) n += v?.byteLength ?? 0;
    return n;
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
