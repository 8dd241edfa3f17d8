// The native quantized kernels (native/src/quant*) against the TypeScript codecs: dequantize bit for
// bit, and packedMatmul within bounds derived from its arithmetic, on every instruction-set path
// this CPU runs (quantIsa), odd row counts, 1 to 40 activation rows (both the per-row kernels and
// the tiled ones for many rows), offsets, row strides, one thread and two.
//
// packedMatmul rounds the activations to 8 bits per block of 32 (256 for the K-quants), x ≈ d·q,
// then multiplies exactly in integers and scales in float32. So its result is checked twice:
//  - against the exact product Σ W·x (float64 over the reference decode): the activations'
//    rounding moves it by at most Σ_block (max|x| / 254)·Σ|W| (half a level per value), plus the
//    float32 rounding below;
//  - against a model of the same arithmetic, Σ W·(d·q) with the activations quantized here as the
//    kernels do: only float32 rounding separates them, at most (n + 16)·2⁻²⁴ times the magnitude of
//    the terms summed (n = k/16 sequential additions bounds every kernel's chains), where a term's
//    magnitude is that of its weight's decomposition a·level + b (a wrong level is far above this).
// Float weights (F32, F16, BF16) are not rounded at all: the exact product within the float32 bound.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createBackend, loadNativeAddon, nativeUnavailableReason, type NativeAddon } from '../src/kernels/index.js';
import { kMin, kScale } from '../src/kernels/quant/k-scales.js';
import { dequantize, GGML_TYPES, type GgmlType, quantize, rowBytes } from '../src/kernels/quant/index.js';
import { F16_TO_F32 } from '../src/kernels/quant/common.js';
import { mulberry32 as rng } from './helpers.js';

type QuantAddon = NativeAddon & Required<Pick<NativeAddon, 'dequantize' | 'packedMatmul'>> & { quantIsa(name: string | null): string };

const lib = loadNativeAddon() as QuantAddon | null;
const skip = lib?.packedMatmul ? undefined : `no native addon: ${nativeUnavailableReason() ?? 'packedMatmul missing'}`;

/** The instruction-set paths this CPU runs. */
function paths(): string[] {
  const best = lib!.quantIsa(null);
  const out = ['avx512-vnni', 'avx2', 'portable'].filter((p) => {
    try {
      lib!.quantIsa(p);
      return true;
    } catch {
      return false;
    }
  });
  lib!.quantIsa(best);
  return out;
}

/** N(0, 1) values, with an occasional outlier (activations have them; they set a block's scale). */
function gaussian(n: number, seed: number, outliers = 0): Float32Array {
  const u = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
    if (u() < outliers) x[i] *= 20;
  }
  return x;
}

const QUANTIZED: GgmlType[] = ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'];
const FLOATS: GgmlType[] = ['F32', 'F16', 'BF16'];

/** Values per activation scale: 32 for the 32-value types (Q8_0-style), 256 for the K-quants (Q8_K-style). */
function actBlock(type: GgmlType): number {
  return GGML_TYPES[type].blockSize === 256 ? 256 : 32;
}

/** Round half to even, as the kernels' conversions do. */
function rint(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The activations as the kernels round them: per block d = max|x|/127 and q = rint(x·(127/max|x|)), all float32. */
function roundActs(x: Float32Array, ab: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let b = 0; b < x.length; b += ab) {
    let amax = 0;
    for (let j = b; j < b + ab; j++) amax = Math.max(amax, Math.abs(x[j]));
    const d = Math.fround(amax / 127), inv = amax ? Math.fround(127 / amax) : 0;
    for (let j = b; j < b + ab; j++) out[j] = d * rint(Math.fround(x[j] * inv));
  }
  return out;
}

/**
 * For every weight, a bound on |a·level| + |b| of its decomposition w = a·level + b (quant.h): the
 * magnitudes the kernels' float arithmetic meets. From each block's stored scales.
 */
function decompositionBound(type: GgmlType, bytes: Uint8Array, n: number): Float64Array {
  const out = new Float64Array(n);
  const { blockSize, typeSize } = GGML_TYPES[type];
  const half = (o: number): number => Math.abs(F16_TO_F32[bytes[o] | (bytes[o + 1] << 8)]);
  for (let blk = 0; blk < n / blockSize; blk++) {
    const o = blk * typeSize, v = blk * blockSize;
    if (blockSize === 32) {
      const d = half(o);
      const m = type === 'Q4_1' || type === 'Q5_1' ? half(o + 2) : 0;
      const bound = { Q8_0: 383 * d, Q4_0: 23 * d, Q4_1: 15 * d + m, Q5_0: 47 * d, Q5_1: 31 * d + m }[type as 'Q8_0']!;
      out.fill(bound, v, v + 32);
    } else if (type === 'Q6_K') {
      const d = half(o + 208);
      for (let g = 0; g < 16; g++) out.fill(95 * d * Math.abs((bytes[o + 192 + g] << 24) >> 24), v + 16 * g, v + 16 * g + 16);
    } else {
      const d = half(o), dmin = half(o + 2), top = type === 'Q4_K' ? 15 : 31;
      for (let j = 0; j < 8; j++) out.fill(top * d * kScale(bytes, o + 4, j) + dmin * kMin(bytes, o + 4, j), v + 32 * j, v + 32 * j + 32);
    }
  }
  return out;
}

interface Case {
  type: GgmlType;
  rows: number;
  cols: number;
  w: Uint8Array;
  /** x rows (float32) and the references for every (activation row, weight row) pair. */
  x: Float32Array;
  exact: Float64Array;
  model: Float64Array;
  /** Allowed |ours − exact| and |ours − model|. */
  exactTol: Float64Array;
  modelTol: Float64Array;
}

const U = 2 ** -24;

function makeCase(type: GgmlType, rows: number, cols: number, xRows: number, seed: number): Case {
  const wf = gaussian(rows * cols, seed).map((v) => v * 0.1);
  const w = quantize(type, wf);
  const wd = new Float32Array(rows * cols);
  dequantize(type, w, wd);
  const x = gaussian(xRows * cols, seed + 1, 0.01);
  const quantized = GGML_TYPES[type].blockSize > 1;
  const ab = actBlock(type);
  const xq = quantized ? roundActs(x, ab) : Float64Array.from(x);
  const mag = quantized ? decompositionBound(type, w, rows * cols) : Float64Array.from(wd, Math.abs);
  const exact = new Float64Array(xRows * rows), model = new Float64Array(xRows * rows);
  const exactTol = new Float64Array(xRows * rows), modelTol = new Float64Array(xRows * rows);
  const chains = cols / 16 + 16;
  for (let i = 0; i < xRows; i++) {
    // Half a level of rounding per activation: max|x| / 254 over its block.
    const halfLevel = new Float64Array(cols);
    if (quantized) {
      for (let b = 0; b < cols; b += ab) {
        let amax = 0;
        for (let c = b; c < b + ab; c++) amax = Math.max(amax, Math.abs(x[i * cols + c]));
        halfLevel.fill((amax / 254) * (1 + 2 ** -20), b, b + ab);
      }
    }
    for (let r = 0; r < rows; r++) {
      let e = 0, q = 0, terms = 0, rounding = 0;
      for (let c = 0; c < cols; c++) {
        const wv = wd[r * cols + c], xv = x[i * cols + c], xqv = xq[i * cols + c];
        e += wv * xv;
        q += wv * xqv;
        terms += mag[r * cols + c] * Math.abs(xqv);
        rounding += Math.abs(wv) * halfLevel[c];
      }
      const k = i * rows + r;
      exact[k] = e;
      model[k] = q;
      modelTol[k] = chains * U * terms + 1e-30;
      exactTol[k] = rounding + modelTol[k];
    }
  }
  return { type, rows, cols, w, x, exact, model, exactTol, modelTol };
}

/**
 * packedMatmul on the first `rows` weight rows and `m` activation rows starting at activation row
 * i0, into y at yOff with stride ldy; every written value checked, every other one untouched.
 */
function check(c: Case, rows: number, i0: number, m: number, yOff: number, ldy: number, label: string): void {
  const { cols } = c;
  const y = new Float32Array(yOff + Math.max(0, m - 1) * ldy + rows + 3).fill(NaN);
  lib!.packedMatmul(GGML_TYPES[c.type].id, c.w.subarray(0, rowBytes(c.type, cols) * rows), rows, cols, c.x, i0 * cols, m, y, yOff, ldy);
  const quantized = GGML_TYPES[c.type].blockSize > 1;
  for (let p = 0; p < y.length; p++) {
    const rel = p - yOff, i = Math.floor(rel / ldy), r = rel - i * ldy;
    const written = rel >= 0 && i < m && r < rows;
    if (!written) {
      if (!Number.isNaN(y[p])) assert.fail(`${label}: y[${p}] outside the result was written (${y[p]})`);
      continue;
    }
    const k = (i0 + i) * c.rows + r;
    const got = y[p];
    const errExact = Math.abs(got - c.exact[k]);
    if (!(errExact <= c.exactTol[k])) {
      assert.fail(`${label}: y[${i}, ${r}] = ${got}, exact ${c.exact[k]}: error ${errExact.toExponential(3)} > bound ${c.exactTol[k].toExponential(3)}`);
    }
    if (quantized) {
      const errModel = Math.abs(got - c.model[k]);
      if (!(errModel <= c.modelTol[k])) {
        assert.fail(`${label}: y[${i}, ${r}] = ${got}, model of the 8-bit arithmetic ${c.model[k]}: error ${errModel.toExponential(3)} > float32 bound ${c.modelTol[k].toExponential(3)}`);
      }
    }
  }
}

const ROW_COUNTS = [1, 7, 33, 70];
const M_VALUES = [1, 2, 3, 5, 7, 8, 9, 12, 16, 17, 25, 31, 40];

function colsFor(type: GgmlType): number[] {
  const b = GGML_TYPES[type].blockSize;
  if (b === 256) return [256, 768];
  if (b === 32) return [32, 96, 288];
  return [1, 17, 100, 256];
}

describe('native quantized kernels', { skip }, () => {
  test('dequantize equals the TypeScript codecs bit for bit, every type, any length, any byte offset, threaded', () => {
    for (const type of [...FLOATS, ...QUANTIZED]) {
      const { id, blockSize } = GGML_TYPES[type];
      for (const n of [blockSize, 7 * blockSize, 256 * 1024]) {
        const src = gaussian(n, n + id).map((v, i) => (i % 97 === 3 ? v * 1e4 : v));
        const bytes = quantize(type, src);
        // At an odd byte offset inside a larger buffer, as a view into a file would be.
        const big = new Uint8Array(bytes.length + 5);
        big.set(bytes, 3);
        const view = big.subarray(3, 3 + bytes.length);
        const want = new Float32Array(n);
        dequantize(type, bytes, want);
        const got = new Float32Array(n + 2).fill(7);
        lib!.dequantize(id, view, got, n);
        const a = new Uint32Array(want.buffer), b = new Uint32Array(got.buffer);
        for (let i = 0; i < n; i++) if (a[i] !== b[i]) assert.fail(`${type} n=${n}: value ${i} is ${got[i]}, the codec gives ${want[i]}`);
        assert.equal(got[n], 7, `${type}: wrote past n`);
      }
    }
    // Half-precision specials keep their bits (NaN payloads, infinities, subnormals).
    const halves = new Uint16Array([0x7c00, 0xfc00, 0x7e01, 0x7d55, 0x0001, 0x83ff, 0x8000, 0x3c00]);
    for (const type of ['F16', 'BF16'] as const) {
      const bytes = new Uint8Array(halves.buffer);
      const want = new Float32Array(8), got = new Float32Array(8);
      dequantize(type, bytes, want);
      lib!.dequantize(GGML_TYPES[type].id, bytes, got, 8);
      assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(want.buffer), type);
    }
  });

  for (const path of skip ? [] : paths()) {
    test(`packedMatmul on the ${path} path: every type against the exact product and the 8-bit model`, () => {
      lib!.quantIsa(path);
      try {
        for (const type of [...FLOATS, ...QUANTIZED]) {
          for (const [n, cols] of colsFor(type).entries()) {
            const c = makeCase(type, 70, cols, 44, 1000 * n + GGML_TYPES[type].id);
            for (const threads of [1, 2]) {
              lib!.setThreads(threads);
              for (const rows of ROW_COUNTS) {
                for (const m of M_VALUES) {
                  const label = `${path} ${type} ${rows}×${cols}, m=${m}, ${threads} thread${threads > 1 ? 's' : ''}`;
                  check(c, rows, 0, m, 0, rows, label);
                  if (m % 4 === 1) check(c, rows, 44 - m, m, 5, rows + 3, `${label}, offsets and ldy`);
                }
              }
            }
          }
        }
      } finally {
        lib!.setThreads(2);
        lib!.quantIsa(paths()[0]);
      }
    });
  }

  test('the product of a realistic shape (2 threads, 1536 columns, decode and prompt row counts)', () => {
    for (const type of ['Q4_K', 'Q6_K', 'Q8_0', 'BF16'] as GgmlType[]) {
      const c = makeCase(type, 96, 1536, 40, 77);
      for (const m of [1, 4, 40]) check(c, 96, 0, m, 0, 96, `${type} 96×1536 m=${m}`);
    }
  });

  test('activation rows of zeros, and blocks of zeros among others, give exact zeros and no NaN', () => {
    for (const type of QUANTIZED) {
      const cols = GGML_TYPES[type].blockSize === 256 ? 512 : 64;
      const w = quantize(type, gaussian(3 * cols, 5));
      const x = new Float32Array(2 * cols);
      x.fill(0.5, cols, cols + 32); // second row: one block set, the rest zero
      const y = new Float32Array(6);
      lib!.packedMatmul(GGML_TYPES[type].id, w, 3, cols, x, 0, 2, y, 0, 3);
      assert.deepEqual([...y.subarray(0, 3)], [0, 0, 0], type);
      assert.ok(y.every(Number.isFinite), type);
    }
  });

  test('bad arguments are refused with the argument named', () => {
    const w = quantize('Q4_K', gaussian(512, 1));
    const x = new Float32Array(512), y = new Float32Array(4);
    const call = (...a: Parameters<QuantAddon['packedMatmul']>): void => lib!.packedMatmul(...a);
    assert.throws(() => call(10, w, 2, 256, x, 0, 2, y, 0, 2), /native packedMatmul: argument 0: ggml type 10 is not supported/);
    assert.throws(() => call(12, w, 2, 250, x, 0, 2, y, 0, 2), /argument 3: 250 columns are not a whole number of Q4_K blocks of 256/);
    assert.throws(() => call(12, w, 3, 256, x, 0, 2, y, 0, 2), /argument 1: 3 rows of 256 Q4_K values take 432 bytes, w has 288/);
    assert.throws(() => call(12, w, 2, 256, x, 1, 2, y, 0, 2), /argument 5: x \(512 floats\) does not hold 2 rows of 256 from offset 1/);
    assert.throws(() => call(12, w, 2, 256, x, 0, 2, y, 1, 2), /argument 8: y \(4 floats\) does not hold 2 rows of 2/);
    assert.throws(() => call(12, w, 2, 256, x, 0, 2, y, 0, 1), /argument 9: ldy 1 is less than the row length 2/);
    assert.throws(() => lib!.dequantize(12, w, new Float32Array(512), 768), /argument 1: 768 Q4_K values take 432 bytes, src has 288/);
    assert.throws(() => lib!.dequantize(12, w, new Float32Array(256), 512), /argument 2: dst holds 256 floats, 512 needed/);
    assert.throws(() => lib!.dequantize(2, w, new Float32Array(512), 33), /argument 3: 33 values are not a whole number of Q4_0 blocks of 32/);
  });

  test('the native backend routes packed products to the addon', () => {
    const be = createBackend({ kind: 'native' });
    const c = makeCase('Q5_K', 9, 256, 3, 3);
    const y = new Float32Array(27), want = new Float32Array(27);
    assert.equal(be.packedMatmul!('Q5_K', c.w, 9, 256, c.x, 0, 3, y, 0, 9), true);
    lib!.packedMatmul(GGML_TYPES.Q5_K.id, c.w, 9, 256, c.x, 0, 3, want, 0, 9);
    assert.deepEqual(y, want);
  });
});
