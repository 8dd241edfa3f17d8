// Helpers every block format shares: f16 fields read and written byte-wise (a block may sit at any
// byte offset of a file buffer), and ggml's float32 round-to-nearest-even used by its quantizers.
//
// Arithmetic convention in this directory: wherever ggml computes in C `float`, we compute in JS
// doubles and round each operation's result with Math.fround. For +, −, ×, ÷ and √ of float32
// operands that is exactly the float32 operation (a double has more than 2·24 + 2 bits, so the
// double rounding is innocuous), which is what makes bit-exact agreement with llama.cpp possible.
import { f16ToF32Bits, f32BitsToF16 } from './half.js';

const F16_BITS = new Uint32Array(65536);
for (let h = 0; h < 65536; h++) F16_BITS[h] = f16ToF32Bits(h);

/** f16 bit pattern → the float32 bit pattern of the same value (exact, NaN payloads kept). */
export const F16_TO_F32_BITS: Uint32Array = F16_BITS;
/** f16 bit pattern → its value. */
export const F16_TO_F32: Float32Array = new Float32Array(F16_BITS.buffer);

/** The little-endian f16 at b[o], b[o + 1], as a number. */
export function readF16(b: Uint8Array, o: number): number {
  return F16_TO_F32[b[o] | (b[o + 1] << 8)];
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The bits of float32 value v (v must already be a float32; NaN comes out canonical). */
export function f32Bits(v: number): number {
  scratchF32[0] = v;
  return scratchU32[0];
}

/**
 * Stores float32 value v as a little-endian f16 at b[o], b[o + 1] (round to nearest even, as
 * ggml's GGML_FP32_TO_FP16) and returns the value of the stored half, which the K-quant
 * quantizers reuse the way ggml reads its own field back with GGML_FP16_TO_FP32.
 */
export function writeF16(b: Uint8Array, o: number, v: number): number {
  const h = f32BitsToF16(f32Bits(v));
  b[o] = h & 0xff;
  b[o + 1] = h >>> 8;
  return F16_TO_F32[h];
}

/**
 * ggml's nearest_int: adds 1.5·2^23 in float32 and reads the integer out of the mantissa, i.e.
 * round half to even for |f| < 2^22. `f` must be a float32 value. Within that range we round with
 * the float64 constant 1.5·2^52 instead, which gives the same integer without float32 conversions.
 * Outside it (never for sane data) ggml's result is whatever the mantissa bits say; the slow path
 * reproduces that too, so that even degenerate blocks encode as llama.cpp encodes them (NaN gives
 * 0, as in C on x86).
 */
export function nearestInt(f: number): number {
  if (f < 4194304 && f > -4194304) return (f + 6755399441055744 - 6755399441055744) | 0;
  return nearestIntBits(f);
}

function nearestIntBits(f: number): number {
  scratchF32[0] = f + 12582912;
  return (scratchU32[0] & 0x7fffff) - 0x400000;
}

/**
 * A C `(int8_t)` cast of a float as x86 code does it (truncate to int32, keep the low byte): exact
 * for |v| < 2^31, and NaN/±Inf give 0 as there. (Beyond 2^31 x86 gives INT_MIN, i.e. 0, and JS
 * wraps instead; no encoder here produces such values from any input.)
 */
export function truncInt8(v: number): number {
  return ((v | 0) << 24) >> 24;
}
