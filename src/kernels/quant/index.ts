// GGUF / ggml tensor encodings: decode any supported type to float32 and encode float32 to it, in
// plain TypeScript. This is the reference every faster kernel is tested against, so it follows
// ggml's reference code exactly:
//  - dequantize equals ggml's dequantize_row_* bit for bit (every product there is exact in
//    float32, so the only rounding is the one ggml does too, on the final subtraction/addition);
//  - quantize equals ggml's quantize_row_*_ref, i.e. what llama-quantize writes without an
//    importance matrix, bit for bit on x86-64 builds (checked against libggml-base from
//    node-llama-cpp in test/quant-oracle.test.ts). F16/BF16 round to nearest even; F32 is copied.
// Layouts and algorithms are described in each type's file.
//
// Speed (node dist/bench/quant.js: 16M N(0,1) values, one thread, best of 3 by CPU time, Node 20 on
// a shared 2-core Zen 4 VM, 2026-12), values/s:
//   type   dequantize  quantize        type   dequantize  quantize
//   F32      4400 M     3900 M         Q5_1      730 M      140 M
//   F16       575 M      137 M         Q8_0      530 M       81 M
//   BF16      730 M      450 M         Q4_K     1020 M      7.2 M
//   Q4_0      870 M      196 M         Q5_K      780 M      8.5 M
//   Q4_1     1050 M      150 M         Q6_K      770 M      9.5 M
//   Q5_0      720 M      162 M
// The K-quant encoders spend their time in ggml's scale searches (21 or 16 trial scales per 32
// values for Q4_K/Q5_K, 19 per 16 for Q6_K), kept in float32 for bit-exactness; see k-scales.ts
// for the exact shortcut that skips the float32 work of trials that provably lose.
import { quantizeQ4_0, dequantizeQ4_0 } from './q4_0.js';
import { quantizeQ4_1, dequantizeQ4_1 } from './q4_1.js';
import { quantizeQ5_0, dequantizeQ5_0 } from './q5_0.js';
import { quantizeQ5_1, dequantizeQ5_1 } from './q5_1.js';
import { quantizeQ8_0, dequantizeQ8_0 } from './q8_0.js';
import { quantizeQ4_K, dequantizeQ4_K } from './q4_k.js';
import { quantizeQ5_K, dequantizeQ5_K } from './q5_k.js';
import { quantizeQ6_K, dequantizeQ6_K } from './q6_k.js';
import { F16_TO_F32_BITS } from './common.js';
import { f32BitsToBf16, f32BitsToF16 } from './half.js';
import { GGML_TYPES, type GgmlType, rowBytes } from './types.js';

export { GGML_TYPES, GGML_TYPE_NAMES, type GgmlType, ggmlTypeById, ggmlTypeName, isQuantized, rowBytes } from './types.js';

type Decoder = (src: Uint8Array, dst: Float32Array) => void;
type Encoder = (src: Float32Array, dst: Uint8Array) => void;

const CODECS: Record<GgmlType, { decode: Decoder; encode: Encoder }> = {
  F32: { decode: decodeF32, encode: encodeF32 },
  F16: { decode: decodeF16, encode: encodeF16 },
  BF16: { decode: decodeBF16, encode: encodeBF16 },
  Q4_0: { decode: dequantizeQ4_0, encode: quantizeQ4_0 },
  Q4_1: { decode: dequantizeQ4_1, encode: quantizeQ4_1 },
  Q5_0: { decode: dequantizeQ5_0, encode: quantizeQ5_0 },
  Q5_1: { decode: dequantizeQ5_1, encode: quantizeQ5_1 },
  Q8_0: { decode: dequantizeQ8_0, encode: quantizeQ8_0 },
  Q4_K: { decode: dequantizeQ4_K, encode: quantizeQ4_K },
  Q5_K: { decode: dequantizeQ5_K, encode: quantizeQ5_K },
  Q6_K: { decode: dequantizeQ6_K, encode: quantizeQ6_K },
};

function codec(type: GgmlType): { decode: Decoder; encode: Encoder } {
  if (!Object.prototype.hasOwnProperty.call(CODECS, type)) throw new Error(`quant: unsupported tensor type ${String(type)}`);
  return CODECS[type];
}

/** Decode dst.length values (a whole number of blocks) from src, which holds exactly rowBytes(type, dst.length) bytes. */
export function dequantize(type: GgmlType, src: Uint8Array, dst: Float32Array): void {
  const { decode } = codec(type);
  const bytes = rowBytes(type, dst.length);
  if (src.length !== bytes) {
    throw new Error(`${type}: ${dst.length} values take ${bytes} bytes (${dst.length / GGML_TYPES[type].blockSize} blocks of ${GGML_TYPES[type].typeSize}), but src has ${src.length}`);
  }
  decode(src, dst);
}

/** Encode src.length values (a whole number of blocks) with the reference rounding; returns rowBytes(type, n) bytes (written into dst when given). */
export function quantize(type: GgmlType, src: Float32Array, dst?: Uint8Array): Uint8Array {
  const { encode } = codec(type);
  const bytes = rowBytes(type, src.length);
  if (dst === undefined) dst = new Uint8Array(bytes);
  else if (dst.length !== bytes) {
    throw new Error(`${type}: ${src.length} values take ${bytes} bytes, but dst has ${dst.length}`);
  }
  encode(src, dst);
  return dst;
}

// ---- F32, F16, BF16: raw little-endian values (this module assumes a little-endian host, as
// every platform Node runs on is). Bit patterns are copied, never read as numbers, so NaN payloads
// survive decoding.

function decodeF32(src: Uint8Array, dst: Float32Array): void {
  new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength).set(src);
}

function encodeF32(src: Float32Array, dst: Uint8Array): void {
  dst.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
}

function decodeF16(src: Uint8Array, dst: Float32Array): void {
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  const table = F16_TO_F32_BITS;
  for (let i = 0, o = 0; i < out.length; i++, o += 2) out[i] = table[src[o] | (src[o + 1] << 8)];
}

function decodeBF16(src: Uint8Array, dst: Float32Array): void {
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0, o = 0; i < out.length; i++, o += 2) out[i] = (src[o] << 16) | (src[o + 1] << 24);
}

function encodeF16(src: Float32Array, dst: Uint8Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0, o = 0; i < bits.length; i++, o += 2) {
    const h = f32BitsToF16(bits[i]);
    dst[o] = h & 0xff;
    dst[o + 1] = h >>> 8;
  }
}

function encodeBF16(src: Float32Array, dst: Uint8Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0, o = 0; i < bits.length; i++, o += 2) {
    const h = f32BitsToBf16(bits[i]);
    dst[o] = h & 0xff;
    dst[o + 1] = h >>> 8;
  }
}

// ---- Finite-value checks on stored bytes, without decoding: what loading a model runs on every
// tensor, so a damaged file is refused before it computes NaN. Only bit patterns are read: a float
// is non-finite when its exponent bits are all ones; a block type's integer quants are always
// finite, so a block is non-finite exactly when one of its f16 scale fields is.

/** Byte offsets of each block type's f16 scale fields within its block. */
const SCALE_FIELDS: Record<Exclude<GgmlType, 'F32' | 'F16' | 'BF16'>, readonly number[]> = {
  Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q8_0: [0], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208],
};

/**
 * The flat index of the first value in `bytes` (values of `type`, row-major) that decodes to NaN or
 * ±Infinity, or -1 when all are finite. For a block type, the first value of the first block whose
 * scale is not finite (every value of that block decodes non-finite or NaN).
 */
export function firstNonFinite(type: GgmlType, bytes: Uint8Array): number {
  if (type === 'F32') return firstWithExponent(bytes, 4, 0x7f800000);
  if (type === 'BF16') return firstWithExponent(bytes, 2, 0x7f80);
  if (type === 'F16') return firstWithExponent(bytes, 2, 0x7c00);
  const fields = SCALE_FIELDS[type];
  if (fields === undefined) throw new Error(`quant: unsupported tensor type ${String(type)}`);
  const { blockSize, typeSize } = GGML_TYPES[type];
  const f0 = fields[0], f1 = fields[1] ?? fields[0];
  for (let o = 0, b = 0; o + typeSize <= bytes.length; o += typeSize, b++) {
    if ((((bytes[o + f0] | (bytes[o + f0 + 1] << 8)) & 0x7c00) === 0x7c00) || (((bytes[o + f1] | (bytes[o + f1 + 1] << 8)) & 0x7c00) === 0x7c00)) return b * blockSize;
  }
  return -1;
}

/** Words per chunk of the branch-free scan: a hit is looked for word by word only in its chunk. */
const CHUNK = 256;

/**
 * First little-endian value of `width` bytes whose exponent bits (`mask`) are all ones. Aligned
 * input is scanned 32 bits at a time without branches: adding the mask's lowest bit to the masked
 * exponent carries into the bit above it exactly when the exponent is all ones.
 */
function firstWithExponent(bytes: Uint8Array, width: 2 | 4, mask: number): number {
  const n = Math.floor(bytes.length / width);
  const wordAt = (i: number): number => {
    const o = i * width;
    return width === 4 ? (bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24)) : bytes[o] | (bytes[o + 1] << 8);
  };
  const slow = (from: number, to: number): number => {
    for (let i = from; i < to; i++) if ((wordAt(i) & mask) === mask) return i;
    return -1;
  };
  if (bytes.byteOffset % 4 !== 0) return slow(0, n);
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, (n * width) >>> 2);
  const perWord = 4 / width;
  const m = width === 4 ? mask : mask | (mask << 16);
  const low = width === 4 ? mask & -mask : (mask & -mask) * 0x10001;
  const carry = width === 4 ? 0x80000000 : 0x80008000;
  for (let c = 0; c < words.length; c += CHUNK) {
    const end = Math.min(words.length, c + CHUNK);
    let hit = 0;
    for (let i = c; i < end; i++) hit |= ((words[i] & m) + low) & carry;
    if (hit !== 0) return slow(c * perWord, end * perWord);
  }
  return slow(words.length * perWord, n);
}
