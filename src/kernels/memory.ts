// All float32 tensor data lives in one shared WebAssembly.Memory, so WASM kernels and the worker
// threads that run them read and write tensors in place, with no copies in or out.
// Buffers are recycled through free lists per size class: a training step allocates (nearly) the same
// shapes every time, so after the first steps every allocation is a reuse and nothing is left to the GC.

const PAGE = 65536;
/** Bytes below this offset are left to the WASM modules (their data segments and stack). */
export const HEAP_BASE = 1 << 20;
const MAX_PAGES = 65536; // 4 GiB: the wasm32 limit
const ALIGN = 64; // cache line: SIMD loads never straddle one at a row start

export const memory = new WebAssembly.Memory({ initial: 512, maximum: MAX_PAGES, shared: true });

// Every SharedArrayBuffer that memory.buffer has returned (it changes on each grow): only views on
// these are heap views, not those on some other SharedArrayBuffer that happens to be as large.
const heapBuffers = new WeakSet<ArrayBufferLike>();

let top = HEAP_BASE;
const freeLists = new Map<number, number[]>();
let live = 0;
let peak = 0;

function ensureCapacity(end: number): void {
  const have = memory.buffer.byteLength;
  if (end <= have) return;
  const pages = Math.ceil((end - have) / PAGE);
  const grow = Math.max(pages, Math.ceil(have / PAGE / 4)); // grow by >= 25% to amortise
  const target = Math.min(MAX_PAGES, have / PAGE + grow);
  if (target * PAGE < end) {
    throw new Error(`memory: out of WASM memory (need ${end} bytes, the wasm32 limit is 4 GiB)`);
  }
  memory.grow(target - have / PAGE);
}

/**
 * Bytes reserved for n floats: small sizes round to the cache line, larger ones to one of 8 classes
 * per power of two (at most 12.5% slack). MoE expert batches change size every step; without classes
 * a freed buffer would almost never fit the next request and the heap would grow without bound.
 */
function roundedBytes(n: number): number {
  const bytes = Math.max(n * 4, ALIGN);
  if (bytes <= 4096) return Math.ceil(bytes / ALIGN) * ALIGN;
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 3);
  return Math.ceil(bytes / step) * step;
}

/** A float32 view of n elements inside the shared memory. Contents are NOT zeroed. */
export function allocF32(n: number): Float32Array {
  if (!Number.isInteger(n) || n < 0) throw new Error(`allocF32: bad element count ${n}`);
  const bytes = roundedBytes(n);
  const list = freeLists.get(bytes);
  let offset: number;
  if (list !== undefined && list.length > 0) {
    offset = list.pop()!;
  } else {
    offset = top;
    ensureCapacity(top + bytes);
    top += bytes;
  }
  live += bytes;
  if (live > peak) peak = live;
  heapBuffers.add(memory.buffer);
  return new Float32Array(memory.buffer, offset, n);
}

/** Returns a buffer from allocF32 to its free list. The caller must not use it afterwards. */
export function freeF32(a: Float32Array): void {
  if (a.buffer !== memory.buffer && !(a.buffer instanceof SharedArrayBuffer)) {
    throw new Error('freeF32: buffer does not belong to the WASM heap');
  }
  const bytes = roundedBytes(a.length);
  let list = freeLists.get(bytes);
  if (list === undefined) {
    list = [];
    freeLists.set(bytes, list);
  }
  list.push(a.byteOffset);
  live -= bytes;
}

/** An int32 view of n elements inside the shared memory (index lists the kernels read). Not zeroed. */
export function allocI32(n: number): Int32Array {
  const f = allocF32(n);
  return new Int32Array(f.buffer, f.byteOffset, n);
}

/** Returns a buffer from allocI32. */
export function freeI32(a: Int32Array): void {
  freeF32(new Float32Array(a.buffer, a.byteOffset, a.length));
}

/** True when a typed array is a view on the shared WASM heap (kernels may take it by pointer). */
export function onHeap(a: ArrayBufferView): boolean {
  if (a.byteOffset < HEAP_BASE) return false;
  if (heapBuffers.has(a.buffer)) return true;
  if (a.buffer !== memory.buffer) return false;
  heapBuffers.add(a.buffer);
  return true;
}

export interface HeapStats {
  liveBytes: number;
  peakBytes: number;
  reservedBytes: number;
}

export function heapStats(): HeapStats {
  return { liveBytes: live, peakBytes: peak, reservedBytes: top - HEAP_BASE };
}
