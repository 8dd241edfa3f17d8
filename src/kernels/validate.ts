// Argument checks shared by every backend. The WASM and native kernels trust their pointers
// completely, so a shape that does not fit its array must be refused here, with a message that names
// the call.
import type { AdamWArgs, ExpertBatch, FloatArray, GemmArgs, RowMask } from './backend.js';

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0;
}

function describe(g: GemmArgs): string {
  return (
    `[m=${g.m} n=${g.n} k=${g.k} transA=${g.transA} transB=${g.transB} ` +
    `lda=${g.lda} ldb=${g.ldb} ldc=${g.ldc} batch=${g.batch}]`
  );
}

/** Checks one operand stored rows×cols with leading dimension ld, repeated batch times at stride. */
function checkOperand(
  kernel: string, g: GemmArgs, name: string, arr: FloatArray, off: number, ld: number, stride: number,
  rows: number, cols: number,
): void {
  const shape = `${name} (${rows}x${cols} stored, ld=${ld}, offset=${off}, stride=${stride})`;
  if (!(arr instanceof Float32Array || arr instanceof Float64Array)) {
    throw new Error(`${kernel}: ${name} must be a Float32Array or Float64Array ${describe(g)}`);
  }
  if (!isCount(ld) || !isCount(off) || !isCount(stride)) {
    throw new Error(`${kernel}: ${shape}: ld, offset and stride must be non-negative integers ${describe(g)}`);
  }
  if (ld < cols) throw new Error(`${kernel}: ${shape}: ld must be at least ${cols} ${describe(g)}`);
  if (rows === 0 || cols === 0 || g.batch === 0) return;
  const need = off + (g.batch - 1) * stride + (rows - 1) * ld + cols;
  if (need > arr.length) {
    throw new Error(`${kernel}: ${shape} needs ${need} elements but ${name} has ${arr.length} ${describe(g)}`);
  }
}

export function checkGemm(g: GemmArgs, kernel = 'gemm'): void {
  for (const key of ['m', 'n', 'k', 'batch'] as const) {
    if (!isCount(g[key])) {
      throw new Error(`${kernel}: ${key} must be a non-negative integer, got ${g[key]} ${describe(g)}`);
    }
  }
  if (typeof g.alpha !== 'number' || typeof g.beta !== 'number') {
    throw new Error(`${kernel}: alpha and beta must be numbers ${describe(g)}`);
  }
  const [ar, ac] = g.transA ? [g.k, g.m] : [g.m, g.k];
  const [br, bc] = g.transB ? [g.n, g.k] : [g.k, g.n];
  checkOperand(kernel, g, 'a', g.a, g.aOff, g.lda, g.strideA, ar, ac);
  checkOperand(kernel, g, 'b', g.b, g.bOff, g.ldb, g.strideB, br, bc);
  checkOperand(kernel, g, 'c', g.c, g.cOff, g.ldc, g.strideC, g.m, g.n);
}

export function checkAdamW(o: AdamWArgs, kernel = 'adamw'): void {
  const at = `[n=${o.n} step=${o.step}]`;
  if (!isCount(o.n)) throw new Error(`${kernel}: n must be a non-negative integer, got ${o.n} ${at}`);
  if (!Number.isInteger(o.step) || o.step < 1) {
    throw new Error(`${kernel}: step must be an integer >= 1, got ${o.step} ${at}`);
  }
  for (const key of ['param', 'grad', 'm', 'v'] as const) {
    const arr = o[key];
    if (!(arr instanceof Float32Array || arr instanceof Float64Array)) {
      throw new Error(`${kernel}: ${key} must be a Float32Array or Float64Array ${at}`);
    }
    if (arr.length < o.n) throw new Error(`${kernel}: ${key} has ${arr.length} elements, needs ${o.n} ${at}`);
  }
}

/** Checks an expert batch: sizes, every task's rows inside x and out, weights of the right size, no row written twice. */
export function checkExperts(b: ExpertBatch): void {
  const k = 'experts';
  if (!isCount(b.dim) || !isCount(b.hidden) || b.dim === 0 || b.hidden === 0) throw new Error(`${k}: dim and hidden must be positive integers, got ${b.dim}, ${b.hidden}`);
  if (b.x.length % b.dim !== 0 || b.out.length < b.x.length) throw new Error(`${k}: x (${b.x.length}) and out (${b.out.length}) must hold whole rows of ${b.dim}, out at least as many as x`);
  const rows = b.x.length / b.dim;
  const written = new Uint8Array(rows);
  b.devices.forEach((tasks, d) => {
    tasks.forEach((t, i) => {
      const at = `${k}: device ${d}, task ${i}`;
      if (!isCount(t.row) || !isCount(t.rows) || t.row + t.rows > rows) throw new Error(`${at}: rows [${t.row}, ${t.row + t.rows}) are outside the ${rows} rows of x`);
      for (const [name, w] of [['gate', t.gate], ['up', t.up], ['down', t.down]] as const) {
        if (w.length !== b.dim * b.hidden) throw new Error(`${at}: ${name} has ${w.length} values, needs ${b.dim} × ${b.hidden}`);
      }
      for (let r = t.row; r < t.row + t.rows; r++) {
        if (written[r]) throw new Error(`${at}: row ${r} is written by another task too`);
        written[r] = 1;
      }
    });
  });
}

// Row-wise kernels. Both backends hand these arrays to code that trusts their lengths and indices,
// so each kernel's arguments are checked here, in one place, with messages that name the kernel.

type Checked = FloatArray | Int32Array | null;

function counts(kernel: string, ...xs: number[]): void {
  for (const x of xs) if (!isCount(x)) throw new Error(`${kernel}: sizes must be non-negative integers, got ${xs.join(', ')}`);
}

/** Every array at least its length (a null gradient is skipped). */
function lengths(kernel: string, arrays: [name: string, x: Checked, n: number][]): void {
  for (const [name, x, n] of arrays) {
    if (x !== null && x.length < n) throw new Error(`${kernel}: ${name} has ${x.length} elements, needs ${n}`);
  }
}

/** The kernels read rows at these indices: every one must be a row that exists. */
function indices(kernel: string, index: Int32Array, n: number, limit: number): void {
  for (let i = 0; i < n; i++) {
    if (!(index[i] >= 0 && index[i] < limit)) throw new Error(`${kernel}: index ${index[i]} at position ${i} is outside [0, ${limit})`);
  }
}

function mask(kernel: string, m: RowMask | null): void {
  if (m !== null && (!Number.isInteger(m.period) || m.period < 1 || !Number.isInteger(m.offset) || m.offset < 0)) {
    throw new Error(`${kernel}: mask period must be a positive integer and offset a non-negative one, got ${m.period}, ${m.offset}`);
  }
}

export function checkSwiglu(gate: FloatArray, up: FloatArray, out: FloatArray, n: number): void {
  counts('swiglu', n);
  lengths('swiglu', [['gate', gate, n], ['up', up, n], ['out', out, n]]);
}

export function checkSwigluBackward(gate: FloatArray, up: FloatArray, g: FloatArray, gGate: FloatArray | null, gUp: FloatArray | null, n: number): void {
  counts('swigluBackward', n);
  lengths('swigluBackward', [['gate', gate, n], ['up', up, n], ['g', g, n], ['gGate', gGate, n], ['gUp', gUp, n]]);
}

export function checkRmsnorm(x: FloatArray, w: FloatArray, out: FloatArray, rstd: FloatArray, rows: number, dim: number): void {
  counts('rmsnorm', rows, dim);
  lengths('rmsnorm', [['x', x, rows * dim], ['w', w, dim], ['out', out, rows * dim], ['rstd', rstd, rows]]);
}

export function checkRmsnormBackward(
  x: FloatArray, w: FloatArray, rstd: FloatArray, g: FloatArray, gx: FloatArray | null, gw: FloatArray | null, rows: number, dim: number,
): void {
  const k = 'rmsnormBackward';
  counts(k, rows, dim);
  lengths(k, [['x', x, rows * dim], ['w', w, dim], ['rstd', rstd, rows], ['g', g, rows * dim], ['gx', gx, rows * dim], ['gw', gw, dim]]);
}

export function checkLogSumExpRows(x: FloatArray, lse: FloatArray, rows: number, n: number): void {
  counts('logSumExpRows', rows, n);
  lengths('logSumExpRows', [['x', x, rows * n], ['lse', lse, rows]]);
}

export function checkSoftmaxXentBackward(x: FloatArray, lse: FloatArray, target: Int32Array, weight: FloatArray, gx: FloatArray, rows: number, n: number): void {
  const k = 'softmaxXentBackward';
  counts(k, rows, n);
  lengths(k, [['x', x, rows * n], ['lse', lse, rows], ['target', target, rows], ['weight', weight, rows], ['gx', gx, rows * n]]);
  // The kernels trust the targets as addresses.
  for (let r = 0; r < rows; r++) {
    if (weight[r] !== 0 && !(target[r] >= 0 && target[r] < n)) throw new Error(`${k}: target ${target[r]} at row ${r} is outside [0, ${n})`);
  }
}

export function checkSoftmaxRows(p: FloatArray, rows: number, n: number, m: RowMask | null): void {
  counts('softmaxRows', rows, n);
  lengths('softmaxRows', [['p', p, rows * n]]);
  mask('softmaxRows', m);
}

export function checkSoftmaxBackwardRows(p: FloatArray, d: FloatArray, rows: number, n: number, m: RowMask | null): void {
  counts('softmaxBackwardRows', rows, n);
  lengths('softmaxBackwardRows', [['p', p, rows * n], ['d', d, rows * n]]);
  mask('softmaxBackwardRows', m);
}

export function checkCopyRows(
  src: FloatArray, srcOff: number, srcStride: number, dst: FloatArray, dstOff: number, dstStride: number, rows: number, width: number,
): void {
  counts('copyRows', srcOff, srcStride, dstOff, dstStride, rows, width);
  if (rows === 0 || width === 0) return;
  lengths('copyRows', [['src', src, srcOff + (rows - 1) * srcStride + width], ['dst', dst, dstOff + (rows - 1) * dstStride + width]]);
}

export function checkSumSquares(x: FloatArray, n: number): void {
  counts('sumSquares', n);
  lengths('sumSquares', [['x', x, n]]);
}

export function checkGatherRows(src: FloatArray, srcRows: number, index: Int32Array, weight: FloatArray | null, dst: FloatArray, rows: number, width: number): void {
  const k = 'gatherRows';
  counts(k, srcRows, rows, width);
  lengths(k, [['src', src, srcRows * width], ['index', index, rows], ['weight', weight, rows], ['dst', dst, rows * width]]);
  indices(k, index, rows, srcRows);
}

export function checkScatterAddRows(src: FloatArray, index: Int32Array, weight: FloatArray | null, dst: FloatArray, dstRows: number, rows: number, width: number): void {
  const k = 'scatterAddRows';
  counts(k, dstRows, rows, width);
  lengths(k, [['src', src, rows * width], ['index', index, rows], ['weight', weight, rows], ['dst', dst, dstRows * width]]);
  indices(k, index, rows, dstRows);
}

export function checkRowDots(a: FloatArray, aRows: number, index: Int32Array, b: FloatArray, out: FloatArray, rows: number, width: number): void {
  const k = 'rowDots';
  counts(k, aRows, rows, width);
  lengths(k, [['a', a, aRows * width], ['index', index, rows], ['b', b, rows * width], ['out', out, rows]]);
  indices(k, index, rows, aRows);
}
