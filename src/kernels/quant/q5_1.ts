// Q5_1: blocks of 32 values in 24 bytes: f16 d, f16 m, a little-endian u32 qh of fifth bits (bit j
// for value j), then 16 bytes of low nibbles laid out as in Q4_0; x = d·q + m.
// Encoding (quantize_row_q5_1_ref): m = min, d = (max − min)/31, q = trunc((x − m)·(1/d) + 0.5) kept
// to its low 5 bits (ggml clamps nothing here; q never exceeds 31 for finite data).
import { F16_TO_F32, writeF16 } from './common.js';

export const QK5_1 = 32;
export const Q5_1_BYTES = 24;

export function dequantizeQ5_1(src: Uint8Array, dst: Float32Array): void {
  const nb = dst.length >>> 5;
  for (let b = 0, o = 0, y = 0; b < nb; b++, o += Q5_1_BYTES, y += QK5_1) {
    const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
    const m = F16_TO_F32[src[o + 2] | (src[o + 3] << 8)];
    const qh = src[o + 4] | (src[o + 5] << 8) | (src[o + 6] << 16) | (src[o + 7] << 24);
    const p = o + 8;
    for (let j = 0; j < 16; j++) {
      const v = src[p + j];
      dst[y + j] = ((v & 15) | (((qh >>> j) << 4) & 16)) * d + m;
      dst[y + j + 16] = ((v >>> 4) | ((qh >>> (j + 12)) & 16)) * d + m;
    }
  }
}

export function quantizeQ5_1(src: Float32Array, dst: Uint8Array): void {
  const nb = src.length >>> 5;
  for (let b = 0, o = 0, x = 0; b < nb; b++, o += Q5_1_BYTES, x += QK5_1) {
    let min = 3.4028234663852886e38;
    let max = -3.4028234663852886e38;
    for (let j = 0; j < QK5_1; j++) {
      const v = src[x + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = Math.fround(Math.fround(max - min) / 31);
    const id = d ? Math.fround(1 / d) : 0;
    writeF16(dst, o, d);
    writeF16(dst, o + 2, min);
    let qh = 0;
    const p = o + 8;
    for (let j = 0; j < 16; j++) {
      // C's (uint8_t) cast of the float: truncate, keep the low byte.
      const q0 = Math.fround(Math.fround(Math.fround(src[x + j] - min) * id) + 0.5) & 0xff;
      const q1 = Math.fround(Math.fround(Math.fround(src[x + j + 16] - min) * id) + 0.5) & 0xff;
      dst[p + j] = (q0 & 15) | ((q1 & 15) << 4);
      qh |= ((q0 >>> 4) & 1) << j;
      qh |= ((q1 >>> 4) & 1) << (j + 16);
    }
    dst[o + 4] = qh & 0xff;
    dst[o + 5] = (qh >>> 8) & 0xff;
    dst[o + 6] = (qh >>> 16) & 0xff;
    dst[o + 7] = qh >>> 24;
  }
}
