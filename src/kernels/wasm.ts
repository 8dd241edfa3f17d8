// The WASM SIMD backend: kernels compiled from ./asm, run on the calling thread plus a pool of worker
// threads that all instantiate the same module on the one shared memory. A call writes its arguments
// into a job block on the heap and wakes the pool through Atomics on that block (postMessage costs
// tens of microseconds, more than a small GEMM); every thread then claims chunks of the job until
// none are left (see work() in asm/jobs.ts), and the caller returns once all chunks are done.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { AdamWArgs, Backend, DeviceTimes, ExpertBatch, FloatArray, GemmArgs, RowMask } from './backend.js';
import { allocF32, allocI32, freeF32, freeI32, memory, onHeap } from './memory.js';
import {
  adamwReference, copyRowsReference, expertsReference, gatherRowsReference, gemmReference, logSumExpRowsReference, rmsnormBackwardReference,
  rmsnormReference, rowDotsReference, scatterAddRowsReference, softmaxBackwardRowsReference, softmaxRowsReference,
  softmaxXentBackwardReference, sumSquaresReference, swigluBackwardReference, swigluReference,
} from './reference.js';
import { dequantize, type GgmlType } from './quant/index.js';
import {
  checkAdamW, checkCopyRows, checkExperts, checkGatherRows, checkGemm, checkLogSumExpRows, checkRmsnorm, checkRmsnormBackward, checkRowDots,
  checkScatterAddRows, checkSoftmaxBackwardRows, checkSoftmaxRows, checkSoftmaxXentBackward, checkSumSquares, checkSwiglu,
  checkSwigluBackward,
} from './validate.js';

export type SimdVariant = 'relaxed' | 'simd';

interface KernelExports {
  scratchBytes(): number;
  maxThreads(): number;
  close(job: number): void;
  plan(job: number, gen: number): void;
  work(job: number, gen: number, thread: number): number;
}

// Job block words (the layout plan() and work() in asm/jobs.ts read).
const J_KIND = 0;
const J_THREADS = 1;
const J_SCRATCH = 2;
const KIND_GEMM = 1;
const KIND_ADAMW = 2;
const KIND_ROWS = 3;
const KIND_EXPERTS = 4;
const G = { m: 3, n: 4, k: 5, a: 6, lda: 7, transA: 8, b: 9, ldb: 10, transB: 11, c: 12, ldc: 13, alpha: 14, beta: 15, batch: 16, strideA: 17, strideB: 18, strideC: 19 };
const W = { n: 3, param: 4, grad: 5, m: 6, v: 7, gradScale: 8, beta1: 9, beta2: 10, eps: 11, decay: 12, stepSize: 13, invBc2: 14 };
// Row-wise kernels: op, units to split, work per unit, chunk alignment, then 5 pointers, 3 integers, 1 real.
const R = { op: 3, units: 4, cost: 5, align: 6, p0: 7, i0: 12, x0: 15 };
const OP = { swiglu: 1, swigluBackward: 2, rmsnorm: 3, rmsnormBackwardX: 4, rmsnormBackwardW: 5, logSumExp: 6, xentBackward: 7, softmax: 8, softmaxBackward: 9, copyRows: 10, sumSquares: 11, gatherRows: 12, scatterRows: 13, rowDots: 14 };
const X = { dim: 3, hidden: 4, x: 5, out: 6, tasks: 7, starts: 8, devices: 9, buffers: 10, times: 11 };
const P_TOTAL = 20;
// Control words, each on its own cache line (S_NEXT = 48 and S_DONE = 64 belong to the kernels).
const C_GEN = 32;
const S_DONE = 64;
const C_READY = 80;
const C_ERROR = 81;
const BLOCK_WORDS = 96;

// Below this much work a call runs on the calling thread alone: waking the pool costs more.
const PARALLEL_MIN_FLOPS = 1 << 22;
// The same for row-wise kernels, in units × work per unit (about one element operation each).
const PARALLEL_MIN_WORK = 1 << 15;
// A job is never cut into more chunks than this per thread (CHUNKS_PER_THREAD in asm/jobs.ts).
const MAX_CHUNKS_PER_THREAD = 4;
// Contiguous copies are cut into rows of this many floats.
const CONTIGUOUS_ROW = 1024;
// Polls of a control word (about 50 µs) before sleeping on it: waking a sleeping thread takes about as
// long again, so back-to-back calls find the workers awake, while an idle pool does not burn cores.
const SPIN = 6000;

function kernelPath(variant: SimdVariant): string {
  const file = `kernels-${variant}.wasm`;
  // build/ sits next to src/ when run from source (tsx) and next to dist/ when compiled.
  for (const up of ['../../build/', '../../../build/']) {
    const url = new URL(up + file, import.meta.url);
    if (existsSync(url)) return fileURLToPath(url);
  }
  throw new Error(`wasm backend: build/${file} not found: run \`npm run build:kernels\` (or set NANOSEEK_BACKEND=reference)`);
}

const modules = new Map<SimdVariant, WebAssembly.Module>();

function compile(variant: SimdVariant): WebAssembly.Module {
  let mod = modules.get(variant);
  if (mod === undefined) {
    mod = new WebAssembly.Module(readFileSync(kernelPath(variant)));
    modules.set(variant, mod);
  }
  return mod;
}

let relaxed: boolean | undefined;

/** Whether this engine runs relaxed SIMD (Node 20 only behind a V8 flag, which this turns on). */
export function relaxedSimdSupported(): boolean {
  if (relaxed === undefined) {
    const bytes = readFileSync(kernelPath('relaxed'));
    relaxed = WebAssembly.validate(bytes);
    if (!relaxed) {
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
      relaxed = WebAssembly.validate(bytes);
    }
  }
  return relaxed;
}

/** Milliseconds on one clock for every thread (each thread's performance.now() has its own origin). */
function now(): number {
  return performance.timeOrigin + performance.now();
}

// Runs in each worker: instantiate, report ready, then loop forever on the control block. The module
// arrives compiled, so workers share the caller's machine code and its SIMD variant.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, block, index } = workerData;
const now = () => performance.timeOrigin + performance.now();
const { work } = new WebAssembly.Instance(module, { env: { memory, now } }).exports;
const ctrl = new Int32Array(memory.buffer, block, ${BLOCK_WORDS});
Atomics.add(ctrl, ${C_READY}, 1);
Atomics.notify(ctrl, ${C_READY});
let seen = 0;
for (;;) {
  let gen;
  let spins = 0;
  while ((gen = Atomics.load(ctrl, ${C_GEN})) === seen) {
    if (++spins === ${SPIN}) {
      Atomics.wait(ctrl, ${C_GEN}, seen);
      spins = 0;
    }
  }
  seen = gen;
  try {
    if (work(block, gen, index)) Atomics.notify(ctrl, ${S_DONE});
  } catch (err) {
    Atomics.store(ctrl, ${C_ERROR}, index);
    Atomics.notify(ctrl, ${S_DONE});
    console.error(err);
  }
}
`;

export interface WasmBackendOptions {
  /** Threads per call, the caller included (default: all cores). */
  threads?: number;
  /** Instruction set (default: relaxed where the engine has it). */
  simd?: SimdVariant;
  /** Floating-point operations below which a call stays on the calling thread (tests lower it). */
  parallelMinFlops?: number;
  /** The same for row-wise kernels, in element operations. */
  parallelMinWork?: number;
}

/**
 * True for a float32 (or int32 index) view on the WASM heap, and for null (an absent gradient): the
 * kernels take only such arrays by pointer; anything else (float64, plain arrays) goes to the reference.
 */
function heapF32(x: FloatArray | Int32Array | null): boolean {
  return x === null || ((x instanceof Float32Array || x instanceof Int32Array) && onHeap(x));
}

export class WasmBackend implements Backend {
  readonly name = 'wasm';
  readonly threads: number;
  readonly simd: SimdVariant;
  private readonly parallelMinFlops: number;
  private readonly parallelMinWork: number;
  private readonly kernels: KernelExports;
  private readonly block: Float32Array;
  private readonly words: Int32Array;
  private readonly reals: Float32Array;
  private readonly scratch: Float32Array[] = [];
  private readonly scratchTable: Float32Array;
  private readonly workers: Worker[] = [];
  /** One float64 partial result per chunk of a reduction (sumSquares). */
  private readonly partials: Float64Array;

  constructor(opts: WasmBackendOptions = {}) {
    const threads = opts.threads ?? os.availableParallelism();
    this.simd = opts.simd ?? (relaxedSimdSupported() ? 'relaxed' : 'simd');
    if (this.simd === 'relaxed' && !relaxedSimdSupported()) throw new Error('wasm backend: this engine has no relaxed SIMD');
    const mod = compile(this.simd);
    this.kernels = new WebAssembly.Instance(mod, { env: { memory, now } }).exports as unknown as KernelExports;
    const most = this.kernels.maxThreads();
    if (!Number.isInteger(threads) || threads < 1 || threads > most) {
      throw new Error(`wasm backend: threads must be an integer from 1 to ${most}, got ${threads}`);
    }
    this.threads = threads;
    this.parallelMinFlops = opts.parallelMinFlops ?? PARALLEL_MIN_FLOPS;
    this.parallelMinWork = opts.parallelMinWork ?? PARALLEL_MIN_WORK;

    this.block = allocF32(BLOCK_WORDS);
    this.block.fill(0);
    this.words = new Int32Array(this.block.buffer, this.block.byteOffset, BLOCK_WORDS);
    this.reals = new Float32Array(this.block.buffer, this.block.byteOffset, BLOCK_WORDS);
    this.scratchTable = allocF32(threads);
    const table = new Uint32Array(this.scratchTable.buffer, this.scratchTable.byteOffset, threads);
    const scratchFloats = this.kernels.scratchBytes() / 4;
    for (let t = 0; t < threads; t++) {
      const s = allocF32(scratchFloats);
      s.fill(0); // no job tag (see work() in asm/jobs.ts)
      this.scratch.push(s);
      table[t] = s.byteOffset;
    }
    this.words[J_SCRATCH] = this.scratchTable.byteOffset;
    const partials = allocF32(2 * MAX_CHUNKS_PER_THREAD * threads);
    this.partials = new Float64Array(partials.buffer, partials.byteOffset, MAX_CHUNKS_PER_THREAD * threads);

    for (let t = 1; t < threads; t++) {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module: mod, memory, block: this.block.byteOffset, index: t },
      });
      w.unref();
      this.workers.push(w);
    }
    // Workers boot on their own threads, so blocking here until all have instantiated is safe and
    // keeps construction synchronous.
    for (;;) {
      const ready = Atomics.load(this.words, C_READY);
      if (ready === threads - 1) break;
      if (Atomics.wait(this.words, C_READY, ready, 30_000) === 'timed-out') {
        throw new Error(`wasm backend: only ${ready} of ${threads - 1} worker threads started`);
      }
    }
  }

  gemm(g: GemmArgs): void {
    checkGemm(g);
    if (g.m === 0 || g.n === 0 || g.batch === 0) return;
    if (!(g.a instanceof Float32Array && g.b instanceof Float32Array && g.c instanceof Float32Array) ||
        !onHeap(g.a) || !onHeap(g.b) || !onHeap(g.c)) {
      gemmReference(g);
      return;
    }
    this.kernels.close(this.block.byteOffset);
    const w = this.words;
    const r = this.reals;
    w[J_KIND] = KIND_GEMM;
    w[G.m] = g.m;
    w[G.n] = g.n;
    w[G.k] = g.k;
    w[G.a] = g.a.byteOffset + 4 * g.aOff;
    w[G.lda] = g.lda;
    w[G.transA] = g.transA ? 1 : 0;
    w[G.b] = g.b.byteOffset + 4 * g.bOff;
    w[G.ldb] = g.ldb;
    w[G.transB] = g.transB ? 1 : 0;
    w[G.c] = g.c.byteOffset + 4 * g.cOff;
    w[G.ldc] = g.ldc;
    r[G.alpha] = g.alpha;
    r[G.beta] = g.beta;
    w[G.batch] = g.batch;
    w[G.strideA] = g.strideA;
    w[G.strideB] = g.strideB;
    w[G.strideC] = g.strideC;
    this.dispatch(2 * g.m * g.n * g.k * g.batch >= this.parallelMinFlops);
  }

  adamw(o: AdamWArgs): void {
    checkAdamW(o);
    const { param, grad, m, v } = o;
    if (!(param instanceof Float32Array && grad instanceof Float32Array && m instanceof Float32Array && v instanceof Float32Array) ||
        !onHeap(param) || !onHeap(grad) || !onHeap(m) || !onHeap(v)) {
      adamwReference(o);
      return;
    }
    this.kernels.close(this.block.byteOffset);
    const w = this.words;
    const r = this.reals;
    w[J_KIND] = KIND_ADAMW;
    w[W.n] = o.n;
    w[W.param] = param.byteOffset;
    w[W.grad] = grad.byteOffset;
    w[W.m] = m.byteOffset;
    w[W.v] = v.byteOffset;
    r[W.gradScale] = o.gradScale;
    r[W.beta1] = o.beta1;
    r[W.beta2] = o.beta2;
    r[W.eps] = o.eps;
    r[W.decay] = 1 - o.lr * o.weightDecay;
    r[W.stepSize] = o.lr / (1 - Math.pow(o.beta1, o.step));
    r[W.invBc2] = 1 / (1 - Math.pow(o.beta2, o.step));
    // An AdamW step does about 16 operations per parameter.
    this.dispatch(16 * o.n >= this.parallelMinFlops);
  }

  swiglu(gate: FloatArray, up: FloatArray, out: FloatArray, n: number): void {
    checkSwiglu(gate, up, out, n);
    if (!heapF32(gate) || !heapF32(up) || !heapF32(out)) return swigluReference(gate, up, out, n);
    this.rows(OP.swiglu, n, 1, 4, [gate, up, out]);
  }

  swigluBackward(gate: FloatArray, up: FloatArray, g: FloatArray, gGate: FloatArray | null, gUp: FloatArray | null, n: number, overwrite: boolean): void {
    checkSwigluBackward(gate, up, g, gGate, gUp, n);
    if (![gate, up, g, gGate, gUp].every(heapF32)) return swigluBackwardReference(gate, up, g, gGate, gUp, n, overwrite);
    this.rows(OP.swigluBackward, n, 2, 4, [gate, up, g, gGate, gUp], [overwrite ? 1 : 0]);
  }

  rmsnorm(x: FloatArray, w: FloatArray, out: FloatArray, rstd: FloatArray, rows: number, dim: number, eps: number): void {
    checkRmsnorm(x, w, out, rstd, rows, dim);
    if (![x, w, out, rstd].every(heapF32)) return rmsnormReference(x, w, out, rstd, rows, dim, eps);
    this.rows(OP.rmsnorm, rows, dim, 1, [x, w, out, rstd], [dim], eps);
  }

  rmsnormBackward(x: FloatArray, w: FloatArray, rstd: FloatArray, g: FloatArray, gx: FloatArray | null, gw: FloatArray | null, rows: number, dim: number, overwrite: boolean): void {
    checkRmsnormBackward(x, w, rstd, g, gx, gw, rows, dim);
    if (![x, w, rstd, g, gx, gw].every(heapF32)) return rmsnormBackwardReference(x, w, rstd, g, gx, gw, rows, dim, overwrite);
    // Rows for the input gradient; bands of columns for the weight's, which sums over all rows.
    if (gx !== null) this.rows(OP.rmsnormBackwardX, rows, 2 * dim, 1, [x, w, rstd, g, gx], [dim, overwrite ? 1 : 0]);
    if (gw !== null) this.rows(OP.rmsnormBackwardW, dim, rows, 4, [x, rstd, g, gw], [dim, rows]);
  }

  logSumExpRows(x: FloatArray, lse: FloatArray, rows: number, n: number): void {
    checkLogSumExpRows(x, lse, rows, n);
    if (!heapF32(x) || !heapF32(lse)) return logSumExpRowsReference(x, lse, rows, n);
    this.rows(OP.logSumExp, rows, n, 1, [x, lse], [n]);
  }

  softmaxXentBackward(x: FloatArray, lse: FloatArray, target: Int32Array, weight: FloatArray, gx: FloatArray, rows: number, n: number): void {
    checkSoftmaxXentBackward(x, lse, target, weight, gx, rows, n);
    if (![x, lse, target, weight, gx].every(heapF32)) return softmaxXentBackwardReference(x, lse, target, weight, gx, rows, n);
    this.rows(OP.xentBackward, rows, n, 1, [x, lse, target, weight, gx], [n]);
  }

  softmaxRows(p: FloatArray, rows: number, n: number, mask: RowMask | null): void {
    checkSoftmaxRows(p, rows, n, mask);
    if (!heapF32(p)) return softmaxRowsReference(p, rows, n, mask);
    this.rows(OP.softmax, rows, n, 1, [p], maskWords(n, mask));
  }

  softmaxBackwardRows(p: FloatArray, d: FloatArray, rows: number, n: number, mask: RowMask | null): void {
    checkSoftmaxBackwardRows(p, d, rows, n, mask);
    if (!heapF32(p) || !heapF32(d)) return softmaxBackwardRowsReference(p, d, rows, n, mask);
    this.rows(OP.softmaxBackward, rows, n, 1, [p, d], maskWords(n, mask));
  }

  copyRows(src: FloatArray, srcOff: number, srcStride: number, dst: FloatArray, dstOff: number, dstStride: number, rows: number, width: number, accumulate: boolean): void {
    checkCopyRows(src, srcOff, srcStride, dst, dstOff, dstStride, rows, width);
    if (rows === 0 || width === 0) return;
    if (!heapF32(src) || !heapF32(dst)) return copyRowsReference(src, srcOff, srcStride, dst, dstOff, dstStride, rows, width, accumulate);
    // Tiny copies cost less in JavaScript than a trip through the job block.
    if (rows * width < 64) return copyRowsReference(src, srcOff, srcStride, dst, dstOff, dstStride, rows, width, accumulate);
    if (rows === 1 || (srcStride === width && dstStride === width)) {
      // One contiguous run: recut into rows, so that the pool can split it.
      const total = rows * width;
      const run = Math.floor(total / CONTIGUOUS_ROW) * CONTIGUOUS_ROW;
      if (run > 0 && run < total) copyRowsReference(src, srcOff + run, 0, dst, dstOff + run, 0, 1, total - run, accumulate);
      if (run > 0) {
        rows = run / CONTIGUOUS_ROW;
        width = srcStride = dstStride = CONTIGUOUS_ROW;
      }
    }
    this.rows(OP.copyRows, rows, width, 1, [src, dst], [width, srcStride, dstStride], accumulate ? 1 : 0, [srcOff, dstOff]);
  }

  sumSquares(x: FloatArray, n: number): number {
    checkSumSquares(x, n);
    if (!heapF32(x) || n < 64) return sumSquaresReference(x, n);
    this.rows(OP.sumSquares, n, 1, 1024, [x, this.partials]);
    let ss = 0;
    const total = this.words[P_TOTAL];
    for (let c = 0; c < total; c++) ss += this.partials[c];
    return ss;
  }

  gatherRows(src: FloatArray, srcRows: number, index: Int32Array, weight: FloatArray | null, dst: FloatArray, rows: number, width: number, accumulate: boolean): void {
    checkGatherRows(src, srcRows, index, weight, dst, rows, width);
    if (![src, index, weight, dst].every(heapF32)) return gatherRowsReference(src, srcRows, index, weight, dst, rows, width, accumulate);
    this.rows(OP.gatherRows, rows, width, 1, [src, index, weight, dst], [width, accumulate ? 1 : 0]);
  }

  scatterAddRows(src: FloatArray, index: Int32Array, weight: FloatArray | null, dst: FloatArray, dstRows: number, rows: number, width: number): void {
    checkScatterAddRows(src, index, weight, dst, dstRows, rows, width);
    if (![src, weight, dst].every(heapF32)) return scatterAddRowsReference(src, index, weight, dst, dstRows, rows, width);
    // Group the sources by destination (a counting sort that keeps source order), so that each
    // destination row is summed by one thread, in the same order as the reference.
    const starts = allocI32(dstRows + 1), order = allocI32(Math.max(1, rows));
    starts.fill(0);
    for (let m = 0; m < rows; m++) starts[index[m] + 1]++;
    for (let n = 0; n < dstRows; n++) starts[n + 1] += starts[n];
    for (let m = 0; m < rows; m++) order[starts[index[m]]++] = m;
    // The fill advanced each start to the next one's: shift back.
    for (let n = dstRows; n > 0; n--) starts[n] = starts[n - 1];
    starts[0] = 0;
    try {
      this.rows(OP.scatterRows, dstRows, Math.max(1, Math.ceil((rows * width) / Math.max(1, dstRows))), 1, [src, order, starts, weight, dst], [width]);
    } finally {
      freeI32(starts);
      freeI32(order);
    }
  }

  dequantize(type: GgmlType, src: Uint8Array, dst: Float32Array): void {
    // Packed weights live outside the WASM heap; decoding runs in JS until native/WASM quant kernels exist.
    dequantize(type, src, dst);
  }

  rowDots(a: FloatArray, aRows: number, index: Int32Array, b: FloatArray, out: FloatArray, rows: number, width: number): void {
    checkRowDots(a, aRows, index, b, out, rows, width);
    if (![a, index, b, out].every(heapF32)) return rowDotsReference(a, aRows, index, b, out, rows, width);
    this.rows(OP.rowDots, rows, width, 1, [a, index, b, out], [width]);
  }

  experts(b: ExpertBatch): DeviceTimes {
    checkExperts(b);
    const tasks = b.devices.flat();
    const D = b.devices.length;
    if (D === 0) return { start: new Float64Array(0), end: new Float64Array(0) };
    if (![b.x, b.out, ...tasks.flatMap((t) => [t.gate, t.up, t.down])].every(heapF32)) return expertsReference(b);
    // The task table, each device's first task, its hidden-activation buffer (gate and up outputs of
    // its largest task) and its two times, all on the heap where the threads read them.
    const table = allocI32(Math.max(1, 5 * tasks.length));
    const starts = allocI32(D + 1);
    const buffers = allocI32(D);
    const times = allocF32(4 * D);
    const owned: Float32Array[] = [];
    try {
      let i = 0;
      b.devices.forEach((list, d) => {
        starts[d] = i;
        let most = 0;
        for (const t of list) {
          table.set([t.gate.byteOffset, t.up.byteOffset, t.down.byteOffset, t.row, t.rows], 5 * i++);
          most = Math.max(most, t.rows);
        }
        const h = allocF32(Math.max(1, 2 * most * b.hidden));
        owned.push(h);
        buffers[d] = h.byteOffset;
      });
      starts[D] = i;
      this.kernels.close(this.block.byteOffset);
      const w = this.words;
      w[J_KIND] = KIND_EXPERTS;
      w[X.dim] = b.dim;
      w[X.hidden] = b.hidden;
      w[X.x] = b.x.byteOffset;
      w[X.out] = b.out.byteOffset;
      w[X.tasks] = table.byteOffset;
      w[X.starts] = starts.byteOffset;
      w[X.devices] = D;
      w[X.buffers] = buffers.byteOffset;
      w[X.times] = times.byteOffset;
      const t0 = now();
      this.dispatch(D > 1, Math.min(this.threads, D));
      const ms = new Float64Array(times.buffer, times.byteOffset, 2 * D);
      const start = new Float64Array(D), end = new Float64Array(D);
      for (let d = 0; d < D; d++) {
        start[d] = Math.max(0, ms[2 * d] - t0) / 1000;
        end[d] = Math.max(0, ms[2 * d + 1] - t0) / 1000;
      }
      return { start, end };
    } finally {
      for (const h of owned) freeF32(h);
      freeI32(table);
      freeI32(starts);
      freeI32(buffers);
      freeF32(times);
    }
  }

  /** Runs row-wise kernel `op` over `units` rows (elements, columns), each about `cost` operations. */
  private rows(
    op: number, units: number, cost: number, align: number, ptrs: (FloatArray | Int32Array | null)[], ints: number[] = [], real = 0,
    offsets: number[] = [],
  ): void {
    if (units === 0) return;
    this.kernels.close(this.block.byteOffset);
    const w = this.words;
    w[J_KIND] = KIND_ROWS;
    w[R.op] = op;
    w[R.units] = units;
    w[R.cost] = cost;
    w[R.align] = align;
    for (let i = 0; i < 5; i++) {
      const p = ptrs[i];
      w[R.p0 + i] = p == null ? 0 : p.byteOffset + 4 * (offsets[i] ?? 0);
    }
    for (let i = 0; i < 3; i++) w[R.i0 + i] = ints[i] ?? 0;
    this.reals[R.x0] = real;
    this.dispatch(units * cost >= this.parallelMinWork);
  }

  /** Stops the worker threads and returns the scratch space; the backend is unusable afterwards. */
  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    for (const s of this.scratch) freeF32(s);
    freeF32(this.scratchTable);
    freeF32(new Float32Array(this.partials.buffer, this.partials.byteOffset, 2 * this.partials.length));
    freeF32(this.block);
  }

  private dispatch(parallel: boolean, threads = this.threads): void {
    const w = this.words;
    const job = this.block.byteOffset;
    const parts = parallel ? threads : 1;
    w[J_THREADS] = parts;
    // Generations tag claims and split-k partial sums in scratch space, which starts zeroed: wrapping
    // around is harmless as long as 0 is skipped.
    const gen = (w[C_GEN] + 1) | 0 || 1;
    this.kernels.plan(job, gen);
    if (parts === 1) {
      this.kernels.work(job, gen, 0);
      return;
    }
    Atomics.store(w, C_ERROR, 0);
    Atomics.store(w, C_GEN, gen);
    Atomics.notify(w, C_GEN);
    this.kernels.work(job, gen, 0);
    const total = w[P_TOTAL];
    let spins = 0;
    for (;;) {
      const done = Atomics.load(w, S_DONE);
      if (done === total) break;
      const failed = Atomics.load(w, C_ERROR);
      if (failed !== 0) throw new Error(`wasm backend: worker thread ${failed} failed (its error is on stderr)`);
      if (++spins >= SPIN) Atomics.wait(w, S_DONE, done);
    }
  }
}

/** The kernels' (n, period, offset) words for a (checked) mask: period 0 means no mask. */
function maskWords(n: number, mask: RowMask | null): number[] {
  return mask === null ? [n, 0, 0] : [n, mask.period, mask.offset];
}

export function createWasmBackend(opts: WasmBackendOptions = {}): WasmBackend {
  return new WasmBackend(opts);
}
