// Q4_K: super-blocks of 256 values in 144 bytes: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins
// for eight 32-value sub-blocks (see k-scales.ts), then 128 bytes of nibbles. Byte l of 64-value
// chunk c (bytes 32c .. 32c+31) holds value 64c + l in its low nibble and value 64c + 32 + l in its
// high nibble. Value i of sub-block j: x = (d·sc_j)·q − (dmin·m_j), the two products formed in
// float32 first (ggml's dequantize_row_q4_K).
import { F16_TO_F32 } from './common.js';
import { encodeKHeader } from './k-scales.js';

export const QK_K = 256;
export const Q4_K_BYTES = 144;

const scaleMul = new Float64Array(8);
const minMul = new Float64Array(8);

/**
 * Reads the eight (d·sc_j, dmin·m_j) products of the super-block header at src[o] into sm/mm.
 * Both are exact in float32 (11-bit × 6-bit significands), so no rounding is needed.
 */
export function kHeaderProducts(src: Uint8Array, o: number, sm: Float64Array, mm: Float64Array): void {
  const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
  const dmin = F16_TO_F32[src[o + 2] | (src[o + 3] << 8)];
  const s = o + 4;
  for (let j = 0; j < 4; j++) {
    const a = src[s + j];
    const b = src[s + j + 4];
    const c = src[s + j + 8];
    sm[j] = d * (a & 63);
    mm[j] = dmin * (b & 63);
    sm[j + 4] = d * ((c & 15) | ((a >>> 6) << 4));
    mm[j + 4] = dmin * ((c >>> 4) | ((b >>> 6) << 4));
  }
}

export function dequantizeQ4_K(src: Uint8Array, dst: Float32Array): void {
  const nb = dst.length >>> 8;
  const sm = scaleMul;
  const mm = minMul;
  for (let b = 0, o = 0, y = 0; b < nb; b++, o += Q4_K_BYTES) {
    kHeaderProducts(src, o, sm, mm);
    for (let c = 0; c < 4; c++, y += 64) {
      const d1 = sm[2 * c];
      const m1 = mm[2 * c];
      const d2 = sm[2 * c + 1];
      const m2 = mm[2 * c + 1];
      const p = o + 16 + 32 * c;
      for (let l = 0; l < 32; l++) {
        const v = src[p + l];
        // d1·q is exact (≤ 21 significant bits); the double difference of two float32 values
        // rounds to the float32 difference at the store.
        dst[y + l] = d1 * (v & 15) - m1;
        dst[y + 32 + l] = d2 * (v >>> 4) - m2;
      }
    }
  }
}

const levels = new Uint8Array(QK_K);

export function quantizeQ4_K(src: Float32Array, dst: Uint8Array): void {
  const nb = src.length >>> 8;
  const L = levels;
  for (let b = 0, o = 0, x = 0; b < nb; b++, o += Q4_K_BYTES, x += QK_K) {
    encodeKHeader(src, x, 15, -1, Math.fround(0.1), 20, dst, o, L);
    for (let c = 0; c < 4; c++) {
      const p = o + 16 + 32 * c;
      const base = 64 * c;
      for (let l = 0; l < 32; l++) dst[p + l] = L[base + l] | (L[base + 32 + l] << 4);
    }
  }
}
