// The seam between model code and compute. Ops call `backend()`; which implementation answers
// (plain TypeScript, WASM SIMD on worker threads, later a native BLAS or WebGPU) is chosen once, here.
// Every kernel takes typed arrays plus element offsets, row-major. A backend that only handles
// float32 arrays on the WASM heap must defer everything else to the reference backend.
import { referenceBackend } from './reference.js';

export type FloatArray = Float32Array | Float64Array;

/** C = alpha · op(A) · op(B) + beta · C, with op(A) m×k and op(B) k×n, row-major, repeated `batch` times. */
export interface GemmArgs {
  m: number;
  n: number;
  k: number;
  a: FloatArray;
  aOff: number;
  lda: number;
  transA: boolean;
  b: FloatArray;
  bOff: number;
  ldb: number;
  transB: boolean;
  c: FloatArray;
  cOff: number;
  ldc: number;
  alpha: number;
  /** 0 overwrites C (its old contents, even NaN, are ignored); 1 accumulates. */
  beta: number;
  batch: number;
  strideA: number;
  strideB: number;
  strideC: number;
}

/** One AdamW step over n parameters (decoupled weight decay, bias-corrected moments). */
export interface AdamWArgs {
  param: FloatArray;
  grad: FloatArray;
  m: FloatArray;
  v: FloatArray;
  n: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step number, for bias correction. */
  step: number;
  /** Multiplies the gradient first (gradient clipping folds in here). */
  gradScale: number;
}

export interface Backend {
  readonly name: string;
  /** Threads a single kernel call may use. */
  readonly threads: number;
  gemm(g: GemmArgs): void;
  adamw(a: AdamWArgs): void;
}

let current: Backend | null = null;
let factory: (() => Backend) | null = null;

/** The active backend: the registered default (the WASM one, once kernels/index.js is imported), else the reference. */
export function backend(): Backend {
  if (current === null) {
    current = factory === null ? referenceBackend : factory();
  }
  return current;
}

export function setBackend(b: Backend): void {
  current = b;
}

export function registerDefaultBackend(make: () => Backend): void {
  factory = make;
}

/** Fills in the optional fields of a GEMM call. */
export function gemmArgs(p: Partial<GemmArgs> & Pick<GemmArgs, 'm' | 'n' | 'k' | 'a' | 'b' | 'c'>): GemmArgs {
  const transA = p.transA ?? false;
  const transB = p.transB ?? false;
  return {
    m: p.m,
    n: p.n,
    k: p.k,
    a: p.a,
    aOff: p.aOff ?? 0,
    lda: p.lda ?? (transA ? p.m : p.k),
    transA,
    b: p.b,
    bOff: p.bOff ?? 0,
    ldb: p.ldb ?? (transB ? p.k : p.n),
    transB,
    c: p.c,
    cOff: p.cOff ?? 0,
    ldc: p.ldc ?? p.n,
    alpha: p.alpha ?? 1,
    beta: p.beta ?? 0,
    batch: p.batch ?? 1,
    strideA: p.strideA ?? 0,
    strideB: p.strideB ?? 0,
    strideC: p.strideC ?? 0,
  };
}
