// Q4_1: blocks of 32 values in 20 bytes: f16 d, f16 m, then 16 bytes of nibbles laid out as in
// Q4_0 (value j low nibble of byte j, value j + 16 high nibble); x = d·q + m.
// Encoding (quantize_row_q4_1_ref): m = min, d = (max − min)/15, q = min(15, trunc((x − m)·(1/d) + 0.5)),
// all in float32.
import { F16_TO_F32, truncInt8, writeF16 } from './common.js';

export const QK4_1 = 32;
export const Q4_1_BYTES = 20;

export function dequantizeQ4_1(src: Uint8Array, dst: Float32Array): void {
  const nb = dst.length >>> 5;
  for (let b = 0, o = 0, y = 0; b < nb; b++, o += Q4_1_BYTES, y += QK4_1) {
    const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
    const m = F16_TO_F32[src[o + 2] | (src[o + 3] << 8)];
    const p = o + 4;
    for (let j = 0; j < 16; j++) {
      const v = src[p + j];
      // q·d is exact; the double sum of two float32 values rounds to the float32 sum at the store.
      dst[y + j] = (v & 15) * d + m;
      dst[y + j + 16] = (v >>> 4) * d + m;
    }
  }
}

export function quantizeQ4_1(src: Float32Array, dst: Uint8Array): void {
  const nb = src.length >>> 5;
  for (let b = 0, o = 0, x = 0; b < nb; b++, o += Q4_1_BYTES, x += QK4_1) {
    let min = 3.4028234663852886e38;
    let max = -3.4028234663852886e38;
    for (let j = 0; j < QK4_1; j++) {
      const v = src[x + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = Math.fround(Math.fround(max - min) / 15);
    const id = d ? Math.fround(1 / d) : 0;
    writeF16(dst, o, d);
    writeF16(dst, o + 2, min);
    const p = o + 4;
    for (let j = 0; j < 16; j++) {
      let q0 = truncInt8(Math.fround(Math.fround(Math.fround(src[x + j] - min) * id) + 0.5));
      let q1 = truncInt8(Math.fround(Math.fround(Math.fround(src[x + j + 16] - min) * id) + 0.5));
      q0 = q0 < 15 ? q0 : 15;
      q1 = q1 < 15 ? q1 : 15;
      dst[p + j] = (q0 & 0xff) | (q1 << 4);
    }
  }
}
