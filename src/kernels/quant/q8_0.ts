// Q8_0: blocks of 32 values in 34 bytes: f16 d, then 32 signed bytes q; x = d·q.
// Encoding (ggml's quantize_row_q8_0_ref): d = max|x| / 127 in float32, q = round(x · (1/d)) with
// halves away from zero (C roundf). The f16 field holds d rounded, but q is computed with the
// float32 d, as ggml does.
import { F16_TO_F32, writeF16 } from './common.js';

export const QK8_0 = 32;
export const Q8_0_BYTES = 34;

/** Decodes src (whole blocks, lengths checked by the caller) into dst. */
export function dequantizeQ8_0(src: Uint8Array, dst: Float32Array): void {
  const q = new Int8Array(src.buffer, src.byteOffset, src.length);
  const nb = dst.length >>> 5;
  for (let b = 0, o = 0, y = 0; b < nb; b++, o += Q8_0_BYTES, y += QK8_0) {
    const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
    const p = o + 2;
    // q·d is exact in float32 (8-bit × 11-bit significands), so the store rounds nothing.
    for (let j = 0; j < QK8_0; j++) dst[y + j] = q[p + j] * d;
  }
}

/** Encodes src (whole blocks) into dst. */
export function quantizeQ8_0(src: Float32Array, dst: Uint8Array): void {
  const q = new Int8Array(dst.buffer, dst.byteOffset, dst.length);
  const nb = src.length >>> 5;
  for (let b = 0, o = 0, x = 0; b < nb; b++, o += Q8_0_BYTES, x += QK8_0) {
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) {
      const a = Math.abs(src[x + j]);
      amax = amax > a ? amax : a; // C's MAX(amax, a): a NaN is forgotten by the next larger value
    }
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    writeF16(dst, o, d);
    const p = o + 2;
    for (let j = 0; j < QK8_0; j++) {
      const v = Math.fround(src[x + j] * id);
      // roundf: halves away from zero. |v| ≤ 127 + a few ulps, so v ± 0.5 is exact in a double and
      // truncating it rounds v (NaN → 0, as C on x86).
      q[p + j] = (v + (v < 0 ? -0.5 : 0.5)) | 0;
    }
  }
}
