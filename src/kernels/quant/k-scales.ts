// What Q4_K and Q5_K share: the 16-byte super-block header (f16 d, f16 dmin, 12 bytes holding eight
// 6-bit sub-block scales and eight 6-bit mins) and ggml's reference encoder for it, which picks a
// scale and a min for each 32-value sub-block by a weighted least-squares search (ggml's
// make_qkx2_quants), quantizes those to 6 bits against the super-block's d and dmin, and then
// re-derives every value's level from the stored (rounded) scales.
//
// All arithmetic is float32 (Math.fround after every operation), in ggml's operation order, so
// the bytes equal llama-quantize's (no importance matrix) on an x86-64 build, where ggml-base is
// compiled without FMA contraction. A build that fuses a·b + c into one FMA (e.g. clang on arm64,
// whose default is -ffp-contract=on) rounds some of these sums differently and can pick a
// different level or scale on rare near-ties; so can any compiler that evaluates in float64.
import { nearestInt, writeF16 } from './common.js';

/** Scale j (0..7) of a Q4_K/Q5_K header whose 12 scale bytes start at s[o]. */
export function kScale(s: Uint8Array, o: number, j: number): number {
  return j < 4 ? s[o + j] & 63 : (s[o + j + 4] & 15) | ((s[o + j - 4] >>> 6) << 4);
}

/** Min j (0..7) of a Q4_K/Q5_K header whose 12 scale bytes start at s[o]. */
export function kMin(s: Uint8Array, o: number, j: number): number {
  return j < 4 ? s[o + j + 4] & 63 : (s[o + j + 4] >>> 4) | ((s[o + j] >>> 6) << 4);
}

// Scratch, reused by every call (the encoders are synchronous and never re-entered).
const weights = new Float64Array(32);
const laux = new Uint8Array(32);
const xm = new Float64Array(32);
const scales = new Float64Array(8);
const mins = new Float64Array(8);

const sums = new Float64Array(3);

/**
 * One trial's levels, clamp(nearest_int(iscale·xs[i]), 0, nm), into la, and ggml's float32 sums
 * Σw·l, Σw·l², Σw·l·x into out. Returns whether any level differs from what la held (the previous
 * trial's levels).
 */
function trialLevels(
  iscale: number, nm: number, xs: Float64Array, w: Float64Array, x: Float32Array, xo: number,
  la: Uint8Array, out: Float64Array,
): boolean {
  let changed = 0;
  let sumL = 0;
  let sumL2 = 0;
  let sumXL = 0;
  for (let i = 0; i < 32; i++) {
    const f = Math.fround(iscale * xs[i]);
    // ggml's nearest_int (see common.ts), its usual case inlined by hand
    let l = f < 4194304 && f > -4194304 ? (f + 6755399441055744 - 6755399441055744) | 0 : nearestInt(f);
    l = l < nm ? (l > 0 ? l : 0) : nm;
    changed |= la[i] ^ l;
    la[i] = l;
    const wl = Math.fround(w[i] * l);
    sumL = Math.fround(sumL + wl);
    sumL2 = Math.fround(sumL2 + Math.fround(wl * l));
    sumXL = Math.fround(sumXL + Math.fround(wl * x[xo + i]));
  }
  out[0] = sumL;
  out[1] = sumL2;
  out[2] = sumXL;
  return changed !== 0;
}

/**
 * ggml's float32 weighted squared error Σ w·(scale·l + min − x)² of a trial, or Infinity once the
 * running sum reaches `bound`: every term is ≥ 0, so the float32 sum never decreases and that
 * trial has lost (ggml's `cur_error < best_error` would be false).
 */
function trialError(
  scale: number, min: number, la: Uint8Array, x: Float32Array, xo: number, w: Float64Array, bound: number,
): number {
  let err = 0;
  for (let i = 0; i < 32; i++) {
    let diff = Math.fround(Math.fround(Math.fround(scale * la[i]) + min) - x[xo + i]);
    diff = Math.fround(diff * diff);
    err = Math.fround(err + Math.fround(w[i] * diff));
    if (err >= bound) return Infinity;
  }
  return err;
}

/**
 * ggml's make_qkx2_quants for one 32-value sub-block x[xo .. xo+32) with weights `weights`:
 * levels L[lo + i] in 0..nmax such that x ≈ scale·L − theMin. Returns the scale and leaves the min
 * (≥ 0; ggml's the_min) in mins[j].
 *
 * The search tries nstep + 1 inverse scales (nmax + rmin + rdelta·is)/(max − min), fits scale and
 * min to each one's levels by weighted least squares, and keeps the fit with the least weighted
 * squared error. As in ggml, `min` moves to each accepted fit's min and the later trials are taken
 * relative to it.
 */
function makeQkx2Quants(
  nmax: number, x: Float32Array, xo: number, L: Uint8Array, lo: number,
  rmin: number, rdelta: number, nstep: number, j: number,
): number {
  const n = 32;
  const nm = nmax | 0;
  const w = weights;
  const la = laux;
  const xs = xm;
  let min = x[xo];
  let max = min;
  let sumW = w[0];
  let sumX = Math.fround(sumW * min);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const wi = w[i];
    sumW = Math.fround(sumW + wi);
    sumX = Math.fround(sumX + Math.fround(wi * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    mins[j] = -min;
    return 0;
  }
  let range = Math.fround(max - min);
  let iscale = Math.fround(nm / range);
  let scale = Math.fround(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    const d = Math.fround(xi - min);
    xs[i] = d;
    let l = nearestInt(Math.fround(iscale * d));
    l = l < nm ? (l > 0 ? l : 0) : nm;
    L[lo + i] = l;
    let diff = Math.fround(Math.fround(Math.fround(scale * l) + min) - xi);
    diff = Math.fround(diff * diff);
    bestError = Math.fround(bestError + Math.fround(w[i] * diff));
  }
  if (nstep < 1) {
    mins[j] = -min;
    return scale;
  }
  // A trial whose levels equal the previous trial's has the same sums, hence the same fit and
  // error, which was already compared against a best error that can only have dropped since: it
  // cannot win, so it is skipped. (Exact: ggml would reject it too.)
  let havePrev = false;
  for (let is = 0; is <= nstep; is++) {
    iscale = Math.fround(Math.fround(Math.fround(rmin + Math.fround(rdelta * is)) + nm) / range);
    const changed = trialLevels(iscale, nm, xs, w, x, xo, la, sums);
    if (havePrev && !changed) continue;
    havePrev = true;
    const sumL = sums[0];
    const sumL2 = sums[1];
    const sumXL = sums[2];
    const D = Math.fround(Math.fround(sumW * sumL2) - Math.fround(sumL * sumL));
    if (!(D > 0)) continue;
    let thisScale = Math.fround(Math.fround(Math.fround(sumW * sumXL) - Math.fround(sumX * sumL)) / D);
    let thisMin = Math.fround(Math.fround(Math.fround(sumL2 * sumX) - Math.fround(sumL * sumXL)) / D);
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = Math.fround(sumXL / sumL2);
    }
    const err = trialError(thisScale, thisMin, la, x, xo, w, bestError);
    if (err < bestError) {
      for (let k = 0; k < n; k++) L[lo + k] = la[k];
      bestError = err;
      scale = thisScale;
      if (thisMin !== min) {
        min = thisMin;
        range = Math.fround(max - min);
        for (let k = 0; k < n; k++) xs[k] = Math.fround(x[xo + k] - min);
      }
    }
  }
  mins[j] = -min;
  return scale;
}

/**
 * ggml's reference encoder for the shared part of a Q4_K/Q5_K super-block of 256 values at
 * x[xo ..]: writes d, dmin and the 12 scale bytes at dst[o .. o+16) and the levels (0..nmax) of
 * all 256 values into L. (quantize_row_q4_K_ref: nmax 15, rmin −1, rdelta 0.1, 20 steps;
 * quantize_row_q5_K_ref: nmax 31, rmin −0.5, rdelta 0.1, 15 steps.) The weights are
 * av_x + |x| with av_x the sub-block's RMS.
 */
export function encodeKHeader(
  x: Float32Array, xo: number, nmax: number, rmin: number, rdelta: number, nstep: number,
  dst: Uint8Array, o: number, L: Uint8Array,
): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const base = xo + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) {
      const v = x[base + l];
      sumX2 = Math.fround(sumX2 + Math.fround(v * v));
    }
    const avX = Math.fround(Math.sqrt(Math.fround(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = Math.fround(avX + Math.abs(x[base + l]));
    const scale = makeQkx2Quants(nmax, x, base, L, 32 * j, rmin, rdelta, nstep, j);
    scales[j] = scale;
    if (scale > maxScale) maxScale = scale;
    if (mins[j] > maxMin) maxMin = mins[j];
  }

  const invScale = maxScale > 0 ? Math.fround(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? Math.fround(63 / maxMin) : 0;
  const s = o + 4;
  for (let j = 0; j < 8; j++) {
    // C stores nearest_int(...) in a uint8_t before clamping to 63: keep the low byte first.
    let ls = nearestInt(Math.fround(invScale * scales[j])) & 0xff;
    let lm = nearestInt(Math.fround(invMin * mins[j])) & 0xff;
    ls = ls < 63 ? ls : 63;
    lm = lm < 63 ? lm : 63;
    if (j < 4) {
      dst[s + j] = ls;
      dst[s + j + 4] = lm;
    } else {
      dst[s + j + 4] = (ls & 15) | ((lm & 15) << 4);
      dst[s + j - 4] |= (ls >>> 4) << 6;
      dst[s + j] |= (lm >>> 4) << 6;
    }
  }
  const d = writeF16(dst, o, Math.fround(maxScale / 63));
  const dmin = writeF16(dst, o + 2, Math.fround(maxMin / 63));

  // Levels against the scales as stored. A sub-block whose stored scale is 0 keeps the levels of
  // its search (they decode to −dmin·m whatever they are), as in ggml.
  for (let j = 0; j < 8; j++) {
    const dj = Math.fround(d * kScale(dst, s, j));
    if (!dj) continue;
    const mj = Math.fround(dmin * kMin(dst, s, j));
    const base = xo + 32 * j;
    for (let i = 0; i < 32; i++) {
      const l = nearestInt(Math.fround(Math.fround(x[base + i] + mj) / dj));
      L[32 * j + i] = l < nmax ? (l > 0 ? l : 0) : nmax;
    }
  }
}
