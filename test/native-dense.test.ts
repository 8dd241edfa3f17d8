// The native backend's dense float32 kernels (GEMM, the row-wise kernels, AdamW) against the
// TypeScript reference, as test/kernels.test.ts checks the WASM ones: awkward shapes that reach every
// edge of the register blocks and cache blocks, all transposes, alpha/beta, offsets, strides,
// strided batches, the few-rows and few-columns paths, on 1, 2 and 3 threads with shapes large enough
// to be cut across them. The AVX-512 (or best) path runs here; the file then runs itself again with
// NANOSEEK_SIMD=avx2 and =portable so the other compiled paths pass the same tests.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import {
  allocF32, allocI32, freeF32, freeI32, gemmArgs, gemmReference, loadNativeAddon, NativeBackend, nativeUnavailableReason,
  referenceBackend,
} from '../src/kernels/index.js';
import {
  adamwMatches, copyRowsMatches, crossEntropyMatches, EPS, f64, gemmProblem as problem, heap, indexedRowsMatch, rmsnormMatches, rng,
  softmaxMatches, swigluMatches, verifyGemm,
} from './kernel-checks.js';

const lib = loadNativeAddon();
const skip = lib === null ? (nativeUnavailableReason() ?? true) : false;
const SIMD = process.env.NANOSEEK_SIMD;
const simdName = lib?.info().simd ?? 'none';

/** The native backend on `threads` threads (each instance sets the addon's one thread count when it calls). */
function native(threads: number): NativeBackend {
  return new NativeBackend(lib!, () => referenceBackend, threads);
}

const verify = (threads: number, g: Parameters<typeof verifyGemm>[1], label: string): void => verifyGemm(native(threads), g, label);

// Past one register block (12×32 on AVX-512, 6×16 on AVX2, 6×8 portable) with every remainder.
const SIZES = [1, 3, 17, 63, 130];
const THREADS = [1, 2, 3];
const TRANSPOSES = [[false, false], [false, true], [true, false], [true, true]] as const;

describe(`native gemm (${simdName})`, { skip }, () => {
  it('runs the instruction set asked for', () => {
    assert.ok(simdName.startsWith(SIMD ?? ''), `${simdName} for NANOSEEK_SIMD=${SIMD}`);
  });

  it('matches the reference on awkward shapes, all transposes, alpha and beta, on 1 to 3 threads', () => {
    const rand = rng(1);
    let n = 0;
    for (const m of SIZES) for (const nn of SIZES) for (const k of SIZES) {
      for (const [transA, transB] of TRANSPOSES) {
        const threads = THREADS[n++ % 3];
        verify(threads, problem(m, nn, k, transA, transB, rand, { alpha: 1.25, beta: 0.5 }), `${m}x${nn}x${k} transA=${transA} transB=${transB}`);
      }
    }
  });

  it('crosses every cache block: k past KC, rows past MC, columns past NC, split across threads', () => {
    const rand = rng(2);
    for (const [m, n, k] of [[270, 40, 520], [520, 20, 100], [20, 4200, 30]]) {
      for (const [transA, transB] of TRANSPOSES) {
        const threads = transA === transB ? 1 : 3;
        verify(threads, problem(m, n, k, transA, transB, rand, { alpha: -0.75, beta: 0.25 }), `${m}x${n}x${k} transA=${transA} transB=${transB}`);
      }
    }
  });

  it('handles alpha and beta: beta = 0 ignores NaN in C, alpha = 0 and k = 0 only scale C', () => {
    const rand = rng(3);
    for (const [alpha, beta] of [[1, 0], [1, 1], [-0.5, 0.75], [0, 2], [0, 0], [2, 0]]) {
      for (const threads of [1, 2]) {
        for (const [m, n, k] of [[33, 47, 70], [1, 300, 50], [300, 1, 50], [2, 40, 9], [100, 100, 0], [200, 120, 300]]) {
          for (const [transA, transB] of [[false, true], [true, false]]) {
            const g = problem(m, n, k, transA, transB, rand, { alpha, beta });
            if (beta === 0) g.c.fill(NaN);
            verify(threads, g, `alpha=${alpha} beta=${beta} ${m}x${n}x${k} transA=${transA}`);
          }
        }
      }
    }
  });

  it('runs strided batches: one product per thread, broadcast operands, a shared accumulating C', () => {
    const rand = rng(4);
    for (const threads of [1, 2, 3]) {
      for (const [transA, transB] of TRANSPOSES) {
        verify(threads, problem(19, 35, 21, transA, transB, rand, { batch: 5, alpha: 0.5, beta: 1 }), `batch 5 ${transA} ${transB}`);
        // attention's shapes: many products, each below the parallel threshold
        verify(threads, problem(64, 64, 32, transA, transB, rand, { batch: 12 }), `batch 12 ${transA} ${transB}`);
        verify(threads, problem(1, 70, 40, transA, transB, rand, { batch: 3 }), `gemv batch 3 ${transA} ${transB}`);
        verify(threads, problem(40, 24, 30, transA, transB, rand, { batch: 4, strideB: 0 }), `shared B ${transA} ${transB}`);
        // strideC = 0 with beta = 1 sums the batch into one C, which only works done in order
        verify(threads, problem(37, 29, 160, transA, transB, rand, { batch: 6, strideC: 0, beta: 1 }), `shared C ${transA} ${transB}`);
      }
    }
  });

  it('covers the few-rows and few-columns paths: every count up to 9, edge columns and k, split across threads', () => {
    const rand = rng(5);
    const cases: [number, number, number][] = [];
    for (let m = 1; m <= 9; m++) for (const [n, k] of [[1, 5], [5, 1], [7, 33], [17, 7], [70, 63], [33, 130], [260, 40]]) cases.push([m, n, k]);
    // large enough to be cut across threads
    cases.push([1, 2000, 600], [3, 1000, 400], [8, 700, 400], [1, 9, 120_000], [8, 9, 30_000], [3, 4100, 90]);
    for (const [m, n, k] of cases) {
      {
        for (const [transA, transB] of TRANSPOSES) {
          const threads = THREADS[(m + n + Number(transA)) % 3];
          const [alpha, beta] = (m + k) % 3 === 0 ? [1, 0] : (m + k) % 3 === 1 ? [-0.75, 1] : [1.5, 0.25];
          verify(threads, problem(m, n, k, transA, transB, rand, { alpha, beta }), `${m}x${n}x${k} transA=${transA} transB=${transB}`);
          // the same with C's rows and columns exchanged: the transposed view
          verify(threads, problem(n, m, k, transA, transB, rand, { alpha, beta }), `${n}x${m}x${k} transA=${transA} transB=${transB}`);
        }
      }
    }
  });

  it('survives many back-to-back parallel calls on more threads than cores', () => {
    // Workers that wake late meet a later job, or none: they must claim nothing of it.
    const rand = rng(7);
    const be = native(os.availableParallelism() + 2);
    for (let i = 0; i < 200; i++) {
      const m = 20 + Math.floor(Math.abs(rand()) * 120), n = 20 + Math.floor(Math.abs(rand()) * 120), k = 100 + Math.floor(Math.abs(rand()) * 200);
      verifyGemm(be, problem(m, n, k, rand() < 0, rand() < 0, rand, { batch: 1 + (i % 3), beta: i % 2 }), `call ${i}: ${m}x${n}x${k}`);
      const x = heap(40_000, rand), y = heap(40_000, rand);
      const want = new Float64Array(40_000);
      referenceBackend.swiglu(f64(x), f64(y), want, 40_000);
      be.swiglu(x, y, x, 40_000);
      for (let j = 0; j < 40_000; j += 997) assert.ok(Math.abs(x[j] - want[j]) <= 4 * EPS * Math.abs(want[j]) + 1e-30, `call ${i}: swiglu[${j}]`);
      freeF32(x);
      freeF32(y);
    }
  });

  it('works on any Float32Array: off the WASM heap, and views at an offset', () => {
    const rand = rng(6);
    for (const make of [(n: number) => new Float32Array(n), (n: number) => new Float32Array(new ArrayBuffer(n * 4 + 64), 64, n)]) {
      for (const [m, n, k] of [[3, 5, 4], [40, 50, 60], [1, 300, 200]]) {
        const a = make(m * k).map(rand), b = make(k * n).map(rand), c = make(m * n).map(rand);
        const want = f64(c);
        gemmReference(gemmArgs({ m, n, k, a: f64(a), b: f64(b), c: want, beta: 1 }));
        native(2).gemm(gemmArgs({ m, n, k, a, b, c, beta: 1 }));
        for (let i = 0; i < want.length; i++) assert.ok(Math.abs(c[i] - want[i]) <= (k + 2) * EPS * 4 * k, `${m}x${n}x${k} c[${i}]`);
      }
    }
  });

  it('refuses shapes that do not fit their arrays, in the backend and in the addon itself', () => {
    const a = allocF32(12), b = allocF32(20), c = allocF32(15);
    const be = native(2);
    assert.throws(() => be.gemm(gemmArgs({ m: 3, n: 5, k: 5, a, b, c })), /gemm: a \(3x5 stored.*needs 15 elements but a has 12/);
    assert.throws(() => be.gemm(gemmArgs({ m: 3, n: 5, k: 4, a, b, c, batch: 2, strideC: 15 })), /gemm: c .*needs 30 elements but c has 15/);
    // Straight into the addon, past the TypeScript checks: it checks the same.
    const call = (m: number, n: number, k: number, ldb: number, batch: number, strideC: number) => lib!.gemm!(m, n, k, a, 0, k, false, b, 0, ldb, false, c, 0, n, 1, 0, batch, 0, 0, strideC);
    assert.throws(() => call(3, 5, 5, 5, 1, 0), /native gemm: a \(3x5 stored, ld=5, offset=0, stride=0\) needs more than the 12 elements a has/);
    assert.throws(() => call(3, 5, 4, 5, 2, 15), /native gemm: c .* needs more than the 15 elements c has/);
    assert.throws(() => call(3, 5, 4, 4, 1, 0), /native gemm: b .*ld must be at least 5/);
    assert.throws(() => call(-1, 5, 4, 5, 1, 0), /native gemm: m, n, k and batch must be non-negative/);
    assert.throws(() => call(3, 5, 4, 2 ** 62, 2, 0), /native gemm: b .*needs more than/);
    assert.throws(() => lib!.swiglu!(b, b, c, 16), /native swiglu: out has 15 elements, needs 16/);
    assert.throws(() => lib!.adamw!(a, a, a, c, 14, 1e-3, 0.9, 0.95, 1e-8, 0, 1, 1), /native adamw: v has 15 elements, needs 14|native adamw: param has 12 elements, needs 14/);
    const index = allocI32(2);
    index.set([0, 5]);
    assert.throws(() => lib!.gatherRows!(a, 3, index, null, b, 2, 4, false), /native gatherRows: index 5 at position 1 is outside \[0, 3\)/);
    assert.throws(() => be.rowDots(a, 3, index, b, c, 2, 4), /rowDots: index 5 at position 1 is outside \[0, 3\)/);
    assert.throws(() => be.softmaxRows(a, 3, 4, { period: 0, offset: 0 }), /softmaxRows: mask period must be a positive integer/);
    for (const x of [a, b, c]) freeF32(x);
    freeI32(index);
  });
});

describe(`native row-wise kernels and AdamW (${simdName})`, { skip }, () => {
  // Every pair of awkward sizes, rows × width, and a few large enough to be cut across threads.
  const shapes: [number, number][] = [];
  for (const rows of SIZES) for (const n of SIZES) shapes.push([rows, n]);
  shapes.push([600, 130], [3, 20000], [1030, 64]);
  const all = (): NativeBackend[] => THREADS.map(native);

  it('swiglu and its backward, across the range of exp', () => swigluMatches(all(), [...SIZES, 4096, 100_003]));

  it('rmsnorm and its backward', () => rmsnormMatches(all(), shapes));

  it('log-sum-exp rows and the softmax cross-entropy backward', () => crossEntropyMatches(all(), shapes));

  it('softmax rows and their backward, with and without a causal mask', () => softmaxMatches(all(), shapes));

  it('copies and accumulates strided rows, contiguous runs included', () => copyRowsMatches(all(), [...shapes, [1, 50_000], [3, 20_049], [2, 20]]));

  it('gathers, scatter-adds (repeated indices) and dots indexed rows', () => indexedRowsMatch(all(), shapes));

  it('AdamW matches the reference step after step', () => adamwMatches(all()));

  it('sums squares in float64, the same on any thread count', () => {
    const rand = rng(16);
    for (const n of [...SIZES, 1024, 5000, 100_003, 1_000_001]) {
      // Values whose float32 squares carry bits a float32 sum would drop.
      const x = heap(n, () => 1 + rand() * 2 ** -10);
      const want = referenceBackend.sumSquares(f64(x), n);
      const got = THREADS.map((t) => native(t).sumSquares(x, n));
      // float64 roundings only (a float32 sum would be off by about 1e-4 here)
      assert.ok(Math.abs(got[0] - want) <= n * 2 ** -52 * want, `sumSquares n=${n}: ${got[0]}, want ${want}`);
      assert.deepEqual(got, [got[0], got[0], got[0]]);
      freeF32(x);
    }
  });

  it('hands float64 arrays to the fallback backend', () => {
    const x = new Float64Array([1, 2, 3]), out = new Float64Array(3);
    native(1).swiglu(x, x, out, 3);
    const want = new Float64Array(3);
    referenceBackend.swiglu(x, x, want, 3);
    assert.deepEqual(out, want);
  });
});

// The other compiled paths, where this CPU runs them: this file again, capped by NANOSEEK_SIMD.
describe('native dense kernels on the other instruction sets', { skip: skip || (SIMD !== undefined ? 'runs from the main run only' : false) }, () => {
  const others = simdName.startsWith('avx512') ? ['avx2', 'portable'] : simdName === 'avx2' ? ['portable'] : [];
  for (const simd of others) {
    it(`passes the same tests with NANOSEEK_SIMD=${simd}`, () => {
      try {
        // (without the runner's context, so that the child reports as a plain run does)
        const { NODE_TEST_CONTEXT: _, ...env } = process.env;
        execFileSync(process.execPath, [fileURLToPath(import.meta.url)], { env: { ...env, NANOSEEK_SIMD: simd }, stdio: 'pipe', encoding: 'utf8' });
      } catch (err) {
        const { stdout, stderr } = err as { stdout: string; stderr: string };
        assert.fail(`NANOSEEK_SIMD=${simd}:\n${`${stdout}\n${stderr}`.trim().split('\n').slice(-40).join('\n')}`);
      }
    });
  }
});
