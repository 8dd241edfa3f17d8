// Q4_0: blocks of 32 values in 18 bytes: f16 d, then 16 bytes of nibbles. Value j (j < 16) is the
// low nibble of byte j, value j + 16 its high nibble; x = d·(q − 8).
// Encoding (quantize_row_q4_0_ref): m = the value of largest magnitude (the first one, on ties),
// d = m / −8, q = min(15, trunc(x·(1/d) + 8.5)) in float32, so m itself encodes as q = 0 exactly
// and the other sign reaches at most +7·|d| (q = 15).
import { F16_TO_F32, truncInt8, writeF16 } from './common.js';

export const QK4_0 = 32;
export const Q4_0_BYTES = 18;

export function dequantizeQ4_0(src: Uint8Array, dst: Float32Array): void {
  const nb = dst.length >>> 5;
  for (let b = 0, o = 0, y = 0; b < nb; b++, o += Q4_0_BYTES, y += QK4_0) {
    const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
    const p = o + 2;
    for (let j = 0; j < 16; j++) {
      const v = src[p + j];
      dst[y + j] = ((v & 15) - 8) * d; // exact products: the stores round nothing
      dst[y + j + 16] = ((v >>> 4) - 8) * d;
    }
  }
}

export function quantizeQ4_0(src: Float32Array, dst: Uint8Array): void {
  const nb = src.length >>> 5;
  for (let b = 0, o = 0, x = 0; b < nb; b++, o += Q4_0_BYTES, x += QK4_0) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK4_0; j++) {
      const v = src[x + j];
      const a = Math.abs(v);
      if (amax < a) {
        amax = a;
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    writeF16(dst, o, d);
    const p = o + 2;
    for (let j = 0; j < 16; j++) {
      let q0 = truncInt8(Math.fround(Math.fround(src[x + j] * id) + 8.5));
      let q1 = truncInt8(Math.fround(Math.fround(src[x + j + 16] * id) + 8.5));
      q0 = q0 < 15 ? q0 : 15;
      q1 = q1 < 15 ? q1 : 15;
      dst[p + j] = (q0 & 0xff) | (q1 << 4);
    }
  }
}
