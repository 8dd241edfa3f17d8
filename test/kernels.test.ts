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
  allocF32, backend, backendFromEnv, createBackend, createWasmBackend, freeF32, gemmArgs, gemmReference, initBackend, loadNativeAddon, onHeap,
  referenceBackend, relaxedSimdSupported, type WasmBackend,
} from '../src/kernels/index.js';
import {
  adamwMatches, copyRowsMatches, crossEntropyMatches, EPS, f64, gemmProblem as problem, heap, indexedRowsMatch, rmsnormMatches, rng,
  softmaxMatches, swigluMatches, verifyGemm as verify,
} from './kernel-checks.js';

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

    it('matches the reference AdamW', () => adamwMatches([single, pool]));
  });
}

for (const simd of variants) {
  describe(`wasm row-wise kernels (${simd} SIMD)`, () => {
    const single = make(1, simd);
    const pool = make(Math.max(3, cores), simd);
    const both = [single, pool];
    // Every kernel on every pair of awkward sizes, rows × width, on one thread and on several.
    const shapes: [number, number][] = [];
    for (const rows of SIZES) for (const n of SIZES) shapes.push([rows, n]);

    it('swiglu and its backward match the reference, across the range of exp', () => swigluMatches(both, [...SIZES, 4096]));

    it('rmsnorm and its backward match the reference', () => rmsnormMatches(both, shapes));

    it('log-sum-exp rows and the softmax cross-entropy backward match the reference', () => crossEntropyMatches(both, shapes));

    it('copies and accumulates strided rows like the reference, contiguous runs included', () => {
      copyRowsMatches(both, [...shapes, [1, 5000], [3, 2049], [2, 20]]);
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

    it('gathers, scatter-adds (repeated indices) and dots indexed rows like the reference', () => indexedRowsMatch(both, shapes));

    it('softmax rows and their backward match the reference, with and without a causal mask', () => softmaxMatches(both, shapes));
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
