// The native backend: kernels in C++ with AVX2/AVX-512/VNNI paths chosen at run time (native/),
// loaded as an N-API addon built at install. It computes on the same float32 tensors the WASM heap
// holds (typed arrays are passed by pointer, no copies) and on packed weights wherever they live,
// with its own threads. Where the addon is missing (no compiler at install, another platform, a
// browser) nothing changes but speed: the WASM backend runs everything.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { AdamWArgs, Backend, DeviceTimes, ExpertBatch, FloatArray, GemmArgs, RowMask } from './backend.js';
import { GGML_TYPES, type GgmlType } from './quant/types.js';
import {
  checkAdamW, checkCopyRows, checkGatherRows, checkGemm, checkLogSumExpRows, checkRmsnorm, checkRmsnormBackward, checkRowDots,
  checkScatterAddRows, checkSoftmaxBackwardRows, checkSoftmaxRows, checkSoftmaxXentBackward, checkSumSquares, checkSwiglu,
  checkSwigluBackward,
} from './validate.js';

/** What the addon exports. Kernel families are optional while the addon grows: missing ones run on the fallback backend. */
export interface NativeAddon {
  info(): { simd: string; threads: number };
  setThreads(n: number): void;
  // Same argument order as the Backend methods, arrays flattened to pointers (GEMM: GemmArgs fields in order).
  gemm?(m: number, n: number, k: number, a: Float32Array, aOff: number, lda: number, transA: boolean, b: Float32Array, bOff: number, ldb: number, transB: boolean, c: Float32Array, cOff: number, ldc: number, alpha: number, beta: number, batch: number, strideA: number, strideB: number, strideC: number): void;
  adamw?(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, gradScale: number): void;
  swiglu?(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): void;
  swigluBackward?(gate: Float32Array, up: Float32Array, g: Float32Array, gGate: Float32Array | null, gUp: Float32Array | null, n: number, overwrite: boolean): void;
  rmsnorm?(x: Float32Array, w: Float32Array, out: Float32Array, rstd: Float32Array, rows: number, dim: number, eps: number): void;
  rmsnormBackward?(x: Float32Array, w: Float32Array, rstd: Float32Array, g: Float32Array, gx: Float32Array | null, gw: Float32Array | null, rows: number, dim: number, overwrite: boolean): void;
  logSumExpRows?(x: Float32Array, lse: Float32Array, rows: number, n: number): void;
  softmaxXentBackward?(x: Float32Array, lse: Float32Array, target: Int32Array, weight: Float32Array, gx: Float32Array, rows: number, n: number): void;
  softmaxRows?(p: Float32Array, rows: number, n: number, maskPeriod: number, maskOffset: number): void;
  softmaxBackwardRows?(p: Float32Array, d: Float32Array, rows: number, n: number, maskPeriod: number, maskOffset: number): void;
  copyRows?(src: Float32Array, srcOff: number, srcStride: number, dst: Float32Array, dstOff: number, dstStride: number, rows: number, width: number, accumulate: boolean): void;
  sumSquares?(x: Float32Array, n: number): number;
  gatherRows?(src: Float32Array, srcRows: number, index: Int32Array, weight: Float32Array | null, dst: Float32Array, rows: number, width: number, accumulate: boolean): void;
  scatterAddRows?(src: Float32Array, index: Int32Array, weight: Float32Array | null, dst: Float32Array, dstRows: number, rows: number, width: number): void;
  rowDots?(a: Float32Array, aRows: number, index: Int32Array, b: Float32Array, out: Float32Array, rows: number, width: number): void;
  /** Decodes n values of ggml type `typeId` from src into dst. */
  dequantize?(typeId: number, src: Uint8Array, dst: Float32Array, n: number): void;
  /**
   * y[i, r] (= or +=) Σ_c x[i, c] · W[r, c] for i < m, r < rows: W is `rows` rows of `cols` values
   * stored as ggml type `typeId` (row-major blocks), x is m rows of cols floats from xOff, y m rows
   * with stride ldy from yOff.
   */
  packedMatmul?(typeId: number, w: Uint8Array, rows: number, cols: number, x: Float32Array, xOff: number, m: number, y: Float32Array, yOff: number, ldy: number): void;
  /** Bytes [offset, offset + length) of a file mapped private copy-on-write; unmapped when collected. */
  mmap?(path: string, offset: number, length: number): ArrayBuffer;
}

let addon: NativeAddon | null | undefined;
let unavailable: string | null = null;

function addonPath(): string | null {
  // native/ sits next to src/ when run from source (tsx) and next to dist/ when compiled.
  for (const up of ['../../native/', '../../../native/']) {
    const url = new URL(`${up}build/Release/nanoseek.node`, import.meta.url);
    if (existsSync(url)) return fileURLToPath(url);
  }
  return null;
}

/** The addon, or null (with the reason in nativeUnavailableReason()). */
export function loadNativeAddon(): NativeAddon | null {
  if (addon !== undefined) return addon;
  const path = addonPath();
  if (path === null) {
    unavailable = 'the native addon was not built (native/build/Release/nanoseek.node is missing: no C++ compiler at install, or NANOSEEK_NO_NATIVE=1)';
    addon = null;
    return addon;
  }
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    unavailable = `the native addon does not load here: ${(err as Error).message}`;
    addon = null;
  }
  return addon;
}

export function nativeUnavailableReason(): string | null {
  loadNativeAddon();
  return unavailable;
}

const f32 = (a: FloatArray): a is Float32Array => a instanceof Float32Array;

/** The thread count last given to the addon, whose pool has one for the whole process. */
let addonThreads = 0;

/**
 * Backend over the addon. Every call with float32 arrays goes to native code, after the same argument
 * checks as the WASM backend's (the kernels trust lengths and indices); float64 arrays (gradient
 * checks) and any kernel family the addon lacks go to `fallback`.
 */
export class NativeBackend implements Backend {
  readonly name = 'native';
  readonly threads: number;
  readonly simd: string;

  private fallbackBackend: Backend | null = null;

  /** `fallback` builds the backend for what the addon lacks, on first need (the WASM one starts worker threads). */
  constructor(
    private readonly lib: NativeAddon,
    private readonly makeFallback: () => Backend,
    threads?: number,
  ) {
    if (threads !== undefined) lib.setThreads(threads);
    const info = lib.info();
    this.threads = addonThreads = info.threads;
    this.simd = info.simd;
  }

  /**
   * The addon, on this backend's thread count (another backend may have set its own since). Callers
   * have checked that the function they call exists.
   */
  private get native(): Required<NativeAddon> {
    if (addonThreads !== this.threads) {
      this.lib.setThreads(this.threads);
      addonThreads = this.threads;
    }
    return this.lib as Required<NativeAddon>;
  }

  private get fallback(): Backend {
    this.fallbackBackend ??= this.makeFallback();
    return this.fallbackBackend;
  }

  gemm(g: GemmArgs): void {
    if (this.lib.gemm && f32(g.a) && f32(g.b) && f32(g.c)) {
      checkGemm(g);
      this.native.gemm(g.m, g.n, g.k, g.a, g.aOff, g.lda, g.transA, g.b, g.bOff, g.ldb, g.transB, g.c, g.cOff, g.ldc, g.alpha, g.beta, g.batch, g.strideA, g.strideB, g.strideC);
    } else this.fallback.gemm(g);
  }

  adamw(a: AdamWArgs): void {
    if (this.lib.adamw && f32(a.param) && f32(a.grad) && f32(a.m) && f32(a.v)) {
      checkAdamW(a);
      this.native.adamw(a.param, a.grad, a.m, a.v, a.n, a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, a.step, a.gradScale);
    } else this.fallback.adamw(a);
  }

  swiglu(gate: FloatArray, up: FloatArray, out: FloatArray, n: number): void {
    if (this.lib.swiglu && f32(gate) && f32(up) && f32(out)) {
      checkSwiglu(gate, up, out, n);
      this.native.swiglu(gate, up, out, n);
    } else this.fallback.swiglu(gate, up, out, n);
  }

  swigluBackward(gate: FloatArray, up: FloatArray, g: FloatArray, gGate: FloatArray | null, gUp: FloatArray | null, n: number, overwrite: boolean): void {
    if (this.lib.swigluBackward && f32(gate) && f32(up) && f32(g) && (gGate === null || f32(gGate)) && (gUp === null || f32(gUp))) {
      checkSwigluBackward(gate, up, g, gGate, gUp, n);
      this.native.swigluBackward(gate, up, g, gGate, gUp, n, overwrite);
    } else this.fallback.swigluBackward(gate, up, g, gGate, gUp, n, overwrite);
  }

  rmsnorm(x: FloatArray, w: FloatArray, out: FloatArray, rstd: FloatArray, rows: number, dim: number, eps: number): void {
    if (this.lib.rmsnorm && f32(x) && f32(w) && f32(out) && f32(rstd)) {
      checkRmsnorm(x, w, out, rstd, rows, dim);
      this.native.rmsnorm(x, w, out, rstd, rows, dim, eps);
    } else this.fallback.rmsnorm(x, w, out, rstd, rows, dim, eps);
  }

  rmsnormBackward(x: FloatArray, w: FloatArray, rstd: FloatArray, g: FloatArray, gx: FloatArray | null, gw: FloatArray | null, rows: number, dim: number, overwrite: boolean): void {
    if (this.lib.rmsnormBackward && f32(x) && f32(w) && f32(rstd) && f32(g) && (gx === null || f32(gx)) && (gw === null || f32(gw))) {
      checkRmsnormBackward(x, w, rstd, g, gx, gw, rows, dim);
      this.native.rmsnormBackward(x, w, rstd, g, gx, gw, rows, dim, overwrite);
    } else this.fallback.rmsnormBackward(x, w, rstd, g, gx, gw, rows, dim, overwrite);
  }

  logSumExpRows(x: FloatArray, lse: FloatArray, rows: number, n: number): void {
    if (this.lib.logSumExpRows && f32(x) && f32(lse)) {
      checkLogSumExpRows(x, lse, rows, n);
      this.native.logSumExpRows(x, lse, rows, n);
    } else this.fallback.logSumExpRows(x, lse, rows, n);
  }

  softmaxXentBackward(x: FloatArray, lse: FloatArray, target: Int32Array, weight: FloatArray, gx: FloatArray, rows: number, n: number): void {
    if (this.lib.softmaxXentBackward && f32(x) && f32(lse) && f32(weight) && f32(gx)) {
      checkSoftmaxXentBackward(x, lse, target, weight, gx, rows, n);
      this.native.softmaxXentBackward(x, lse, target, weight, gx, rows, n);
    } else this.fallback.softmaxXentBackward(x, lse, target, weight, gx, rows, n);
  }

  softmaxRows(p: FloatArray, rows: number, n: number, mask: RowMask | null): void {
    if (this.lib.softmaxRows && f32(p)) {
      checkSoftmaxRows(p, rows, n, mask);
      this.native.softmaxRows(p, rows, n, mask?.period ?? 0, mask?.offset ?? 0);
    } else this.fallback.softmaxRows(p, rows, n, mask);
  }

  softmaxBackwardRows(p: FloatArray, d: FloatArray, rows: number, n: number, mask: RowMask | null): void {
    if (this.lib.softmaxBackwardRows && f32(p) && f32(d)) {
      checkSoftmaxBackwardRows(p, d, rows, n, mask);
      this.native.softmaxBackwardRows(p, d, rows, n, mask?.period ?? 0, mask?.offset ?? 0);
    } else this.fallback.softmaxBackwardRows(p, d, rows, n, mask);
  }

  copyRows(src: FloatArray, srcOff: number, srcStride: number, dst: FloatArray, dstOff: number, dstStride: number, rows: number, width: number, accumulate: boolean): void {
    if (this.lib.copyRows && f32(src) && f32(dst)) {
      checkCopyRows(src, srcOff, srcStride, dst, dstOff, dstStride, rows, width);
      this.native.copyRows(src, srcOff, srcStride, dst, dstOff, dstStride, rows, width, accumulate);
    } else this.fallback.copyRows(src, srcOff, srcStride, dst, dstOff, dstStride, rows, width, accumulate);
  }

  sumSquares(x: FloatArray, n: number): number {
    if (!this.lib.sumSquares || !f32(x)) return this.fallback.sumSquares(x, n);
    checkSumSquares(x, n);
    return this.native.sumSquares(x, n);
  }

  gatherRows(src: FloatArray, srcRows: number, index: Int32Array, weight: FloatArray | null, dst: FloatArray, rows: number, width: number, accumulate: boolean): void {
    if (this.lib.gatherRows && f32(src) && f32(dst) && (weight === null || f32(weight))) {
      checkGatherRows(src, srcRows, index, weight, dst, rows, width);
      this.native.gatherRows(src, srcRows, index, weight, dst, rows, width, accumulate);
    } else this.fallback.gatherRows(src, srcRows, index, weight, dst, rows, width, accumulate);
  }

  scatterAddRows(src: FloatArray, index: Int32Array, weight: FloatArray | null, dst: FloatArray, dstRows: number, rows: number, width: number): void {
    if (this.lib.scatterAddRows && f32(src) && f32(dst) && (weight === null || f32(weight))) {
      checkScatterAddRows(src, index, weight, dst, dstRows, rows, width);
      this.native.scatterAddRows(src, index, weight, dst, dstRows, rows, width);
    } else this.fallback.scatterAddRows(src, index, weight, dst, dstRows, rows, width);
  }

  rowDots(a: FloatArray, aRows: number, index: Int32Array, b: FloatArray, out: FloatArray, rows: number, width: number): void {
    if (this.lib.rowDots && f32(a) && f32(b) && f32(out)) {
      checkRowDots(a, aRows, index, b, out, rows, width);
      this.native.rowDots(a, aRows, index, b, out, rows, width);
    } else this.fallback.rowDots(a, aRows, index, b, out, rows, width);
  }

  /**
   * Expert parallelism's devices are threads that each run their own task list. The addon's pool hands
   * out shares of one kernel instead, so until it has an expert job of its own the devices are the
   * fallback's (WASM) threads; the native pool sits idle meanwhile.
   */
  experts(batch: ExpertBatch): DeviceTimes {
    return this.fallback.experts(batch);
  }

  dequantize(type: GgmlType, src: Uint8Array, dst: Float32Array): void {
    if (this.lib.dequantize) this.native.dequantize(GGML_TYPES[type].id, src, dst, dst.length);
    else this.fallback.dequantize(type, src, dst);
  }

  packedMatmul(type: GgmlType, w: Uint8Array, rows: number, cols: number, x: Float32Array, xOff: number, m: number, y: Float32Array, yOff: number, ldy: number): boolean {
    if (!this.lib.packedMatmul) return false;
    this.native.packedMatmul(GGML_TYPES[type].id, w, rows, cols, x, xOff, m, y, yOff, ldy);
    return true;
  }
}
