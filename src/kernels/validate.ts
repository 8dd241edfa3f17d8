// Argument checks shared by every backend. The WASM kernels trust their pointers completely, so a
// shape that does not fit its array must be refused here, with a message that names the call.
import type { AdamWArgs, ExpertBatch, FloatArray, GemmArgs } from './backend.js';

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
