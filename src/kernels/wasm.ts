// The WASM SIMD backend: kernels compiled from ./asm, run on the calling thread plus a pool of worker
// threads that all instantiate the same module on the one shared memory. A call writes its arguments
// into a job block on the heap and wakes the pool through Atomics on that block (postMessage costs
// tens of microseconds, more than a small GEMM); every thread then claims chunks of the job until
// none are left (see work() in asm/kernels.ts), and the caller returns once all chunks are done.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { AdamWArgs, Backend, GemmArgs } from './backend.js';
import { allocF32, freeF32, memory, onHeap } from './memory.js';
import { adamwReference, gemmReference } from './reference.js';
import { checkAdamW, checkGemm } from './validate.js';

export type SimdVariant = 'relaxed' | 'simd';

interface KernelExports {
  scratchBytes(): number;
  maxThreads(): number;
  close(job: number): void;
  plan(job: number, gen: number): void;
  work(job: number, gen: number, thread: number): number;
}

// Job block words (the layout plan() and work() in asm/kernels.ts read).
const J_KIND = 0;
const J_THREADS = 1;
const J_SCRATCH = 2;
const KIND_GEMM = 1;
const KIND_ADAMW = 2;
const G = { m: 3, n: 4, k: 5, a: 6, lda: 7, transA: 8, b: 9, ldb: 10, transB: 11, c: 12, ldc: 13, alpha: 14, beta: 15, batch: 16, strideA: 17, strideB: 18, strideC: 19 };
const W = { n: 3, param: 4, grad: 5, m: 6, v: 7, gradScale: 8, beta1: 9, beta2: 10, eps: 11, decay: 12, stepSize: 13, invBc2: 14 };
const P_TOTAL = 20;
// Control words, each on its own cache line (S_NEXT = 48 and S_DONE = 64 belong to the kernels).
const C_GEN = 32;
const S_DONE = 64;
const C_READY = 80;
const C_ERROR = 81;
const BLOCK_WORDS = 96;

// Below this much work a call runs on the calling thread alone: waking the pool costs more.
const PARALLEL_MIN_FLOPS = 1 << 22;
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

// Runs in each worker: instantiate, report ready, then loop forever on the control block. The module
// arrives compiled, so workers share the caller's machine code and its SIMD variant.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, block, index } = workerData;
const { work } = new WebAssembly.Instance(module, { env: { memory } }).exports;
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
}

export class WasmBackend implements Backend {
  readonly name = 'wasm';
  readonly threads: number;
  readonly simd: SimdVariant;
  private readonly parallelMinFlops: number;
  private readonly kernels: KernelExports;
  private readonly block: Float32Array;
  private readonly words: Int32Array;
  private readonly reals: Float32Array;
  private readonly scratch: Float32Array[] = [];
  private readonly scratchTable: Float32Array;
  private readonly workers: Worker[] = [];

  constructor(opts: WasmBackendOptions = {}) {
    const threads = opts.threads ?? os.availableParallelism();
    this.simd = opts.simd ?? (relaxedSimdSupported() ? 'relaxed' : 'simd');
    if (this.simd === 'relaxed' && !relaxedSimdSupported()) throw new Error('wasm backend: this engine has no relaxed SIMD');
    const mod = compile(this.simd);
    this.kernels = new WebAssembly.Instance(mod, { env: { memory } }).exports as unknown as KernelExports;
    const most = this.kernels.maxThreads();
    if (!Number.isInteger(threads) || threads < 1 || threads > most) {
      throw new Error(`wasm backend: threads must be an integer from 1 to ${most}, got ${threads}`);
    }
    this.threads = threads;
    this.parallelMinFlops = opts.parallelMinFlops ?? PARALLEL_MIN_FLOPS;

    this.block = allocF32(BLOCK_WORDS);
    this.block.fill(0);
    this.words = new Int32Array(this.block.buffer, this.block.byteOffset, BLOCK_WORDS);
    this.reals = new Float32Array(this.block.buffer, this.block.byteOffset, BLOCK_WORDS);
    this.scratchTable = allocF32(threads);
    const table = new Uint32Array(this.scratchTable.buffer, this.scratchTable.byteOffset, threads);
    const scratchFloats = this.kernels.scratchBytes() / 4;
    for (let t = 0; t < threads; t++) {
      const s = allocF32(scratchFloats);
      s.fill(0); // no job tag (see work() in asm/kernels.ts)
      this.scratch.push(s);
      table[t] = s.byteOffset;
    }
    this.words[J_SCRATCH] = this.scratchTable.byteOffset;

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

  /** Stops the worker threads and returns the scratch space; the backend is unusable afterwards. */
  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    for (const s of this.scratch) freeF32(s);
    freeF32(this.scratchTable);
    freeF32(this.block);
  }

  private dispatch(parallel: boolean): void {
    const w = this.words;
    const job = this.block.byteOffset;
    const parts = parallel ? this.threads : 1;
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

export function createWasmBackend(opts: WasmBackendOptions = {}): WasmBackend {
  return new WasmBackend(opts);
}
