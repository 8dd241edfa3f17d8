// Checks of a backend's kernels against the TypeScript reference, shared by the WASM tests
// (kernels.test.ts) and the native ones (native-dense.test.ts): GEMM problems with padded strides and
// offsets verified within float32 rounding, and every row-wise kernel on awkward shapes.
import assert from 'node:assert/strict';
import {
  type AdamWArgs, adamwReference, allocF32, allocI32, type Backend, type FloatArray, freeF32, freeI32, type GemmArgs, gemmArgs,
  gemmReference, referenceBackend, type RowMask,
} from '../src/kernels/index.js';
import { mulberry32 } from './helpers.js';

export function rng(seed: number): () => number {
  const u = mulberry32(seed);
  return () => u() - 0.5;
}

/** n values from `rand` on the WASM heap. */
export function heap(n: number, rand: () => number): Float32Array {
  const a = allocF32(n);
  for (let i = 0; i < n; i++) a[i] = rand();
  return a;
}

export const f64 = (x: FloatArray): Float64Array => new Float64Array(x);
const abs = (x: FloatArray): Float64Array => f64(x).map(Math.abs);
export const EPS = 2 ** -23;

/** Asserts |got − want| ≤ tol(i) everywhere (NaN must match NaN, infinities must match exactly). */
export function near(label: string, got: FloatArray, want: FloatArray, tol: (i: number) => number, n = want.length): void {
  for (let i = 0; i < n; i++) {
    if (Object.is(got[i], want[i]) || got[i] === want[i]) continue;
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= tol(i))) assert.fail(`${label}: [${i}] = ${got[i]}, want ${want[i]} (error ${err}, tolerance ${tol(i)})`);
  }
}

/**
 * Runs g on the backend and checks every element of C against a float64 reference, within the
 * rounding a float32 dot product of length k may accumulate: (k + 2)·eps·Σ|terms|. (A NaN where the
 * reference has a number fails too; untouched padding must stay as it was.) Then returns the operands
 * to the heap.
 */
export function verifyGemm(be: Backend, g: GemmArgs, label: string): void {
  const c0 = f64(g.c);
  const want = f64(c0);
  gemmReference({ ...g, a: f64(g.a), b: f64(g.b), c: want });
  const bound = abs(c0);
  gemmReference({ ...g, a: abs(g.a), b: abs(g.b), c: bound, alpha: Math.abs(g.alpha), beta: Math.abs(g.beta) });
  be.gemm(g);
  const tol = (g.k + 2) * EPS;
  for (let i = 0; i < want.length; i++) {
    if (Object.is(g.c[i], want[i])) continue; // untouched padding, NaN included
    const err = Math.abs(g.c[i] - want[i]);
    if (!(err <= tol * bound[i] + 1e-30)) {
      assert.fail(`${label} threads=${be.threads}: c[${i}] = ${g.c[i]}, want ${want[i]} (error ${err}, bound ${tol * bound[i]})`);
    }
  }
  for (const x of [g.a, g.b, g.c]) freeF32(x as Float32Array);
}

/** op(A) m×k, op(B) k×n and C with padded leading dimensions and offsets, in `batch` strided copies, on the heap. */
export function gemmProblem(
  m: number, n: number, k: number, transA: boolean, transB: boolean, rand: () => number, extra: Partial<GemmArgs> = {},
): GemmArgs {
  const lda = (transA ? m : k) + 3;
  const ldb = (transB ? k : n) + 1;
  const ldc = n + 2;
  const batch = extra.batch ?? 1;
  const strideA = extra.strideA ?? (transA ? k : m) * lda + 5;
  const strideB = extra.strideB ?? (transB ? n : k) * ldb + 7;
  const strideC = extra.strideC ?? m * ldc + 1;
  const aOff = 2, bOff = 9, cOff = 4;
  return gemmArgs({
    m, n, k, transA, transB, lda, ldb, ldc, aOff, bOff, cOff, batch, strideA, strideB, strideC,
    a: heap(aOff + (batch - 1) * strideA + (transA ? k : m) * lda, rand),
    b: heap(bOff + (batch - 1) * strideB + (transB ? n : k) * ldb, rand),
    c: heap(cOff + (batch - 1) * strideC + m * ldc, rand),
    alpha: extra.alpha ?? 1,
    beta: extra.beta ?? 0,
  });
}

// Row-wise kernels: each check runs every shape on every backend given.

export function swigluMatches(backends: readonly Backend[], sizes: readonly number[]): void {
  const rand = rng(11);
  for (const be of backends) {
    for (const n of sizes) {
      // gates from −120 to 120: exp under- and overflows inside σ for the largest
      const gate = heap(n, () => rand() * (n > 1000 ? 240 : 8));
      const up = heap(n, rand), g = heap(n, rand), gGate = heap(n, rand), gUp = heap(n, rand), out = heap(n, rand);
      const overwrite = n % 2 === 1;
      if (overwrite) for (const a of [gGate, gUp]) a.fill(NaN); // a fresh buffer's contents are never read
      const want = new Float64Array(n), wantGate = f64(gGate), wantUp = f64(gUp);
      referenceBackend.swiglu(f64(gate), f64(up), want, n);
      referenceBackend.swigluBackward(f64(gate), f64(up), f64(g), wantGate, wantUp, n, overwrite);
      be.swiglu(gate, up, out, n);
      be.swigluBackward(gate, up, g, gGate, gUp, n, overwrite);
      const label = `n=${n} overwrite=${overwrite} threads=${be.threads}`;
      // Below about 1e-36 float32 has no precision left (and σ(x) for x < −88.4 comes out 0).
      near(`swiglu ${label}`, out, want, (i) => 4 * EPS * Math.abs(want[i]) + 1e-35);
      // Each term carries a few roundings; bound by the terms' size, not the (cancelling) sum.
      const scale = (i: number): number => Math.abs(g[i]) * (Math.abs(up[i]) + 1) * (Math.abs(gate[i]) + 1);
      near(`swiglu dGate ${label}`, gGate, wantGate, (i) => 8 * EPS * (scale(i) + Math.abs(wantGate[i])) + 1e-35);
      near(`swiglu dUp ${label}`, gUp, wantUp, (i) => 8 * EPS * (scale(i) + Math.abs(wantUp[i])) + 1e-35);
      // A null gradient is skipped.
      const before = gGate.slice();
      be.swigluBackward(gate, up, g, null, gUp, n, false);
      assert.deepEqual(gGate, before);
      for (const x of [gate, up, g, gGate, gUp, out]) freeF32(x);
    }
  }
}

export function rmsnormMatches(backends: readonly Backend[], shapes: readonly [number, number][]): void {
  const rand = rng(12);
  for (const [rows, dim] of shapes) {
    for (const be of backends) {
      const x = heap(rows * dim, rand), w = heap(dim, rand), g = heap(rows * dim, rand);
      const out = heap(rows * dim, rand), rstd = heap(rows, rand), gx = heap(rows * dim, rand), gw = heap(dim, rand);
      const overwrite = (rows + dim) % 2 === 1;
      if (overwrite) gx.fill(NaN);
      const want = new Float64Array(rows * dim), wantRstd = new Float64Array(rows), wantGx = f64(gx), wantGw = f64(gw);
      referenceBackend.rmsnorm(f64(x), f64(w), want, wantRstd, rows, dim, 1e-6);
      referenceBackend.rmsnormBackward(f64(x), f64(w), wantRstd, f64(g), wantGx, wantGw, rows, dim, overwrite);
      be.rmsnorm(x, w, out, rstd, rows, dim, 1e-6);
      be.rmsnormBackward(x, w, rstd, g, gx, gw, rows, dim, overwrite);
      const label = `${rows}x${dim} overwrite=${overwrite} threads=${be.threads}`;
      const tol = (dim + 4) * EPS;
      near(`rmsnorm rstd ${label}`, rstd, wantRstd, (r) => tol * wantRstd[r]);
      near(`rmsnorm out ${label}`, out, want, (i) => tol * wantRstd[Math.floor(i / dim)] * Math.abs(x[i] * w[i % dim]) + 1e-30);
      // gx and gw are sums over a row or a column of terms of this size
      near(`rmsnorm gx ${label}`, gx, wantGx, (i) => tol * 4 * (wantRstd[Math.floor(i / dim)] + 1) * (Math.abs(wantGx[i]) + 1));
      near(`rmsnorm gw ${label}`, gw, wantGw, (i) => (rows + 4) * EPS * 4 * (Math.max(...wantRstd) + 1) * (Math.abs(wantGw[i]) + rows));
      // Each gradient alone.
      const gwBefore = gw.slice();
      be.rmsnormBackward(x, w, rstd, g, gx, null, rows, dim, false);
      assert.deepEqual(gw, gwBefore);
      for (const a of [x, w, g, out, rstd, gx, gw]) freeF32(a);
    }
  }
}

export function crossEntropyMatches(backends: readonly Backend[], shapes: readonly [number, number][]): void {
  const rand = rng(13);
  for (const [rows, n] of shapes) {
    for (const be of backends) {
      const x = heap(rows * n, () => rand() * 20), lse = heap(rows, rand), gx = heap(rows * n, rand), weight = heap(rows, rand);
      const target = allocI32(rows);
      for (let r = 0; r < rows; r++) target[r] = Math.floor(Math.abs(rand()) * 2 * n) % n;
      if (rows > 1) {
        weight[1] = 0; // an ignored row, whose target is not even read
        target[1] = -7;
      }
      const wantLse = new Float64Array(rows), wantGx = f64(gx);
      referenceBackend.logSumExpRows(f64(x), wantLse, rows, n);
      be.logSumExpRows(x, lse, rows, n);
      const label = `${rows}x${n} threads=${be.threads}`;
      near(`logSumExp ${label}`, lse, wantLse, (r) => (n + 4) * EPS * (Math.abs(wantLse[r]) + 1));
      referenceBackend.softmaxXentBackward(f64(x), wantLse, target, f64(weight), wantGx, rows, n);
      be.softmaxXentBackward(x, lse, target, weight, gx, rows, n);
      near(`xent backward ${label}`, gx, wantGx, (i) => 64 * EPS * (Math.abs(wantGx[i]) + Math.abs(weight[Math.floor(i / n)])));
      for (const a of [x, lse, gx, weight]) freeF32(a);
      freeI32(target);
    }
  }
  // A row of −inf has log-sum-exp −inf, as in the reference.
  for (const be of backends) {
    const x = heap(6, () => -Infinity), lse = heap(2, rng(1));
    be.logSumExpRows(x, lse, 2, 3);
    assert.deepEqual([...lse], [-Infinity, -Infinity]);
    freeF32(x);
    freeF32(lse);
  }
}

export function softmaxMatches(backends: readonly Backend[], shapes: readonly [number, number][]): void {
  const rand = rng(14);
  for (const [rows, n] of shapes) {
    const masks: (RowMask | null)[] = [null, { period: Math.min(rows, n), offset: n - Math.min(rows, n) }, { period: 5, offset: 0 }];
    for (const mask of masks) {
      for (const be of backends) {
        const p = heap(rows * n, () => rand() * 10), d = heap(rows * n, rand);
        const wantP = f64(p), wantD = f64(d);
        referenceBackend.softmaxRows(wantP, rows, n, mask);
        referenceBackend.softmaxBackwardRows(wantP, wantD, rows, n, mask);
        be.softmaxRows(p, rows, n, mask);
        be.softmaxBackwardRows(p, d, rows, n, mask);
        const label = `${rows}x${n} mask=${JSON.stringify(mask)} threads=${be.threads}`;
        near(`softmax ${label}`, p, wantP, (i) => (n + 8) * EPS * wantP[i] + 1e-30);
        near(`softmax backward ${label}`, d, wantD, (i) => (n + 8) * 4 * EPS * (wantP[i] + Math.abs(wantD[i])) + 1e-30);
        for (const a of [p, d]) freeF32(a);
      }
    }
  }
  // A fully masked row (all −inf) comes out all zero, not NaN; an entry of −inf comes out exactly 0.
  for (const be of backends) {
    const p = heap(8, () => -Infinity);
    p[5] = 1;
    be.softmaxRows(p, 2, 4, null);
    assert.deepEqual([...p], [0, 0, 0, 0, 0, 1, 0, 0]);
    freeF32(p);
  }
}

export function copyRowsMatches(backends: readonly Backend[], shapes: readonly [number, number][]): void {
  const rand = rng(15);
  for (const [rows, width] of shapes) {
    for (const [srcPad, dstPad] of [[0, 0], [3, 1], [0, 7]]) {
      for (const accumulate of [false, true]) {
        for (const be of backends) {
          const srcStride = width + srcPad, dstStride = width + dstPad, srcOff = 2, dstOff = 5;
          const src = heap(srcOff + rows * srcStride, rand), dst = heap(dstOff + rows * dstStride + 3, rand);
          const want = f64(dst);
          referenceBackend.copyRows(f64(src), srcOff, srcStride, want, dstOff, dstStride, rows, width, accumulate);
          be.copyRows(src, srcOff, srcStride, dst, dstOff, dstStride, rows, width, accumulate);
          // A copy is exact; a sum of two float32 values rounds once.
          near(`copyRows ${rows}x${width} pads=${srcPad},${dstPad} accumulate=${accumulate} threads=${be.threads}`, dst, want, (i) => EPS * Math.abs(want[i]));
          freeF32(src);
          freeF32(dst);
        }
      }
    }
  }
}

export function indexedRowsMatch(backends: readonly Backend[], shapes: readonly [number, number][]): void {
  const rand = rng(17);
  for (const [rows, width] of shapes) {
    for (const be of backends) {
      const srcRows = 1 + (rows % 5); // few source rows: indices repeat
      const index = allocI32(rows);
      for (let m = 0; m < rows; m++) index[m] = Math.floor(Math.abs(rand()) * 2 * srcRows) % srcRows;
      const table = heap(srcRows * width, rand), weight = heap(rows, rand), rowsIn = heap(rows * width, rand);
      const label = `${rows}x${width} threads=${be.threads}`;
      for (const w of [null, weight]) {
        for (const accumulate of [false, true]) {
          const dst = heap(rows * width, rand), want = f64(dst);
          referenceBackend.gatherRows(f64(table), srcRows, index, w === null ? null : f64(w), want, rows, width, accumulate);
          be.gatherRows(table, srcRows, index, w, dst, rows, width, accumulate);
          near(`gatherRows weighted=${w !== null} accumulate=${accumulate} ${label}`, dst, want, (i) => 4 * EPS * (Math.abs(want[i]) + 1));
          freeF32(dst);
        }
        const acc = heap(srcRows * width, rand), want = f64(acc);
        referenceBackend.scatterAddRows(f64(rowsIn), index, w === null ? null : f64(w), want, srcRows, rows, width);
        be.scatterAddRows(rowsIn, index, w, acc, srcRows, rows, width);
        near(`scatterAddRows weighted=${w !== null} ${label}`, acc, want, (i) => (rows + 4) * 2 * EPS * (Math.abs(want[i]) + 1));
        freeF32(acc);
      }
      const out = heap(rows, rand), want = f64(out);
      referenceBackend.rowDots(f64(table), srcRows, index, f64(rowsIn), want, rows, width);
      be.rowDots(table, srcRows, index, rowsIn, out, rows, width);
      near(`rowDots ${label}`, out, want, (i) => (width + 4) * EPS * (Math.abs(want[i]) + width));
      for (const a of [table, weight, rowsIn, out]) freeF32(a);
      freeI32(index);
    }
  }
  for (const be of backends) {
    const t = heap(4, rand), d = heap(4, rand), bad = allocI32(2);
    bad.set([0, 2]);
    assert.throws(() => be.gatherRows(t, 2, bad, null, d, 2, 2, false), /gatherRows: index 2 at position 1 is outside \[0, 2\)/);
    assert.throws(() => be.scatterAddRows(t, bad, null, d, 2, 2, 2), /scatterAddRows: index 2 at position 1 is outside/);
    for (const a of [t, d]) freeF32(a);
    freeI32(bad);
  }
}

export function adamwMatches(backends: readonly Backend[]): void {
  const rand = rng(5);
  for (const be of backends) {
    for (const n of [1, 7, 100_003]) {
      const param = heap(n, rand), grad = heap(n, rand), m = heap(n, rand);
      const v = heap(n, () => Math.abs(rand()) * 0.01);
      const want = [param, grad, m, v].map(f64);
      for (let step = 1; step <= 3; step++) {
        const o: AdamWArgs = { param, grad, m, v, n, lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step, gradScale: 0.5 };
        be.adamw(o);
        adamwReference({ ...o, param: want[0], grad: want[1], m: want[2], v: want[3] });
      }
      for (const [name, got, ref] of [['param', param, want[0]], ['m', m, want[2]], ['v', v, want[3]]] as const) {
        // float32 rounding of terms of order 1 (a wrong update, of order lr = 1e-3, shows)
        near(`adamw ${name} n=${n} threads=${be.threads}`, got, ref, (i) => 1e-6 * Math.max(Math.abs(ref[i]), 1));
      }
      for (const x of [param, grad, m, v]) freeF32(x);
    }
  }
}
