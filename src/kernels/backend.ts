// The seam between model code and compute. Ops call `backend()`; which implementation answers
// (plain TypeScript, WASM SIMD on worker threads, later a native BLAS or WebGPU) is chosen once, here:
// by initBackend() or, without one, on the first kernel call from the environment (see select.ts).
// Every kernel takes typed arrays plus element offsets, row-major. A backend that only handles
// float32 arrays on the WASM heap must defer everything else to the reference backend.
import type { GgmlType } from './quant/types.js';
import { backendFromEnv, createBackend, type BackendChoice } from './select.js';

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

/**
 * Which entries of a row a softmax sees. Causal attention scores: row r has (r mod period) + offset + 1
 * visible entries (its query position plus any cached prefix); the rest are masked and come out 0.
 */
export interface RowMask {
  period: number;
  offset: number;
}

/**
 * One routed expert's share of a batch on one device: rows [row, row + rows) of the dispatched input x
 * go through that expert's SwiGLU feed-forward, out[r] = down(silu(x[r]·gateᵀ) ⊙ (x[r]·upᵀ)), written
 * to the same rows of out. Weights are row-major [hidden, dim] (gate, up) and [dim, hidden] (down).
 */
export interface ExpertTask {
  gate: FloatArray;
  up: FloatArray;
  down: FloatArray;
  row: number;
  rows: number;
}

/**
 * The routed experts of one MoE layer for one batch, spread over devices (expert parallelism): device
 * d runs devices[d], its tasks in order, on its own thread, while the others run theirs. x and out are
 * [rows, dim]; no two tasks write the same rows.
 */
export interface ExpertBatch {
  x: FloatArray;
  out: FloatArray;
  dim: number;
  hidden: number;
  devices: readonly (readonly ExpertTask[])[];
}

/** What each device of an ExpertBatch took, in seconds from the call. */
export interface DeviceTimes {
  /** When it started its first task. */
  start: Float64Array;
  /** When it finished its last one. */
  end: Float64Array;
}

export interface Backend {
  readonly name: string;
  /** Threads a single kernel call may use. */
  readonly threads: number;
  gemm(g: GemmArgs): void;
  adamw(a: AdamWArgs): void;

  // Row-wise and element-wise kernels, row-major [rows, n]. Gradients accumulate (+=), or are stored
  // (=) with overwrite, into a fresh buffer (see gradFor in tensor.ts); a null gradient is skipped.

  /** out = silu(gate) ⊙ up over n elements. */
  swiglu(gate: FloatArray, up: FloatArray, out: FloatArray, n: number): void;
  /** With x = gate and s = σ(x): gGate += g·up·s·(1 + x·(1 − s)), gUp += g·x·s. */
  swigluBackward(gate: FloatArray, up: FloatArray, g: FloatArray, gGate: FloatArray | null, gUp: FloatArray | null, n: number, overwrite: boolean): void;
  /** out[r] = x[r] · rstd[r] · w with rstd[r] = 1/√(mean(x[r]²) + eps), which is stored too. */
  rmsnorm(x: FloatArray, w: FloatArray, out: FloatArray, rstd: FloatArray, rows: number, dim: number, eps: number): void;
  /** gx[r] (+)= s·(g[r]⊙w) − x[r]·s³·mean(g[r]⊙w⊙x[r]) with s = rstd[r] (overwrite: =); gw += Σ_r g[r]⊙x[r]·s. */
  rmsnormBackward(x: FloatArray, w: FloatArray, rstd: FloatArray, g: FloatArray, gx: FloatArray | null, gw: FloatArray | null, rows: number, dim: number, overwrite: boolean): void;
  /** lse[r] = log Σ_i exp(x[r, i]). */
  logSumExpRows(x: FloatArray, lse: FloatArray, rows: number, n: number): void;
  /** gx[r] += weight[r]·(softmax(x[r]) − onehot(target[r])), softmax from lse; rows of weight 0 are skipped. */
  softmaxXentBackward(x: FloatArray, lse: FloatArray, target: Int32Array, weight: FloatArray, gx: FloatArray, rows: number, n: number): void;
  /** Softmax of each row in place (masked entries, if any, become 0). */
  softmaxRows(p: FloatArray, rows: number, n: number, mask: RowMask | null): void;
  /**
   * A strided copy of rows × width: dst[dstOff + r·dstStride + i] = src[srcOff + r·srcStride + i],
   * or += with accumulate. Rows of dst must not overlap each other or src.
   */
  copyRows(src: FloatArray, srcOff: number, srcStride: number, dst: FloatArray, dstOff: number, dstStride: number, rows: number, width: number, accumulate: boolean): void;
  /** Σ x[i]² over the first n values, summed in float64 (gradient norms). */
  sumSquares(x: FloatArray, n: number): number;
  /** dst[m] (+)= weight[m] · src[index[m]] for rows m < rows of width floats; src has srcRows rows; null weight = 1. */
  gatherRows(src: FloatArray, srcRows: number, index: Int32Array, weight: FloatArray | null, dst: FloatArray, rows: number, width: number, accumulate: boolean): void;
  /** dst[index[m]] += weight[m] · src[m] for rows m < rows (an index may repeat); dst has dstRows rows. */
  scatterAddRows(src: FloatArray, index: Int32Array, weight: FloatArray | null, dst: FloatArray, dstRows: number, rows: number, width: number): void;
  /** out[m] += a[index[m]] · b[m] (row dot products) for m < rows; a has aRows rows. */
  rowDots(a: FloatArray, aRows: number, index: Int32Array, b: FloatArray, out: FloatArray, rows: number, width: number): void;
  /** Softmax backward in place: d[r] = p[r] ⊙ (d[r] − p[r]·d[r]) (0 where masked). */
  softmaxBackwardRows(p: FloatArray, d: FloatArray, rows: number, n: number, mask: RowMask | null): void;

  /**
   * Runs each device's expert tasks on a device of its own (a thread of this backend; a backend with
   * fewer threads than devices runs several devices one after another on one thread).
   */
  experts(batch: ExpertBatch): DeviceTimes;

  /** Decodes dst.length values stored as `type` (exactly rowBytes(type, dst.length) bytes of src) into float32. */
  dequantize(type: GgmlType, src: Uint8Array, dst: Float32Array): void;

  /**
   * Optional: y[i, r] = Σ_c x[i, c] · W[r, c] for i < m, r < rows, with W `rows` rows of `cols` values
   * stored as `type` (row-major blocks) and read in place; x is m rows from xOff, y has row stride
   * ldy from yOff. Returns false when this backend has no such kernel (the caller then decodes W in
   * bands and uses gemm).
   */
  packedMatmul?(type: GgmlType, w: Uint8Array, rows: number, cols: number, x: Float32Array, xOff: number, m: number, y: Float32Array, yOff: number, ldy: number): boolean;
}

let current: Backend | null = null;

/**
 * The active backend: the one initBackend() chose or, on the first call without one, the one the
 * environment asks for (NANOSEEK_BACKEND=reference|wasm, NANOSEEK_THREADS=N; default WASM SIMD on
 * all cores).
 */
export function backend(): Backend {
  if (current === null) current = backendFromEnv();
  return current;
}

/**
 * Chooses the backend every later kernel call uses, and returns it: a kind and a thread count (what
 * the choice leaves out, the environment decides, as on first use), or a backend instance. Call it
 * before the first kernel call to keep the environment's default from being built at all.
 */
export function initBackend(choice: BackendChoice | Backend = {}): Backend {
  current = 'gemm' in choice ? choice : createBackend(choice);
  return current;
}

/** Swaps in another backend (benchmarks compare two); every backend works on the same heap, so tensors stay valid. */
export function setBackend(b: Backend): void {
  current = b;
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
