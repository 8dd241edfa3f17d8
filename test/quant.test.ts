// ggml block formats (src/kernels/quant): decoding against a deliberately naive decoder written here
// from the layout descriptions, round-trip error per type on ordinary and awkward data, hand-derived
// bytes for Q8_0 and Q4_0, determinism and re-quantization stability, and input validation.
// (Bit-exactness against llama.cpp itself is test/quant-oracle.test.ts.)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dequantize, firstNonFinite, GGML_TYPES, type GgmlType, quantize, rowBytes } from '../src/kernels/quant/index.js';
import { setKSearchGate } from '../src/kernels/quant/k-scales.js';
import { mulberry32 as rng } from './helpers.js';

const QUANTIZED: GgmlType[] = ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'];
const ALL: GgmlType[] = ['F32', 'F16', 'BF16', ...QUANTIZED];

function gaussian(n: number, seed: number, sigma = 1): Float32Array {
  const u = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = sigma * Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return x;
}

function roundTrip(type: GgmlType, x: Float32Array): Float32Array {
  const y = new Float32Array(x.length);
  dequantize(type, quantize(type, x), y);
  return y;
}

/** RMS of the error relative to the RMS of the data. */
function relRmse(x: Float32Array, y: Float32Array): number {
  let e = 0;
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    e += (x[i] - y[i]) ** 2;
    s += x[i] * x[i];
  }
  return Math.sqrt(e / s);
}

const bitsOf = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

// ---- The naive decoder: float64, every field pulled out bit by bit as the layouts describe it.

/** Bits [from, from + count) of byte b (bit 0 = least significant). */
function bitsAt(b: number, from: number, count: number): number {
  let v = 0;
  for (let k = 0; k < count; k++) v += ((b >> (from + k)) & 1) << k;
  return v;
}

/** An IEEE half from two little-endian bytes, by the definition (no tables, no shared code). */
function half(bytes: Uint8Array, o: number): number {
  const h = bytes[o] + 256 * bytes[o + 1];
  const sign = bitsAt(bytes[o + 1], 7, 1) ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Value i's 4-bit code in a 32-value block of nibbles at q: i < 16 low nibble of byte i, else high nibble of byte i − 16. */
const nibble32 = (b: Uint8Array, q: number, i: number): number => (i < 16 ? bitsAt(b[q + i], 0, 4) : bitsAt(b[q + i - 16], 4, 4));
/** Bit i of the little-endian u32 at b[o]. */
const bitOfU32 = (b: Uint8Array, o: number, i: number): number => bitsAt(b[o + (i >> 3)], i & 7, 1);

/** Scale and min j of a Q4_K/Q5_K header whose 12 scale bytes start at s. */
function scaleMin(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [bitsAt(b[s + j], 0, 6), bitsAt(b[s + j + 4], 0, 6)];
  return [
    bitsAt(b[s + j + 4], 0, 4) + 16 * bitsAt(b[s + j - 4], 6, 2),
    bitsAt(b[s + j + 4], 4, 4) + 16 * bitsAt(b[s + j], 6, 2),
  ];
}

/** Value i (0..255) of a Q4_K/Q5_K super-block: its 4 low bits from the nibbles at q. */
function kNibble(b: Uint8Array, q: number, i: number): number {
  const chunk = Math.floor(i / 64);
  const within = i % 64;
  const byte = b[q + 32 * chunk + (within % 32)];
  return within < 32 ? bitsAt(byte, 0, 4) : bitsAt(byte, 4, 4);
}

/** One block at b[o] of `type`, decoded in float64 into out[0 .. blockSize). */
function naiveBlock(type: GgmlType, b: Uint8Array, o: number, out: Float64Array): void {
  switch (type) {
    case 'Q8_0': {
      const d = half(b, o);
      for (let i = 0; i < 32; i++) out[i] = d * (b[o + 2 + i] >= 128 ? b[o + 2 + i] - 256 : b[o + 2 + i]);
      return;
    }
    case 'Q4_0': {
      const d = half(b, o);
      for (let i = 0; i < 32; i++) out[i] = d * (nibble32(b, o + 2, i) - 8);
      return;
    }
    case 'Q4_1': {
      const d = half(b, o);
      const m = half(b, o + 2);
      for (let i = 0; i < 32; i++) out[i] = d * nibble32(b, o + 4, i) + m;
      return;
    }
    case 'Q5_0': {
      const d = half(b, o);
      for (let i = 0; i < 32; i++) out[i] = d * (nibble32(b, o + 6, i) + 16 * bitOfU32(b, o + 2, i) - 16);
      return;
    }
    case 'Q5_1': {
      const d = half(b, o);
      const m = half(b, o + 2);
      for (let i = 0; i < 32; i++) out[i] = d * (nibble32(b, o + 8, i) + 16 * bitOfU32(b, o + 4, i)) + m;
      return;
    }
    case 'Q4_K':
    case 'Q5_K': {
      const d = half(b, o);
      const dmin = half(b, o + 2);
      const five = type === 'Q5_K';
      for (let i = 0; i < 256; i++) {
        const [sc, m] = scaleMin(b, o + 4, Math.floor(i / 32));
        let q = kNibble(b, o + (five ? 48 : 16), i);
        // Q5_K: the fifth bit of value i is bit (2·chunk + [second half of the chunk]) of qh[i % 32].
        if (five) q += 16 * bitsAt(b[o + 16 + (i % 32)], 2 * Math.floor(i / 64) + (i % 64 >= 32 ? 1 : 0), 1);
        // ggml forms d·sc and dmin·m in float32; both are exact, as is d·sc·q, so float64 here
        // differs from ggml's float32 only in the final rounding, which the caller applies.
        out[i] = d * sc * q - dmin * m;
      }
      return;
    }
    case 'Q6_K': {
      const d = half(b, o + 208);
      for (let i = 0; i < 256; i++) {
        const h = Math.floor(i / 128); // which 128-value half
        const k = Math.floor((i % 128) / 32); // which quarter of it
        const l = i % 32;
        const ql = b[o + 64 * h + l + (k % 2 === 1 ? 32 : 0)];
        const low = k < 2 ? bitsAt(ql, 0, 4) : bitsAt(ql, 4, 4);
        const high = bitsAt(b[o + 128 + 32 * h + l], 2 * k, 2);
        const scByte = b[o + 192 + 8 * h + 2 * k + Math.floor(l / 16)];
        const sc = scByte >= 128 ? scByte - 256 : scByte;
        out[i] = d * sc * (low + 16 * high - 32);
      }
      return;
    }
    default:
      throw new Error(`no naive decoder for ${type}`);
  }
}

/** Offsets of the f16 fields of a block (to be set to sane values in random blocks). */
const HALF_FIELDS: Partial<Record<GgmlType, number[]>> = {
  Q8_0: [0], Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208],
};

/** Random blocks of `type` with every f16 field a finite half of either sign in [2^-14, 2^6) or ±0 now and then. */
function randomBlocks(type: GgmlType, blocks: number, seed: number): Uint8Array {
  const u = rng(seed);
  const { typeSize } = GGML_TYPES[type];
  const b = new Uint8Array(blocks * typeSize);
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(u() * 256);
  for (let k = 0; k < blocks; k++) {
    for (const f of HALF_FIELDS[type]!) {
      const r = u();
      const exp = r < 0.02 ? 0 : 1 + Math.floor(u() * 20); // biased exponent 1..20: 2^-14 .. 2^5·(2 − ε)
      const mant = r < 0.02 ? 0 : Math.floor(u() * 1024);
      const h = (u() < 0.5 ? 0x8000 : 0) | (exp << 10) | mant;
      b[k * typeSize + f] = h & 0xff;
      b[k * typeSize + f + 1] = h >> 8;
    }
  }
  return b;
}

describe('decoding equals a naive float64 decoder of the layouts', () => {
  for (const type of QUANTIZED) {
    test(type, () => {
      const { blockSize, typeSize } = GGML_TYPES[type];
      const blocks = 300;
      const bytes = randomBlocks(type, blocks, 1000 + GGML_TYPES[type].id);
      // At an odd offset into a larger Buffer, as a tensor inside a file buffer may be.
      const file = Buffer.alloc(bytes.length + 7);
      file.set(bytes, 3);
      const src = file.subarray(3, 3 + bytes.length);
      const got = new Float32Array(blocks * blockSize);
      dequantize(type, src, got);

      const want = new Float32Array(got.length);
      const block = new Float64Array(blockSize);
      for (let k = 0; k < blocks; k++) {
        naiveBlock(type, bytes, k * typeSize, block);
        for (let i = 0; i < blockSize; i++) want[k * blockSize + i] = Math.fround(block[i]);
      }
      const g = bitsOf(got);
      const w = bitsOf(want);
      for (let i = 0; i < g.length; i++) {
        if (g[i] !== w[i]) assert.fail(`${type} value ${i} (block ${Math.floor(i / blockSize)}): got ${got[i]}, want ${want[i]}`);
      }
    });
  }

  test('F32, F16 and BF16 decode raw little-endian values at any byte offset', () => {
    const u = rng(5);
    const n = 101;
    for (const type of ['F32', 'F16', 'BF16'] as GgmlType[]) {
      const size = GGML_TYPES[type].typeSize;
      const file = Buffer.alloc(n * size + 1);
      for (let i = 0; i < file.length; i++) file[i] = Math.floor(u() * 256);
      const src = file.subarray(1); // odd offset
      const got = new Float32Array(n);
      dequantize(type, src, got);
      for (let i = 0; i < n; i++) {
        const want = type === 'F32' ? src.readFloatLE(4 * i) : type === 'F16' ? half(src, 2 * i) : new Float32Array(new Uint32Array([src.readUInt16LE(2 * i) << 16]).buffer)[0];
        if (Number.isNaN(want)) assert.ok(Number.isNaN(got[i]), `${type} ${i}`);
        else assert.equal(got[i], want, `${type} ${i}`);
      }
    }
  });
});

// ---- Round trips.

// Relative RMS error on N(0, 1) data, measured 2026-12 over 16K values (several seeds agree within
// ±3%), with ~20% headroom. They follow from the step sizes: a uniform quantizer with step Δ leaves
// an RMS error of Δ/√12, and on Gaussian blocks Δ ≈ 2.2σ/127 (Q8_0: max |x| of 32 values over 127
// levels) → 0.005; 2.2σ/16 (Q5_0) → 0.04; 2.2σ/8 (Q4_0) → 0.08; range 4.2σ over 31 or 15 steps
// (Q5_1/Q4_1) → 0.039/0.081, a little less for Q5_K/Q4_K whose scale/min search trades the extremes
// for the bulk; Q6_K: groups of 16, 1.9σ/32 → 0.017. F16 keeps 11 significant bits (2^-11/√3 ≈ 3e-4
// relative), BF16 8 (≈ 2e-3).
const GAUSSIAN_BOUND: Record<GgmlType, number> = {
  F32: 0, F16: 3e-4, BF16: 2.2e-3,
  Q8_0: 0.0065, Q6_K: 0.022, Q5_K: 0.043, Q5_1: 0.046, Q5_0: 0.052, Q4_K: 0.085, Q4_1: 0.094, Q4_0: 0.1,
};

describe('quantize → dequantize', () => {
  const n = 256 * 64;

  test('Gaussian data: relative RMS error within each type\'s bound, ordered by bits', () => {
    const err = {} as Record<GgmlType, number>;
    for (const type of ALL) {
      const x = gaussian(n, 11);
      err[type] = relRmse(x, roundTrip(type, x));
      assert.ok(err[type] <= GAUSSIAN_BOUND[type], `${type}: ${err[type]} > ${GAUSSIAN_BOUND[type]}`);
    }
    assert.equal(err.F32, 0);
    const order: GgmlType[] = ['F16', 'BF16', 'Q8_0', 'Q6_K', 'Q5_K', 'Q4_K'];
    for (let k = 1; k < order.length; k++) assert.ok(err[order[k - 1]] < err[order[k]], `${order[k - 1]} ${err[order[k - 1]]} < ${order[k]} ${err[order[k]]}`);
    assert.ok(err.Q5_K < err.Q5_0 && err.Q5_1 < err.Q5_0 && err.Q4_K < err.Q4_0 && err.Q4_1 < err.Q4_0);
    // Q4_K and Q4_0 are alike; the K-quant search and min buy a few percent over plain absmax.
    assert.ok(err.Q4_K > 0.7 * err.Q4_0);
  });

  test('the scale of the data does not matter while the f16 scales stay normal (σ = 1e-3 and 1e4)', () => {
    for (const type of ALL) {
      for (const sigma of [1e-3, 1e4]) {
        const x = gaussian(n, 12, sigma);
        const e = relRmse(x, roundTrip(type, x));
        assert.ok(e <= GAUSSIAN_BOUND[type] * 1.1, `${type} σ=${sigma}: ${e}`);
      }
    }
  });

  test('zeros decode to zeros', () => {
    for (const type of ALL) {
      const y = roundTrip(type, new Float32Array(512));
      // (Q4_0 and Q5_0 give −0: their d is 0/−8 = −0, exactly as in ggml.)
      for (let i = 0; i < y.length; i++) assert.ok(y[i] === 0, `${type} ${i}: ${y[i]}`);
    }
    // Q8_0 and the K-quants store all-zero blocks as all-zero bytes.
    for (const type of ['Q8_0', 'Q4_K', 'Q5_K', 'Q6_K'] as GgmlType[]) assert.ok(quantize(type, new Float32Array(512)).every((v) => v === 0), type);
  });

  test('constants come back within the f16 rounding of their scale (2^-11), whatever the sign', () => {
    // (Magnitudes ≥ 0.3, so that every f16 scale is a normal half: Q6_K's d is about c/4096 and
    // Q4_K's about c/945, and below 2^-14 ≈ 6.1e-5 halves lose precision; see the tiny-values test.)
    for (const type of ALL) {
      for (const c64 of [0.3, -2.5, 7, -100, 1000]) {
        const c = Math.fround(c64);
        const x = new Float32Array(512).fill(c);
        const y = roundTrip(type, x);
        // BF16 keeps 8 significant bits; the rest store c through one f16 (Q4_1/Q5_1: m = c) or
        // through d·q with q at full scale, whose only error is d's f16 rounding.
        const tol = type === 'BF16' ? 2 ** -8 : type === 'F32' ? 0 : 2 ** -10;
        for (let i = 0; i < y.length; i++) assert.ok(Math.abs(y[i] - c) <= tol * Math.abs(c), `${type} c=${c}: ${y[i]}`);
      }
    }
  });

  test('one huge outlier per 256 values: finite, and no worse than Gaussian data relative to the RMS', () => {
    for (const type of ALL) {
      const x = gaussian(n, 13);
      for (let i = 17; i < n; i += 256) x[i] = 1000;
      const y = roundTrip(type, x);
      assert.ok(y.every(Number.isFinite), type);
      const e = relRmse(x, y);
      assert.ok(e <= GAUSSIAN_BOUND[type], `${type}: ${e}`);
      // The outlier itself survives to within its block's step.
      for (let i = 17; i < n; i += 256) assert.ok(Math.abs(y[i] - 1000) <= 1000 * (type.startsWith('Q4') ? 0.07 : 0.02), `${type} outlier ${y[i]}`);
    }
  });

  test('negative-only and positive-only data', () => {
    for (const type of ALL) {
      for (const sign of [-1, 1]) {
        const x = gaussian(n, 14).map((v) => sign * (Math.abs(v) + 0.5));
        const y = roundTrip(type, x);
        assert.ok(y.every(Number.isFinite), type);
        assert.ok(relRmse(x, y) <= GAUSSIAN_BOUND[type], `${type} sign ${sign}: ${relRmse(x, y)}`);
      }
    }
  });

  test('tiny values (σ = 1e-5, scales down among the f16 subnormals): finite and bounded, as in ggml', () => {
    // The scales are f16: at σ = 1e-5 the per-block d of Q8_0…Q4_K lands among the subnormal
    // halves (spacing 6e-8) and loses relative precision; Q6_K's d (≈ σ·2.5/32/128 ≈ 6e-9) and
    // Q5_K's (≈ 3e-8) round to 0 or to the smallest subnormal. llama.cpp behaves the same (the
    // oracle test compares such data too); such tensors belong in F16/F32. What must hold: no NaN or
    // Inf, no value beyond a few times the data's range, and the formats with a per-32 scale still
    // work.
    for (const type of ALL) {
      const x = gaussian(n, 15, 1e-5);
      const y = roundTrip(type, x);
      let xmax = 0;
      for (const v of x) xmax = Math.max(xmax, Math.abs(v));
      for (let i = 0; i < n; i++) assert.ok(Number.isFinite(y[i]) && Math.abs(y[i]) <= 4 * xmax, `${type} ${i}: ${y[i]}`);
      if (!type.endsWith('_K')) assert.ok(relRmse(x, y) <= 0.12, `${type}: ${relRmse(x, y)}`);
    }
  });
});

// ---- Bytes derived by hand.

describe('hand-checked blocks', () => {
  test('Q8_0: d = max|x|/127, q = round half away from zero', () => {
    const x = new Float32Array(32);
    // max |x| = 127 → d = 1 (f16 0x3c00), q = x rounded with halves away from zero.
    x.set([127, -63.5, 1, 0.5, -0.5, 2.5, -2.5, 0.49, 100.2, -127]);
    const q = quantize('Q8_0', x);
    const want = new Uint8Array(34);
    want.set([0x00, 0x3c, 127, 256 - 64, 1, 1, 256 - 1, 3, 256 - 3, 0, 100, 256 - 127]);
    assert.deepEqual([...q], [...want]);
    const y = new Float32Array(32);
    dequantize('Q8_0', q, y);
    assert.deepEqual([...y.subarray(0, 10)], [127, -64, 1, 1, -1, 3, -3, 0, 100, -127]);
  });

  test('Q8_0: a scale that is not a power of two', () => {
    // max |x| = 12.7 → d = fround(12.7/127) = fround(0.1); f16(0.1) = 0x2e66 (0.0999755859375).
    // q = round(x · fround(1/d)): 12.7 → 127, 0.05 → 0.5 → 1 (away from zero), −3.33 → −33.3 → −33.
    const x = new Float32Array(32);
    x.set([12.7, 0.05, -3.33]);
    const q = quantize('Q8_0', x);
    assert.deepEqual([...q.subarray(0, 5)], [0x66, 0x2e, 127, 1, 256 - 33]);
    const y = new Float32Array(32);
    dequantize('Q8_0', q, y);
    assert.equal(y[0], Math.fround(127 * 0.0999755859375));
    assert.equal(y[2], Math.fround(-33 * 0.0999755859375));
  });

  test('Q4_0: d = (signed largest)/−8, q = min(15, trunc(x/d + 8.5)), nibbles j | j+16', () => {
    // Largest magnitude −8 → d = 1 (0x3c00), 1/d = 1.
    const x = new Float32Array(32);
    // value: −8 → 0, 7 → 15, 7.9 → 16 → 15 (clamped), 0 → 8, −0.5 → 8, −0.6 → 7 (7.9 truncates),
    // 0.5 → 9, 3.49 → 11; the rest 0 → 8.
    x.set([-8, 7, 7.9, 0, -0.5, -0.6, 0.5, 3.49]);
    x[16] = -7; // → 1
    x[17] = 6.5; // → 15
    x[31] = -1.5; // → 7
    const q = quantize('Q4_0', x);
    const codes = [0, 15, 15, 8, 8, 7, 9, 11, 8, 8, 8, 8, 8, 8, 8, 8, 1, 15, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 7];
    const want = [0x00, 0x3c];
    for (let j = 0; j < 16; j++) want.push(codes[j] | (codes[j + 16] << 4));
    assert.deepEqual([...q], want);
    const y = new Float32Array(32);
    dequantize('Q4_0', q, y);
    assert.deepEqual([...y], codes.map((c) => c - 8));
  });

  test('Q4_0: a positive largest value gives a negative d', () => {
    // Largest magnitude +8 → d = −1 (f16 0xbc00): x = 8 → 8·(−1) + 8.5 → 0; −7 → 15.
    const x = new Float32Array(32);
    x[0] = 8;
    x[1] = -7;
    x[2] = 2;
    const q = quantize('Q4_0', x);
    assert.deepEqual([...q.subarray(0, 5)], [0x00, 0xbc, 0x80 | 0, 0x80 | 15, 0x80 | 6]);
    const y = new Float32Array(32);
    dequantize('Q4_0', q, y);
    assert.deepEqual([...y.subarray(0, 4)], [8, -7, 2, -0]); // (8 − 8)·(−1) is −0, in ggml too
  });
});

// ---- Determinism and stability.

describe('determinism', () => {
  test('the same input gives the same bytes, whatever dst held before', () => {
    for (const type of ALL) {
      const x = gaussian(256 * 8, 21);
      const a = quantize(type, x);
      const dst = new Uint8Array(a.length).fill(0xa5);
      const b = quantize(type, x, dst);
      assert.equal(b, dst);
      assert.deepEqual(b, a, type);
      assert.deepEqual(quantize(type, x), a, type);
    }
  });

  test('Q8_0, Q4_0, Q5_0, F16, BF16: quantize(dequantize(q)) = q (symmetric formats re-find their own grid)', () => {
    // For the absmax formats the decoded block's largest magnitude is exactly 127·d (Q8_0) or −8·d
    // / −16·d (Q4_0 / Q5_0), so the float32 scale recomputed from it is d itself and every value
    // sits on a level. Offset formats (Q4_1, Q5_1) and the K-quants re-search their scales from the
    // rounded values and may land a level or a scale elsewhere: not guaranteed (see below).
    for (const type of ['Q8_0', 'Q4_0', 'Q5_0', 'F16', 'BF16', 'F32'] as GgmlType[]) {
      for (const sigma of [1, 1e-3]) {
        const q = quantize(type, gaussian(256 * 16, 22, sigma));
        const y = new Float32Array(256 * 16);
        dequantize(type, q, y);
        assert.deepEqual(quantize(type, y), q, `${type} σ=${sigma}`);
      }
    }
  });

  test('Q4_1, Q5_1 and the K-quants: re-quantizing decoded data changes it by far less than one step', () => {
    for (const type of ['Q4_1', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'] as GgmlType[]) {
      const x = gaussian(256 * 16, 23);
      const y1 = roundTrip(type, x);
      const y2 = roundTrip(type, y1);
      // Second-generation drift relative to the first-generation error.
      assert.ok(relRmse(y1, y2) <= 0.5 * relRmse(x, y1), `${type}: ${relRmse(y1, y2)} vs ${relRmse(x, y1)}`);
    }
  });
});

describe('the K-quant search shortcut (k-scales.ts cannotWin) is exact', () => {
  test('Q4_K and Q5_K bytes are the same with it and without it, on data made for near-ties', () => {
    const n = 256 * 96;
    const u = rng(31);
    const sets: Record<string, Float32Array> = {
      gaussian: gaussian(n, 32),
      // Values on a grid, and the same grid nudged by a few float32 ulps: many trials fit almost
      // equally well, which is where a loose bound would show.
      grid: gaussian(n, 33).map((v) => Math.round(v * 7) / 7),
      nudged: gaussian(n, 34).map((v) => (Math.round(v * 15) / 15) * (1 + (u() - 0.5) * 1e-6)),
      heavy: gaussian(n, 35).map((v) => v * Math.exp(2 * u() - 1) ** 3),
      sparse: gaussian(n, 36).map((v) => (u() < 0.7 ? 0 : v)),
      offset: gaussian(n, 37).map((v) => v + 4),
      tiny: gaussian(n, 38, 1e-20),
    };
    try {
      for (const type of ['Q4_K', 'Q5_K'] as GgmlType[]) {
        for (const [name, x] of Object.entries(sets)) {
          setKSearchGate(true);
          const fast = quantize(type, x);
          setKSearchGate(false);
          const plain = quantize(type, x);
          assert.deepEqual(fast, plain, `${type} ${name}`);
        }
      }
    } finally {
      setKSearchGate(true);
    }
  });
});

// ---- Validation.

describe('bad input', () => {
  test('lengths that are not whole blocks', () => {
    for (const type of QUANTIZED) {
      const bs = GGML_TYPES[type].blockSize;
      assert.throws(() => quantize(type, new Float32Array(bs + 1)), new RegExp(`^Error: ${type}: a row of ${bs + 1} values is not a whole number of ${bs}-value blocks`));
      assert.throws(() => dequantize(type, new Uint8Array(0), new Float32Array(bs - 1)), new RegExp(`${type}: a row of ${bs - 1} values`));
    }
  });

  test('src or dst of the wrong byte length names the type and the counts', () => {
    for (const type of ALL) {
      const n = 256;
      const bytes = rowBytes(type, n);
      assert.throws(() => dequantize(type, new Uint8Array(bytes - 1), new Float32Array(n)), { message: new RegExp(`^${type}: ${n} values take ${bytes} bytes.*src has ${bytes - 1}$`) });
      assert.throws(() => dequantize(type, new Uint8Array(bytes + 1), new Float32Array(n)), { message: new RegExp(`src has ${bytes + 1}$`) });
      assert.throws(() => quantize(type, new Float32Array(n), new Uint8Array(bytes + 2)), { message: new RegExp(`^${type}: ${n} values take ${bytes} bytes, but dst has ${bytes + 2}$`) });
    }
  });

  test('an unknown type', () => {
    assert.throws(() => quantize('Q2_K' as GgmlType, new Float32Array(256)), /unsupported tensor type Q2_K/);
    assert.throws(() => dequantize('toString' as GgmlType, new Uint8Array(0), new Float32Array(0)), /unsupported tensor type toString/);
  });

  test('empty rows are fine', () => {
    for (const type of ALL) {
      assert.equal(quantize(type, new Float32Array(0)).length, 0);
      dequantize(type, new Uint8Array(0), new Float32Array(0));
    }
  });
});

describe('firstNonFinite: the finite check loading runs on stored bytes', () => {
  test('float types: the index of the first NaN or ±Inf, aligned or not, and none in finite data', () => {
    const n = 1000;
    for (const type of ['F32', 'F16', 'BF16'] as const) {
      for (const [bad, at] of [[NaN, 0], [Infinity, 517], [-Infinity, 999]] as const) {
        const x = gaussian(n, 3);
        x[at] = bad;
        const bytes = quantize(type, x);
        assert.equal(firstNonFinite(type, bytes), at, `${type} ${bad} at ${at}`);
        // The same bytes at an odd offset of a file buffer.
        const shifted = new Uint8Array(bytes.length + 1);
        shifted.set(bytes, 1);
        assert.equal(firstNonFinite(type, shifted.subarray(1)), at, `${type} unaligned`);
      }
      assert.equal(firstNonFinite(type, quantize(type, gaussian(n, 4, 1e4))), -1, type);
    }
    // The largest finite values are finite.
    assert.equal(firstNonFinite('F32', quantize('F32', Float32Array.of(3.4e38, -3.4e38))), -1);
    assert.equal(firstNonFinite('F16', quantize('F16', Float32Array.of(65504, -65504))), -1);
  });

  test('block types: the first value of the first block whose f16 scale is not finite (and that block decodes non-finite)', () => {
    const n = 4 * 256;
    for (const type of QUANTIZED) {
      const { blockSize, typeSize } = GGML_TYPES[type];
      const bytes = quantize(type, gaussian(n, 5));
      assert.equal(firstNonFinite(type, bytes), -1, `${type}: finite data`);
      // Every byte pair that firstNonFinite reads as a scale: set it to +Inf in block 2, and the check
      // finds block 2 while decoding gives non-finite values there (so the offsets are the real scales).
      const block = 2;
      let found = 0;
      for (let o = 0; o + 1 < typeSize; o++) {
        const damaged = bytes.slice();
        damaged[block * typeSize + o] = 0x00;
        damaged[block * typeSize + o + 1] = 0x7c;
        const at = firstNonFinite(type, damaged);
        if (at < 0) continue;
        found++;
        assert.equal(at, block * blockSize, `${type} scale at byte ${o}`);
        const decoded = new Float32Array(n);
        dequantize(type, damaged, decoded);
        assert.ok(decoded.subarray(at, at + blockSize).some((v) => !Number.isFinite(v)), `${type}: byte ${o} is a scale`);
      }
      // d (and the min's scale m or dmin, where the type has one): every f16 field of the block.
      assert.equal(found, ['Q4_1', 'Q5_1', 'Q4_K', 'Q5_K'].includes(type) ? 2 : 1, `${type}: scale fields found`);
    }
  });
});
