// Q6_K: super-blocks of 256 values in 210 bytes: ql[128] (low nibbles), qh[64] (high 2-bit pairs),
// 16 signed 8-bit scales (one per 16 values), and f16 d LAST (bytes 208–209). Each 128-value half
// h uses ql[64h ..], qh[32h ..], scales[8h ..]; for l < 32 and k = 0..3, value 128h + 32k + l is
//   q = (k < 2 ? ql[l + 32k] & 15 : ql[l + 32(k − 2)] >> 4) | ((qh[l] >> 2k) & 3) << 4,
// decoded as x = (d·sc)·(q − 32) with sc = scales[8h + 2k + l/16] (ggml's dequantize_row_q6_K).
//
// Encoding (quantize_row_q6_K_ref): each 16-value group gets a signed scale from ggml's
// make_qx_quants with nmax 32 and weights x² (rmse_type 1); the group scales are quantized to int8
// against d = −(scale of largest magnitude)/128, and the levels re-derived from the stored scales.
// All in float32, in ggml's operation order (see k-scales.ts on FMA builds).
import { F16_TO_F32, nearestInt, writeF16 } from './common.js';
import { QK_K } from './q4_k.js';

export const Q6_K_BYTES = 210;

/** ggml's GROUP_MAX_EPS (1e-15f): a group whose largest magnitude is below it is all zeros. */
const GROUP_MAX_EPS = Math.fround(1e-15);

const groupMul = new Float64Array(16);

export function dequantizeQ6_K(src: Uint8Array, dst: Float32Array): void {
  const nb = dst.length >>> 8;
  const sc = new Int8Array(src.buffer, src.byteOffset, src.length);
  const ds = groupMul;
  for (let b = 0, o = 0, y = 0; b < nb; b++, o += Q6_K_BYTES) {
    const d = F16_TO_F32[src[o + 208] | (src[o + 209] << 8)];
    // d·sc and then ·q are exact in float32 (11 + 7 + 6 significant bits ≤ 24): the stores round nothing.
    for (let k = 0; k < 16; k++) ds[k] = d * sc[o + 192 + k];
    for (let h = 0; h < 2; h++, y += 128) {
      const ql = o + 64 * h;
      const qh = o + 128 + 32 * h;
      const g = 8 * h;
      for (let l = 0; l < 32; l++) {
        const is = g + (l >>> 4);
        const a = src[ql + l];
        const c = src[ql + l + 32];
        const e = src[qh + l];
        dst[y + l] = ds[is] * (((a & 15) | ((e & 3) << 4)) - 32);
        dst[y + l + 32] = ds[is + 2] * (((c & 15) | ((e & 12) << 2)) - 32);
        dst[y + l + 64] = ds[is + 4] * (((a >>> 4) | (e & 48)) - 32);
        dst[y + l + 96] = ds[is + 6] * (((c >>> 4) | ((e & 192) >>> 2)) - 32);
      }
    }
  }
}

const levels = new Uint8Array(QK_K); // level + 32, 0..63
const scales = new Float64Array(16);

const wq = new Float64Array(16); // ggml's weights x², float32
const wxq = new Float64Array(16); // float32 x²·x
const trial = new Int32Array(16);
const trialSums = new Float64Array(2);

/**
 * One trial of make_qx_quants: levels clamp(nearest_int(iscale·x), −nmax, nmax − 1) into lt, and
 * ggml's float32 sums Σ(w·x)·l and Σ(w·l)·l into out.
 */
function qxTrial(iscale: number, nmax: number, x: Float32Array, xo: number, lt: Int32Array, out: Float64Array): void {
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < 16; i++) {
    const f = Math.fround(iscale * x[xo + i]);
    // ggml's nearest_int (see common.ts), its usual case inlined by hand
    let l = f < 4194304 && f > -4194304 ? (f + 6755399441055744 - 6755399441055744) | 0 : nearestInt(f);
    l = l < nmax - 1 ? (l > -nmax ? l : -nmax) : nmax - 1;
    lt[i] = l;
    sumlx = Math.fround(sumlx + Math.fround(wxq[i] * l));
    suml2 = Math.fround(suml2 + Math.fround(Math.fround(wq[i] * l) * l));
  }
  out[0] = sumlx;
  out[1] = suml2;
}

/**
 * ggml's make_qx_quants(16, nmax, x + xo, L + lo, rmse_type = 1, no weights): a signed scale such
 * that x ≈ scale·(L − nmax), L in 0..2·nmax−1, maximizing the weighted fit (weights x²) over 19
 * trial inverse scales −(nmax + 0.1·is)/max, is = −9..9.
 */
function makeQxQuants(nmax: number, x: Float32Array, xo: number, L: Uint8Array, lo: number): number {
  const n = 16;
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    const a = Math.abs(v);
    if (a > amax) {
      amax = a;
      max = v;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    const w = Math.fround(v * v);
    wq[i] = w;
    wxq[i] = Math.fround(w * v);
  }
  const lt = trial;
  const sums = trialSums;
  qxTrial(Math.fround(-nmax / max), nmax, x, xo, lt, sums);
  for (let i = 0; i < n; i++) L[lo + i] = lt[i] + nmax;
  let sumlx = sums[0];
  let suml2 = sums[1];
  let scale = suml2 ? Math.fround(sumlx / suml2) : 0;
  let best = Math.fround(scale * sumlx);
  const tenth = Math.fround(0.1);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = Math.fround(-Math.fround(nmax + Math.fround(tenth * is)) / max);
    qxTrial(iscale, nmax, x, xo, lt, sums);
    sumlx = sums[0];
    suml2 = sums[1];
    if (suml2 > 0 && Math.fround(sumlx * sumlx) > Math.fround(best * suml2)) {
      // ggml recomputes the levels of this iscale: the ones just computed.
      for (let i = 0; i < n; i++) L[lo + i] = lt[i] + nmax;
      scale = Math.fround(sumlx / suml2);
      best = Math.fround(scale * sumlx);
    }
  }
  return scale;
}

export function quantizeQ6_K(src: Float32Array, dst: Uint8Array): void {
  const nb = src.length >>> 8;
  const L = levels;
  const sc = new Int8Array(dst.buffer, dst.byteOffset, dst.length);
  for (let b = 0, o = 0, x = 0; b < nb; b++, o += Q6_K_BYTES, x += QK_K) {
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let g = 0; g < 16; g++) {
      const s = makeQxQuants(32, src, x + 16 * g, L, 16 * g);
      scales[g] = s;
      const a = Math.abs(s);
      if (a > maxAbsScale) {
        maxAbsScale = a;
        maxScale = s;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      dst.fill(0, o, o + Q6_K_BYTES);
      continue;
    }
    const iscale = Math.fround(-128 / maxScale);
    const d = writeF16(dst, o + 208, Math.fround(1 / iscale));
    for (let g = 0; g < 16; g++) {
      const l = nearestInt(Math.fround(iscale * scales[g]));
      sc[o + 192 + g] = l < 127 ? l : 127; // stored as int8 (low byte), as C's assignment does
    }
    for (let g = 0; g < 16; g++) {
      const dg = Math.fround(d * sc[o + 192 + g]);
      if (!dg) continue; // keeps the group's levels from the search, as ggml does
      const base = x + 16 * g;
      for (let i = 0; i < 16; i++) {
        const l = nearestInt(Math.fround(src[base + i] / dg));
        L[16 * g + i] = (l < 31 ? (l > -32 ? l : -32) : 31) + 32;
      }
    }
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h;
      const qh = o + 128 + 32 * h;
      const j = 128 * h;
      for (let l = 0; l < 32; l++) {
        const q1 = L[j + l];
        const q2 = L[j + l + 32];
        const q3 = L[j + l + 64];
        const q4 = L[j + l + 96];
        dst[ql + l] = (q1 & 15) | ((q3 & 15) << 4);
        dst[ql + l + 32] = (q2 & 15) | ((q4 & 15) << 4);
        dst[qh + l] = (q1 >>> 4) | ((q2 >>> 4) << 2) | ((q3 >>> 4) << 4) | ((q4 >>> 4) << 6);
      }
    }
  }
}
