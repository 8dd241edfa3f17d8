// Q5_K: super-blocks of 256 values in 176 bytes: the Q4_K header (f16 d, f16 dmin, 12 bytes of 6-bit
// scales and mins; see k-scales.ts), 32 bytes qh, then 128 bytes of low nibbles laid out as in
// Q4_K. Bit 2c of qh[l] is the fifth bit of value 64c + l (the low-nibble value of chunk c), bit
// 2c + 1 that of value 64c + 32 + l. x = (d·sc_j)·q − (dmin·m_j), products in float32 first.
import { encodeKHeader } from './k-scales.js';
import { kHeaderProducts, QK_K } from './q4_k.js';

export const Q5_K_BYTES = 176;

const scaleMul = new Float64Array(8);
const minMul = new Float64Array(8);

export function dequantizeQ5_K(src: Uint8Array, dst: Float32Array): void {
  const nb = dst.length >>> 8;
  const sm = scaleMul;
  const mm = minMul;
  for (let b = 0, o = 0, y = 0; b < nb; b++, o += Q5_K_BYTES) {
    kHeaderProducts(src, o, sm, mm);
    const h = o + 16;
    for (let c = 0; c < 4; c++, y += 64) {
      const d1 = sm[2 * c];
      const m1 = mm[2 * c];
      const d2 = sm[2 * c + 1];
      const m2 = mm[2 * c + 1];
      const p = o + 48 + 32 * c;
      const s1 = 2 * c;
      for (let l = 0; l < 32; l++) {
        const v = src[p + l];
        const hb = src[h + l] >>> s1;
        // d1·q is exact (≤ 22 significant bits): one rounding, at the store, as in float32.
        dst[y + l] = d1 * ((v & 15) | ((hb & 1) << 4)) - m1;
        dst[y + 32 + l] = d2 * ((v >>> 4) | ((hb & 2) << 3)) - m2;
      }
    }
  }
}

const levels = new Uint8Array(QK_K);

export function quantizeQ5_K(src: Float32Array, dst: Uint8Array): void {
  const nb = src.length >>> 8;
  const L = levels;
  for (let b = 0, o = 0, x = 0; b < nb; b++, o += Q5_K_BYTES, x += QK_K) {
    encodeKHeader(src, x, 31, -0.5, Math.fround(0.1), 15, dst, o, L);
    const h = o + 16;
    for (let l = 0; l < 32; l++) dst[h + l] = 0;
    for (let c = 0; c < 4; c++) {
      const p = o + 48 + 32 * c;
      const base = 64 * c;
      for (let l = 0; l < 32; l++) {
        const l1 = L[base + l];
        const l2 = L[base + 32 + l];
        dst[p + l] = (l1 & 15) | ((l2 & 15) << 4);
        dst[h + l] |= ((l1 >>> 4) << (2 * c)) | ((l2 >>> 4) << (2 * c + 1));
      }
    }
  }
}
