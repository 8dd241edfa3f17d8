// The WASM kernels against the TypeScript reference: awkward shapes that exercise every edge tile,
// all transposes, alpha/beta, offsets, strided batches, the matrix-vector paths, both SIMD variants,
// one thread and several (with the parallel threshold at zero so that small shapes are cut too).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  type AdamWArgs, adamwReference, allocF32, allocI32, backend, backendFromEnv, createBackend, createWasmBackend, type FloatArray, type GemmArgs,
  freeF32, freeI32, gemmArgs, gemmReference, initBackend, loadNativeAddon, onHeap, referenceBackend, relaxedSimdSupported, type RowMask, type WasmBackend,
} from '../src/kernels/index.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}

function heap(n: number, rand: () => number): Float32Array {
  const a = allocF32(n);
  for (let i = 0; i < n; i++) a[i] = rand();
  return a;
}

function abs(x: FloatArray): Float64Array {
  const out = new Float64Array(x);
  for (let i = 0; i < out.length; i++) out[i] = Math.abs(out[i]);
  return out;
}

/**
 * Runs g on the backend and checks every element of C against a float64 reference, within the
 * rounding a float32 dot product of length k may accumulate: (k + 2)·eps·Σ|terms|. (A NaN where the
 * reference has a number fails too.) Then returns the operands to the heap.
 */
function verify(be: WasmBackend, g: GemmArgs, label: string): void {
  const c0 = new Float64Array(g.c);
  const want = new Float64Array(c0);
  gemmReference({ ...g, a: new Float64Array(g.a), b: new Float64Array(g.b), c: want });
  const bound = abs(c0);
  gemmReference({ ...g, a: abs(g.a), b: abs(g.b), c: bound, alpha: Math.abs(g.alpha), beta: Math.abs(g.beta) });
  be.gemm(g);
  const tol = (g.k + 2) * 2 ** -23;
  for (let i = 0; i < want.length; i++) {
    if (Object.is(g.c[i], want[i])) continue; // untouched padding, NaN included
    const err = Math.abs(g.c[i] - want[i]);
    if (!(err <= tol * bound[i] + 1e-30)) {
      assert.fail(`${label}: c[${i}] = ${g.c[i]}, want ${want[i]} (error ${err}, bound ${tol * bound[i]})`);
    }
  }
  for (const x of [g.a, g.b, g.c]) freeF32(x as Float32Array);
}

/** op(A) m×k, op(B) k×n and C with padded leading dimensions and offsets, in `batch` strided copies. */
function problem(
  m: number, n: number, k: number, transA: boolean, transB: boolean, rand: () => number,
  extra: Partial<GemmArgs> = {},
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

const cores = os.availableParallelism();
const variants = relaxedSimdSupported() ? (['relaxed', 'simd'] as const) : (['simd'] as const);
const backends: WasmBackend[] = [];
function make(threads: number, simd: 'relaxed' | 'simd'): WasmBackend {
  const be = createWasmBackend({ threads, simd, parallelMinFlops: 0, parallelMinWork: 0 });
  backends.push(be);
  return be;
}
after(() => Promise.all(backends.map((b) => b.dispose())));

const SIZES = [1, 3, 17, 63, 257];

for (const simd of variants) {
  describe(`wasm gemm (${simd} SIMD)`, () => {
    const single = make(1, simd);
    const pool = make(Math.max(3, cores), simd);

    it('matches the reference on awkward shapes, all transposes, 1 and all threads', () => {
      const rand = rng(1);
      for (const m of SIZES) for (const n of SIZES) for (const k of SIZES) {
        for (const transA of [false, true]) for (const transB of [false, true]) {
          // Each shape on one backend, alternating, keeps the file fast while covering both.
          const be = (m + n + k + Number(transA) + 2 * Number(transB)) % 2 === 0 ? single : pool;
          const label = `${m}x${n}x${k} transA=${transA} transB=${transB} threads=${be.threads}`;
          verify(be, problem(m, n, k, transA, transB, rand, { alpha: 1.25, beta: 0.5 }), label);
        }
      }
    });

    it('handles alpha and beta, and beta = 0 ignores NaN in C', () => {
      const rand = rng(2);
      for (const [alpha, beta] of [[1, 0], [1, 1], [-0.5, 0.75], [0, 2], [2, 0]]) {
        for (const be of [single, pool]) {
          for (const [m, n, k] of [[33, 47, 70], [1, 300, 50], [300, 1, 50], [2, 40, 9]]) {
            const g = problem(m, n, k, false, true, rand, { alpha, beta });
            if (beta === 0) g.c.fill(NaN);
            verify(be, g, `alpha=${alpha} beta=${beta} ${m}x${n}x${k} threads=${be.threads}`);
          }
        }
      }
    });

    it('runs strided batches, broadcast operands and a shared accumulating C', () => {
      const rand = rng(3);
      for (const be of [single, pool]) {
        for (const [transA, transB] of [[false, false], [true, true], [false, true]] as const) {
          verify(be, problem(19, 35, 21, transA, transB, rand, { batch: 5, alpha: 0.5, beta: 1 }), `batch 5 threads=${be.threads}`);
          verify(be, problem(1, 70, 40, transA, transB, rand, { batch: 3 }), `gemv batch 3 threads=${be.threads}`);
          verify(be, problem(40, 24, 30, transA, transB, rand, { batch: 4, strideB: 0 }), `shared B threads=${be.threads}`);
          // strideC = 0 with beta = 1 sums the batch into one C, which only works done in order.
          verify(be, problem(37, 29, 16, transA, transB, rand, { batch: 6, strideC: 0, beta: 1 }), `shared C threads=${be.threads}`);
        }
      }
    });

    it('covers the matrix-vector paths past their chunk sizes', () => {
      const rand = rng(4);
      // Beyond 4096 outputs the outputs are chunked, beyond 2048 along k the vector.
      for (const [m, n, k] of [[1, 4100, 33], [1, 300, 2100], [2, 600, 2049], [4100, 1, 33], [300, 1, 2100], [700, 2, 300]]) {
        for (const [transA, transB] of [[false, false], [true, true], [m > 2, m <= 2]]) {
          const be = transA === transB ? pool : single;
          verify(be, problem(m, n, k, transA, transB, rand, { alpha: 0.75, beta: 0.25 }), `${m}x${n}x${k} ${transA} ${transB}`);
        }
      }
    });

    it('covers the small-m paths: every row count up to 9, edge columns and edge k, split k', () => {
      const rand = rng(8);
      for (let m = 1; m <= 9; m++) {
        for (const [n, k] of [[1, 5], [5, 1], [7, 33], [17, 7], [70, 63], [33, 257], [9, 2100], [260, 300], [4100, 9]]) {
          for (const transA of [false, true]) for (const transB of [false, true]) {
            const be = (m + n + Number(transA)) % 2 === 0 ? single : pool;
            const [alpha, beta] = (m + k) % 3 === 0 ? [1, 0] : (m + k) % 3 === 1 ? [-0.75, 1] : [1.5, 0.25];
            verify(be, problem(m, n, k, transA, transB, rand, { alpha, beta }), `${m}x${n}x${k} transA=${transA} transB=${transB} threads=${be.threads}`);
          }
        }
      }
      // Split k (one or two rows, B row-major, parallel): bands that do not divide k, more threads
      // than chunks, one call after another on the same scratch space, and beta = 0 over NaN.
      for (const [m, n, k] of [[1, 2048, 2048], [2, 100, 1000], [1, 3, 40], [2, 4096, 65], [1, 4097, 64]]) {
        for (const beta of [0, 1, 0.5]) {
          const g = problem(m, n, k, false, false, rand, { alpha: 0.5, beta });
          if (beta === 0) g.c.fill(NaN);
          verify(pool, g, `split k ${m}x${n}x${k} beta=${beta}`);
        }
      }
    });

    it('matches the reference AdamW', () => {
      const rand = rng(5);
      for (const be of [single, pool]) {
        for (const n of [1, 7, 100_003]) {
          const param = heap(n, rand), grad = heap(n, rand), m = heap(n, rand);
          const v = heap(n, () => Math.abs(rand()) * 0.01);
          const want = [param, grad, m, v].map((x) => new Float64Array(x));
          for (let step = 1; step <= 3; step++) {
            const o: AdamWArgs = { param, grad, m, v, n, lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step, gradScale: 0.5 };
            be.adamw(o);
            adamwReference({ ...o, param: want[0], grad: want[1], m: want[2], v: want[3] });
          }
          for (const [name, got, ref] of [['param', param, want[0]], ['m', m, want[2]], ['v', v, want[3]]] as const) {
            for (let i = 0; i < n; i++) {
              const err = Math.abs(got[i] - ref[i]);
              // float32 rounding of terms of order 1 (a wrong update, of order lr = 1e-3, shows)
              if (!(err <= 1e-6 * Math.max(Math.abs(ref[i]), 1))) assert.fail(`adamw ${name}[${i}] = ${got[i]}, want ${ref[i]} (n=${n})`);
            }
          }
        }
      }
    });
  });
}

/** Asserts |got − want| ≤ tol(i) everywhere (NaN must match NaN, infinities must match exactly). */
function near(label: string, got: FloatArray, want: FloatArray, tol: (i: number) => number, n = want.length): void {
  for (let i = 0; i < n; i++) {
    if (Object.is(got[i], want[i]) || got[i] === want[i]) continue;
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= tol(i))) assert.fail(`${label}: [${i}] = ${got[i]}, want ${want[i]} (error ${err}, tolerance ${tol(i)})`);
  }
}

const f64 = (x: FloatArray): Float64Array => new Float64Array(x);
const EPS = 2 ** -23;

for (const simd of variants) {
  describe(`wasm row-wise kernels (${simd} SIMD)`, () => {
    const single = make(1, simd);
    const pool = make(Math.max(3, cores), simd);
    const both = [single, pool];
    // Every kernel on every pair of awkward sizes, rows × width, on one thread and on several.
    const shapes: [number, number][] = [];
    for (const rows of SIZES) for (const n of SIZES) shapes.push([rows, n]);

    it('swiglu and its backward match the reference, across the range of exp', () => {
      const rand = rng(11);
      for (const be of both) {
        for (const n of [...SIZES, 4096]) {
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
          be.swigluBackward(gate, up, g, null, gUp, n, false);
          for (const x of [gate, up, g, gGate, gUp, out]) freeF32(x);
        }
      }
    });

    it('rmsnorm and its backward match the reference', () => {
      const rand = rng(12);
      for (const [rows, dim] of shapes) {
        for (const be of both) {
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
          near(`rmsnorm gx ${label}`, gx, wantGx, (i) => tol * 4 * (wantRstd[Math.floor(i / dim)] ** 1 + 1) * (Math.abs(wantGx[i]) + 1));
          near(`rmsnorm gw ${label}`, gw, wantGw, (i) => (rows + 4) * EPS * 4 * (Math.max(...wantRstd) + 1) * (Math.abs(wantGw[i]) + rows));
          for (const a of [x, w, g, out, rstd, gx, gw]) freeF32(a);
        }
      }
    });

    it('log-sum-exp rows and the softmax cross-entropy backward match the reference', () => {
      const rand = rng(13);
      for (const [rows, n] of shapes) {
        for (const be of both) {
          const x = heap(rows * n, () => rand() * 20), lse = heap(rows, rand), gx = heap(rows * n, rand);
          const weight = heap(rows, rand);
          if (rows > 1) weight[1] = 0; // a skipped (ignored) row
          const tgt = allocF32(rows);
          const target = new Int32Array(tgt.buffer, tgt.byteOffset, rows);
          for (let r = 0; r < rows; r++) target[r] = Math.floor(Math.abs(rand()) * 2 * n) % n;
          const wantLse = new Float64Array(rows), wantGx = f64(gx);
          referenceBackend.logSumExpRows(f64(x), wantLse, rows, n);
          be.logSumExpRows(x, lse, rows, n);
          const label = `${rows}x${n} threads=${be.threads}`;
          near(`logSumExp ${label}`, lse, wantLse, (r) => (n + 4) * EPS * (Math.abs(wantLse[r]) + 1));
          referenceBackend.softmaxXentBackward(f64(x), wantLse, target, f64(weight), wantGx, rows, n);
          be.softmaxXentBackward(x, lse, target, weight, gx, rows, n);
          near(`xent backward ${label}`, gx, wantGx, (i) => 64 * EPS * (Math.abs(wantGx[i]) + Math.abs(weight[Math.floor(i / n)])));
          for (const a of [x, lse, gx, weight, tgt]) freeF32(a);
        }
      }
      // A row of -inf has log-sum-exp -inf, as in the reference.
      const x = heap(6, () => -Infinity), lse = heap(2, rng(1));
      pool.logSumExpRows(x, lse, 2, 3);
      assert.deepEqual([...lse], [-Infinity, -Infinity]);
      freeF32(x);
      freeF32(lse);
    });

    it('copies and accumulates strided rows like the reference, contiguous runs included', () => {
      const rand = rng(15);
      for (const [rows, width] of [...shapes, [1, 5000], [3, 2049], [2, 20]] as [number, number][]) {
        for (const [srcPad, dstPad] of [[0, 0], [3, 1], [0, 7]]) {
          for (const accumulate of [false, true]) {
            for (const be of both) {
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
    });

    it('sums squares like the reference, in float64', () => {
      const rand = rng(16);
      for (const n of [...SIZES, 1024, 5000, 100_003]) {
        for (const be of both) {
          const x = heap(n, rand);
          const want = referenceBackend.sumSquares(f64(x), n);
          const got = be.sumSquares(x, n);
          // float32 lanes over blocks of 1024, then float64: about 1024 roundings at worst
          assert.ok(Math.abs(got - want) <= 1100 * EPS * want, `sumSquares n=${n} threads=${be.threads}: ${got}, want ${want}`);
          freeF32(x);
        }
      }
    });

    it('gathers, scatter-adds (repeated indices) and dots indexed rows like the reference', () => {
      const rand = rng(17);
      for (const [rows, width] of shapes) {
        for (const be of both) {
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
      const t = heap(4, rand), d = heap(4, rand), bad = allocI32(2);
      bad.set([0, 2]);
      assert.throws(() => pool.gatherRows(t, 2, bad, null, d, 2, 2, false), /gatherRows: index 2 at position 1 is outside \[0, 2\)/);
      assert.throws(() => pool.scatterAddRows(t, bad, null, d, 2, 2, 2), /scatterAddRows: index 2 at position 1 is outside/);
      for (const a of [t, d]) freeF32(a);
      freeI32(bad);
    });

    it('softmax rows and their backward match the reference, with and without a causal mask', () => {
      const rand = rng(14);
      for (const [rows, n] of shapes) {
        const masks: (RowMask | null)[] = [null, { period: Math.min(rows, n), offset: n - Math.min(rows, n) }, { period: 5, offset: 0 }];
        for (const mask of masks) {
          for (const be of both) {
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
      // A fully masked row (all −inf) comes out all zero, not NaN.
      const p = heap(8, () => -Infinity);
      pool.softmaxRows(p, 2, 4, null);
      assert.deepEqual([...p], new Array(8).fill(0));
      freeF32(p);
    });
  });
}

describe('wasm backend', () => {
  const be = make(cores, variants[0]);

  it('survives many small back-to-back parallel calls on more threads than cores', () => {
    // Late-waking workers meet the next job half-written: none may claim any part of it.
    const crowd = make(cores + 2, variants[0]);
    const rand = rng(7);
    for (let i = 0; i < 300; i++) {
      const m = 1 + Math.floor(Math.abs(rand()) * 80), n = 1 + Math.floor(Math.abs(rand()) * 80), k = 1 + Math.floor(Math.abs(rand()) * 40);
      verify(crowd, problem(m, n, k, rand() < 0, rand() < 0, rand, { batch: 1 + (i % 3), beta: i % 2 }), `call ${i}: ${m}x${n}x${k}`);
    }
  });

  it('defers arrays off the WASM heap to the reference', () => {
    const rand = rng(6);
    for (const make of [(n: number) => new Float64Array(n), (n: number) => new Float32Array(n), (n: number) => new Float32Array(new SharedArrayBuffer(n * 4 + (2 << 20)), 2 << 20, n)]) {
      const a = make(12), b = make(20), c = make(15);
      for (const x of [a, b, c]) for (let i = 0; i < x.length; i++) x[i] = rand();
      assert.equal(onHeap(a), false);
      const want = c.slice();
      gemmReference(gemmArgs({ m: 3, n: 5, k: 4, a, b, c: want, beta: 1 }));
      be.gemm(gemmArgs({ m: 3, n: 5, k: 4, a, b, c, beta: 1 }));
      assert.deepEqual(c, want);
    }
  });

  it('names the kernel and the shapes in argument errors', () => {
    const a = allocF32(12), b = allocF32(20), c = allocF32(15);
    assert.throws(() => be.gemm(gemmArgs({ m: 3, n: 5, k: 5, a, b, c })), /gemm: a \(3x5 stored.*needs 15 elements but a has 12.*m=3 n=5 k=5/);
    assert.throws(() => be.gemm(gemmArgs({ m: 3, n: 5, k: 4, a, b, c, batch: 2, strideC: 15 })), /gemm: c .*needs 30 elements but c has 15/);
    assert.throws(() => be.gemm(gemmArgs({ m: 2.5, n: 5, k: 4, a, b, c })), /gemm: m must be a non-negative integer, got 2.5/);
    assert.throws(() => be.gemm(gemmArgs({ m: 3, n: 5, k: 4, a, b, c, ldb: 4 })), /gemm: b \(4x5 stored, ld=4.*ld must be at least 5/);
    assert.throws(() => be.gemm(gemmArgs({ m: 3, n: 5, k: 4, a, b, c, aOff: -1 })), /gemm: a .*non-negative integers/);
    const p = allocF32(8);
    assert.throws(() => be.adamw({ param: p, grad: p, m: p, v: allocF32(4), n: 8, lr: 1, beta1: 0.9, beta2: 0.9, eps: 1e-8, weightDecay: 0, step: 1, gradScale: 1 }), /adamw: v has 4 elements, needs 8/);
    assert.throws(() => be.adamw({ param: p, grad: p, m: p, v: p, n: 8, lr: 1, beta1: 0.9, beta2: 0.9, eps: 1e-8, weightDecay: 0, step: 0, gradScale: 1 }), /adamw: step must be an integer >= 1/);
  });

  it('is chosen by NANOSEEK_BACKEND and NANOSEEK_THREADS', async () => {
    assert.equal(backendFromEnv({ NANOSEEK_BACKEND: 'reference' }), referenceBackend);
    const two = backendFromEnv({ NANOSEEK_BACKEND: 'wasm', NANOSEEK_THREADS: '2' }) as WasmBackend;
    assert.equal(two.name, 'wasm');
    assert.equal(two.threads, 2);
    await two.dispose();
    assert.throws(() => backendFromEnv({ NANOSEEK_BACKEND: 'gpu' }), /NANOSEEK_BACKEND must be 'native', 'wasm' or 'reference', got 'gpu'/);
    assert.throws(() => backendFromEnv({ NANOSEEK_THREADS: '0' }), /NANOSEEK_THREADS must be a positive integer, got '0'/);
  });

  it('is chosen by initBackend: a kind and threads (the environment fills in the rest), or an instance', async () => {
    const previous = backend();
    try {
      assert.equal(initBackend({ kind: 'reference' }), referenceBackend);
      assert.equal(backend(), referenceBackend);
      const one = createBackend({ threads: 1 }, { NANOSEEK_BACKEND: 'wasm', NANOSEEK_THREADS: '2' }) as WasmBackend;
      assert.equal(one.name, 'wasm');
      assert.equal(one.threads, 1);
      await one.dispose();
      assert.equal(createBackend({}, { NANOSEEK_BACKEND: 'reference' }), referenceBackend);
      assert.equal(createBackend({ kind: 'reference' }, { NANOSEEK_BACKEND: 'gpu' }), referenceBackend);
      assert.throws(() => createBackend({ kind: 'gpu' as 'wasm' }), /backend kind must be 'native', 'wasm' or 'reference', got 'gpu'/);
      assert.equal(initBackend(previous), previous);
      assert.equal(backend(), previous);
    } finally {
      initBackend(previous);
    }
  });

  it('is built on first use by importing the library alone: no side-effect import needed', () => {
    // A module file, not `node -e`: worker threads do not start while an eval'd ES module is loading.
    const dir = mkdtempSync(join(os.tmpdir(), 'nanoseek-backend-'));
    const script = join(dir, 'first-use.mjs');
    writeFileSync(script, [
      `import * as T from ${JSON.stringify(new URL('../src/tensor/index.js', import.meta.url).href)};`,
      `import { backend } from ${JSON.stringify(new URL('../src/kernels/backend.js', import.meta.url).href)};`,
      'const a = T.fromArray([1, 2, 3, 4], [2, 2]);',
      "console.log(backend().name, Array.from(T.matmul(a, a).data).join(','));",
    ].join('\n'));
    const run = (env: Record<string, string>) => {
      const { NANOSEEK_BACKEND: _, NANOSEEK_THREADS: __, ...rest } = process.env;
      return execFileSync(process.execPath, [script], { env: { ...rest, ...env }, encoding: 'utf8' }).trim();
    };
    // The default: the native backend where its addon was built, else WASM.
    assert.equal(run({}), `${loadNativeAddon() !== null ? 'native' : 'wasm'} 7,10,15,22`);
    assert.equal(run({ NANOSEEK_BACKEND: 'wasm' }), 'wasm 7,10,15,22');
    assert.equal(run({ NANOSEEK_BACKEND: 'reference' }), 'reference 7,10,15,22');
    rmSync(dir, { recursive: true, force: true });
  });
});
