// All float32 tensor data lives in one shared WebAssembly.Memory, so WASM kernels and the worker
// threads that run them read and write tensors in place, with no copies in or out.
// Buffers are recycled through exact-size free lists: a training step allocates the same shapes every
// time, so after the first step every allocation is a reuse and the garbage collector has nothing to do.

const PAGE = 65536;
/** Bytes below this offset are left to the WASM modules (their data segments and stack). */
export const HEAP_BASE = 1 << 20;
const MAX_PAGES = 65536; // 4 GiB: the wasm32 limit
const ALIGN = 64; // cache line: SIMD loads never straddle one at a row start

export const memory = new WebAssembly.Memory({ initial: 512, maximum: MAX_PAGES, shared: true });

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

/** Byte size actually reserved for n floats (rounded up so free lists stay few). */
function roundedBytes(n: number): number {
  const bytes = Math.max(n * 4, ALIGN);
  return Math.ceil(bytes / ALIGN) * ALIGN;
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

/** True when a typed array is a view on the shared WASM heap (kernels may take it by pointer). */
export function onHeap(a: ArrayBufferView): boolean {
  return a.buffer instanceof SharedArrayBuffer && a.byteOffset >= HEAP_BASE;
}

export interface HeapStats {
  liveBytes: number;
  peakBytes: number;
  reservedBytes: number;
}

export function heapStats(): HeapStats {
  return { liveBytes: live, peakBytes: peak, reservedBytes: top - HEAP_BASE };
}
