// Q5_0: blocks of 32 values in 22 bytes: f16 d, a little-endian u32 qh of fifth bits (bit j for
// value j), then 16 bytes of low nibbles laid out as in Q4_0; x = d·(q − 16).
// Encoding (quantize_row_q5_0_ref): as Q4_0 with d = m / −16 and q = min(31, trunc(x·(1/d) + 16.5)).
import { F16_TO_F32, truncInt8, writeF16 } from './common.js';

export const QK5_0 = 32;
export const Q5_0_BYTES = 22;

export function dequantizeQ5_0(src: Uint8Array, dst: Float32Array): void {
  const nb = dst.length >>> 5;
  for (let b = 0, o = 0, y = 0; b < nb; b++, o += Q5_0_BYTES, y += QK5_0) {
    const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
    const qh = src[o + 2] | (src[o + 3] << 8) | (src[o + 4] << 16) | (src[o + 5] << 24);
    const p = o + 6;
    for (let j = 0; j < 16; j++) {
      const v = src[p + j];
      dst[y + j] = (((v & 15) | (((qh >>> j) << 4) & 16)) - 16) * d;
      dst[y + j + 16] = (((v >>> 4) | ((qh >>> (j + 12)) & 16)) - 16) * d;
    }
  }
}

export function quantizeQ5_0(src: Float32Array, dst: Uint8Array): void {
  const nb = src.length >>> 5;
  for (let b = 0, o = 0, x = 0; b < nb; b++, o += Q5_0_BYTES, x += QK5_0) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK5_0; j++) {
      const v = src[x + j];
      const a = Math.abs(v);
      if (amax < a) {
        amax = a;
        max = v;
      }
    }
    const d = Math.fround(max / -16);
    const id = d ? Math.fround(1 / d) : 0;
    writeF16(dst, o, d);
    let qh = 0;
    const p = o + 6;
    for (let j = 0; j < 16; j++) {
      let q0 = truncInt8(Math.fround(Math.fround(src[x + j] * id) + 16.5));
      let q1 = truncInt8(Math.fround(Math.fround(src[x + j + 16] * id) + 16.5));
      q0 = (q0 < 31 ? q0 : 31) & 0xff;
      q1 = (q1 < 31 ? q1 : 31) & 0xff;
      dst[p + j] = (q0 & 15) | ((q1 & 15) << 4);
      qh |= ((q0 >>> 4) & 1) << j;
      qh |= ((q1 >>> 4) & 1) << (j + 16);
    }
    dst[o + 2] = qh & 0xff;
    dst[o + 3] = (qh >>> 8) & 0xff;
    dst[o + 4] = (qh >>> 16) & 0xff;
    dst[o + 5] = qh >>> 24;
  }
}
