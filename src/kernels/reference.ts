// Plain TypeScript kernels: the definition every faster backend is tested against, and the path
// float64 tensors (used by gradient checks) always take.
import type { AdamWArgs, Backend, DeviceTimes, ExpertBatch, FloatArray, GemmArgs, RowMask } from './backend.js';
import { dequantize } from './quant/index.js';
import { checkExperts } from './validate.js';

export function gemmReference(g: GemmArgs): void {
  const { m, n, k, a, b, c, lda, ldb, ldc, transA, transB, alpha, beta } = g;
  const sa = transA ? 1 : lda; // step between rows of op(A)
  const ka = transA ? lda : 1; // step along k in op(A)
  const kb = transB ? 1 : ldb; // step along k in op(B)
  const nb = transB ? ldb : 1; // step along n in op(B)
  for (let bi = 0; bi < g.batch; bi++) {
    const aOff = g.aOff + bi * g.strideA;
    const bOff = g.bOff + bi * g.strideB;
    const cOff = g.cOff + bi * g.strideC;
    for (let i = 0; i < m; i++) {
      const crow = cOff + i * ldc;
      if (beta === 0) for (let j = 0; j < n; j++) c[crow + j] = 0;
      else if (beta !== 1) for (let j = 0; j < n; j++) c[crow + j] *= beta;
      for (let p = 0; p < k; p++) {
        const av = alpha * a[aOff + i * sa + p * ka];
        if (av === 0) continue;
        const brow = bOff + p * kb;
        for (let j = 0; j < n; j++) c[crow + j] += av * b[brow + j * nb];
      }
    }
  }
}

export function adamwReference(o: AdamWArgs): void {
  const { param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step, gradScale } = o;
  const bc1 = 1 - Math.pow(beta1, step);
  const bc2 = 1 - Math.pow(beta2, step);
  const decay = 1 - lr * weightDecay;
  for (let i = 0; i < n; i++) {
    const g = grad[i] * gradScale;
    const mi = beta1 * m[i] + (1 - beta1) * g;
    const vi = beta2 * v[i] + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
  }
}

export function swigluReference(gate: FloatArray, up: FloatArray, out: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) out[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
}

export function swigluBackwardReference(
  gate: FloatArray, up: FloatArray, g: FloatArray, gGate: FloatArray | null, gUp: FloatArray | null, n: number, overwrite: boolean,
): void {
  for (let i = 0; i < n; i++) {
    const x = gate[i];
    const s = 1 / (1 + Math.exp(-x));
    // (a fresh buffer may hold anything, NaN included: it is never read)
    if (gGate !== null) gGate[i] = (overwrite ? 0 : gGate[i]) + g[i] * up[i] * s * (1 + x * (1 - s));
    if (gUp !== null) gUp[i] = (overwrite ? 0 : gUp[i]) + g[i] * x * s;
  }
}

export function rmsnormReference(x: FloatArray, w: FloatArray, out: FloatArray, rstd: FloatArray, rows: number, dim: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[base + i] * x[base + i];
    const s = 1 / Math.sqrt(ss / dim + eps);
    rstd[r] = s;
    for (let i = 0; i < dim; i++) out[base + i] = x[base + i] * s * w[i];
  }
}

export function rmsnormBackwardReference(
  x: FloatArray, w: FloatArray, rstd: FloatArray, g: FloatArray, gx: FloatArray | null, gw: FloatArray | null, rows: number, dim: number,
  overwrite: boolean,
): void {
  if (gx !== null && overwrite) gx.fill(0, 0, rows * dim);
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    const s = rstd[r];
    if (gw !== null) for (let i = 0; i < dim; i++) gw[i] += g[base + i] * x[base + i] * s;
    if (gx !== null) {
      let dot = 0;
      for (let i = 0; i < dim; i++) dot += g[base + i] * w[i] * x[base + i];
      const c = (dot / dim) * s * s * s;
      for (let i = 0; i < dim; i++) gx[base + i] += g[base + i] * w[i] * s - x[base + i] * c;
    }
  }
}

/** log Σ exp over one row (−inf for a row of −inf). */
export function logSumExp(src: FloatArray, base: number, n: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (src[base + i] > max) max = src[base + i];
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(src[base + i] - max);
  return max + Math.log(sum);
}

/** Writes softmax of src[base..base+n) into dst and returns the log-sum-exp of the row. */
export function softmaxRow(src: FloatArray, dst: FloatArray, base: number, n: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (src[base + i] > max) max = src[base + i];
  if (max === -Infinity) {
    // A fully masked row: define the distribution as all-zero rather than NaN.
    for (let i = 0; i < n; i++) dst[base + i] = 0;
    return -Infinity;
  }
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(src[base + i] - max);
    dst[base + i] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let i = 0; i < n; i++) dst[base + i] *= inv;
  return max + Math.log(sum);
}

export function logSumExpRowsReference(x: FloatArray, lse: FloatArray, rows: number, n: number): void {
  for (let r = 0; r < rows; r++) lse[r] = logSumExp(x, r * n, n);
}

export function softmaxXentBackwardReference(
  x: FloatArray, lse: FloatArray, target: Int32Array, weight: FloatArray, gx: FloatArray, rows: number, n: number,
): void {
  for (let r = 0; r < rows; r++) {
    const w = weight[r];
    if (w === 0) continue;
    const base = r * n;
    for (let i = 0; i < n; i++) gx[base + i] += w * Math.exp(x[base + i] - lse[r]);
    gx[base + target[r]] -= w;
  }
}

/** How many leading entries of row r a mask leaves visible. */
export function visibleOf(mask: RowMask | null, r: number, n: number): number {
  return mask === null ? n : Math.min(n, (r % mask.period) + mask.offset + 1);
}

export function softmaxRowsReference(p: FloatArray, rows: number, n: number, mask: RowMask | null): void {
  for (let r = 0; r < rows; r++) {
    // Masked entries are exactly zero, as exp(-inf) would make them, without paying for the exponentials.
    const visible = visibleOf(mask, r, n);
    softmaxRow(p, p, r * n, visible);
    p.fill(0, r * n + visible, r * n + n);
  }
}

export function softmaxBackwardRowsReference(p: FloatArray, d: FloatArray, rows: number, n: number, mask: RowMask | null): void {
  for (let r = 0; r < rows; r++) {
    const base = r * n;
    const visible = visibleOf(mask, r, n); // p is zero past it, so d is too
    let dot = 0;
    for (let i = 0; i < visible; i++) dot += d[base + i] * p[base + i];
    for (let i = 0; i < visible; i++) d[base + i] = p[base + i] * (d[base + i] - dot);
    d.fill(0, base + visible, base + n);
  }
}

export function copyRowsReference(
  src: FloatArray, srcOff: number, srcStride: number, dst: FloatArray, dstOff: number, dstStride: number, rows: number, width: number, accumulate: boolean,
): void {
  for (let r = 0; r < rows; r++) {
    const s = srcOff + r * srcStride, d = dstOff + r * dstStride;
    if (accumulate) for (let i = 0; i < width; i++) dst[d + i] += src[s + i];
    else for (let i = 0; i < width; i++) dst[d + i] = src[s + i];
  }
}

export function sumSquaresReference(x: FloatArray, n: number): number {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[i] * x[i];
  return ss;
}

export function gatherRowsReference(
  src: FloatArray, _srcRows: number, index: Int32Array, weight: FloatArray | null, dst: FloatArray, rows: number, width: number, accumulate: boolean,
): void {
  for (let m = 0; m < rows; m++) {
    const s = index[m] * width, d = m * width;
    const w = weight === null ? 1 : weight[m];
    if (accumulate) for (let i = 0; i < width; i++) dst[d + i] += w * src[s + i];
    else for (let i = 0; i < width; i++) dst[d + i] = w * src[s + i];
  }
}

export function scatterAddRowsReference(
  src: FloatArray, index: Int32Array, weight: FloatArray | null, dst: FloatArray, _dstRows: number, rows: number, width: number,
): void {
  for (let m = 0; m < rows; m++) {
    const s = m * width, d = index[m] * width;
    const w = weight === null ? 1 : weight[m];
    for (let i = 0; i < width; i++) dst[d + i] += w * src[s + i];
  }
}

export function rowDotsReference(a: FloatArray, _aRows: number, index: Int32Array, b: FloatArray, out: FloatArray, rows: number, width: number): void {
  for (let m = 0; m < rows; m++) {
    const s = index[m] * width, t = m * width;
    let dot = 0;
    for (let i = 0; i < width; i++) dot += a[s + i] * b[t + i];
    out[m] += dot;
  }
}

/** One expert task's feed-forward on the calling thread. */
function expertTaskReference(b: ExpertBatch, t: ExpertBatch['devices'][number][number]): void {
  const { dim, hidden } = b;
  const n = t.rows;
  if (n === 0) return;
  const Buf = b.x instanceof Float64Array ? Float64Array : Float32Array;
  const g = new Buf(n * hidden), u = new Buf(n * hidden);
  const common = { n: hidden, k: dim, a: b.x, aOff: t.row * dim, lda: dim, transA: false, ldb: dim, transB: true, cOff: 0, ldc: hidden, alpha: 1, beta: 0, batch: 1, strideA: 0, strideB: 0, strideC: 0 };
  gemmReference({ ...common, m: n, b: t.gate, bOff: 0, c: g });
  gemmReference({ ...common, m: n, b: t.up, bOff: 0, c: u });
  swigluReference(g, u, g, n * hidden);
  gemmReference({ m: n, n: dim, k: hidden, a: g, aOff: 0, lda: hidden, transA: false, b: t.down, bOff: 0, ldb: hidden, transB: true, c: b.out, cOff: t.row * dim, ldc: dim, alpha: 1, beta: 0, batch: 1, strideA: 0, strideB: 0, strideC: 0 });
}

/** Every device's tasks, one device after another on the calling thread, each timed. */
export function expertsReference(b: ExpertBatch): DeviceTimes {
  checkExperts(b);
  const D = b.devices.length;
  const times = { start: new Float64Array(D), end: new Float64Array(D) };
  const t0 = performance.now();
  b.devices.forEach((tasks, d) => {
    times.start[d] = (performance.now() - t0) / 1000;
    for (const t of tasks) expertTaskReference(b, t);
    times.end[d] = (performance.now() - t0) / 1000;
  });
  return times;
}

export const referenceBackend: Backend = {
  name: 'reference',
  threads: 1,
  gemm: gemmReference,
  adamw: adamwReference,
  swiglu: swigluReference,
  swigluBackward: swigluBackwardReference,
  rmsnorm: rmsnormReference,
  rmsnormBackward: rmsnormBackwardReference,
  logSumExpRows: logSumExpRowsReference,
  softmaxXentBackward: softmaxXentBackwardReference,
  softmaxRows: softmaxRowsReference,
  softmaxBackwardRows: softmaxBackwardRowsReference,
  copyRows: copyRowsReference,
  sumSquares: sumSquaresReference,
  gatherRows: gatherRowsReference,
  scatterAddRows: scatterAddRowsReference,
  rowDots: rowDotsReference,
  experts: expertsReference,
  dequantize,
};
