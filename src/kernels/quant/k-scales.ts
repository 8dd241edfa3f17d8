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
//
// Two shortcuts depart from ggml's code but not from its results: a trial whose levels repeat the
// previous trial's is skipped, and so is one that `cannotWin` proves, from float64 sums and error
// bounds, cannot beat the best error so far; ggml would reject both. That skips the float32 work
// of about 80% of the trials on zero-mean data (less on data far from zero mean, where the bound is
// looser); test/quant.test.ts checks that turning it off changes no byte.
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
const acc = new Float64Array(5);
const wxs = new Float64Array(32);
const waxs = new Float64Array(32);
const stats = new Float64Array(6);

/**
 * One trial's levels, clamp(nearest_int(iscale·xs[i]), 0, nm), into la. Returns whether any level
 * differs from what la held (the previous trial's levels). Also leaves in out, for the gate
 * (`cannotWin`), float64 sums of the levels: Σw·l, Σw·l², Σw·l·x, Σw·l·|x| (wx, wax hold w·x and
 * w·|x|) and the largest weight of a value at level 0 (0 when none is). Every term is exact in
 * float64; only the sums round.
 */
function trialLevels(
  iscale: number, nm: number, xs: Float64Array, w: Float64Array, wx: Float64Array, wax: Float64Array,
  la: Uint8Array, out: Float64Array,
): boolean {
  let changed = 0;
  let a1 = 0;
  let a2 = 0;
  let b1 = 0;
  let b1abs = 0;
  let w0 = 0;
  for (let i = 0; i < 32; i++) {
    const f = Math.fround(iscale * xs[i]);
    // ggml's nearest_int (see common.ts), its usual case inlined by hand
    let l = f < 4194304 && f > -4194304 ? (f + 6755399441055744 - 6755399441055744) | 0 : nearestInt(f);
    l = l < nm ? (l > 0 ? l : 0) : nm;
    changed |= la[i] ^ l;
    la[i] = l;
    const wi = w[i];
    const wl = wi * l;
    a1 += wl;
    a2 += wl * l;
    b1 += l * wx[i]; // exact: a 48-bit product times a 5-bit level
    b1abs += l * wax[i];
    if (l === 0 && wi > w0) w0 = wi;
  }
  out[0] = a1;
  out[1] = a2;
  out[2] = b1;
  out[3] = b1abs;
  out[4] = w0;
  return changed !== 0;
}

/** ggml's float32 sums Σw·l, Σw·l², Σw·l·x of a trial's levels (in its order), into out. */
function trialSums(la: Uint8Array, w: Float64Array, x: Float32Array, xo: number, out: Float64Array): void {
  let sumL = 0;
  let sumL2 = 0;
  let sumXL = 0;
  for (let i = 0; i < 32; i++) {
    const l = la[i];
    const wl = Math.fround(w[i] * l);
    sumL = Math.fround(sumL + wl);
    sumL2 = Math.fround(sumL2 + Math.fround(wl * l));
    sumXL = Math.fround(sumXL + Math.fround(wl * x[xo + i]));
  }
  out[0] = sumL;
  out[1] = sumL2;
  out[2] = sumXL;
}

const U = 2 ** -24 + 2 ** -40; // float32 unit roundoff, inflated to cover second-order terms
const REL = 2 ** -40; // bound on the relative error of each float64 quantity below (true: < 2^-44)
let gateEnabled = true;

/**
 * For tests: turn the shortcut below off or on. It must never change a byte (the tests compare).
 */
export function setKSearchGate(enabled: boolean): void {
  gateEnabled = enabled;
}

/**
 * Whether a trial provably loses, decided from float64 sums before any float32 work: true only
 * when ggml's float32 error F of this trial's levels, for whatever float32 scale s and min m its
 * fit produces, is ≥ bestError, so that ggml's `cur_error < best_error` is false. Skipping such
 * trials is exact; a trial it cannot rule out goes through ggml's float32 computation as usual.
 *
 * Why it holds (u = 2^-24; d_i = s·l_i + m − x_i, exact; E = Σ w·d², exact):
 *  1. E ≥ E_min = min over all real (s, m) = X2 − P/D, with D = W·A2 − A1², P = W·B1² −
 *     2·A1·X1·B1 + A2·X1² (A1 = Σwl, A2 = Σwl², B1 = Σwlx, W = Σw, X1 = Σwx, X2 = Σwx²). In float64
 *     each sum errs by < 2^-44 of its absolute version (32 terms, products exact or rounded once),
 *     so E_lo below, which subtracts 2^-40-sized bounds for every term and for the division, is ≤
 *     E_min. Ill-conditioned D (levels nearly constant) is left to the exact path.
 *  2. ggml's float32 residual r_i = fl(fl(fl(s·l)+m) − x) differs from d_i by ≤ U·a_i + 2^-148 with
 *     a_i = |s·l| + |s·l + m| + |d_i| ≤ 2|x_i| + 3|d_i| + |m|, and |m| ≤ |x_i0| + √(E/w_i0) for any
 *     value i0 at level 0. With Cauchy–Schwarz, Σ w·r² ≥ α·E − β·√E where α = 1 − 2U(3 + √(W/w0)),
 *     β = 2U(2√X2 + xmax·√W) + 2^-147·√W.
 *  3. Squaring, weighting and the float32 running sum of non-negative terms lose at most a factor
 *     (1 − 33u) ≥ 1 − 2^-18 and an absolute 2^-150·(32 + W) to underflow.
 *  4. α·E − β·√E increases with E once √E ≥ β/(2α), so for √E_lo ≥ 2β/α (which also makes the
 *     float64 rounding of this bound negligible against the 31u of slack in step 3),
 *     F ≥ (1 − 2^-18)·(α·E_lo − β·√E_lo) − 2^-145·(32 + W).
 * NaN or infinite inputs make a comparison false and fall through to the exact path.
 */
function cannotWin(a: Float64Array, st: Float64Array, bestError: number): boolean {
  const w0 = a[4];
  if (!(w0 > 0)) return false; // no value at level 0: no bound on m
  const a1 = a[0];
  const a2 = a[1];
  const b1 = a[2];
  const b1abs = a[3];
  const W = st[0];
  const x1 = st[1];
  const x1abs = st[2];
  const x2 = st[3];
  const xmax = st[4];
  const dAbs = W * a2 + a1 * a1;
  const dLo = W * a2 - a1 * a1 - REL * dAbs;
  if (!(dLo > 2 ** -10 * W * a2)) return false;
  const p = W * b1 * b1 - 2 * a1 * x1 * b1 + a2 * x1 * x1;
  const pAbs = W * b1abs * b1abs + 2 * a1 * x1abs * b1abs + a2 * x1abs * x1abs;
  const eC = x2 - p / (W * a2 - a1 * a1);
  const err = REL * (x2 + pAbs / dLo) + (Math.abs(p) + REL * pAbs) * REL * dAbs / (dLo * dLo) + REL * Math.abs(eC);
  const eLo = eC - err;
  if (!(eLo > 0)) return false;
  const sqrtW = st[5];
  const alpha = 1 - 2 * U * (3 + Math.sqrt(W / w0));
  const beta = 2 * U * (2 * Math.sqrt(x2) + xmax * sqrtW) + 2 ** -147 * sqrtW;
  const root = Math.sqrt(eLo);
  if (!(alpha > 0.5 && root * alpha >= 2 * beta)) return false;
  const lb = (1 - 2 ** -18) * (alpha * eLo - beta * root) - 2 ** -145 * (32 + W);
  return lb >= bestError;
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
  // float64 statistics for the gate (see cannotWin)
  let W = 0;
  let x1 = 0;
  let x1abs = 0;
  let x2 = 0;
  let xmax = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    const wx = w[i] * xi; // exact
    wxs[i] = wx;
    waxs[i] = Math.abs(wx);
    W += w[i];
    x1 += wx;
    x1abs += Math.abs(wx);
    x2 += wx * xi;
    if (Math.abs(xi) > xmax) xmax = Math.abs(xi);
  }
  const st = stats;
  st[0] = W;
  st[1] = x1;
  st[2] = x1abs;
  st[3] = x2;
  st[4] = xmax;
  st[5] = Math.sqrt(W);

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
    const changed = trialLevels(iscale, nm, xs, w, wxs, waxs, la, acc);
    if (havePrev && !changed) continue;
    havePrev = true;
    if (gateEnabled && cannotWin(acc, stats, bestError)) continue;
    trialSums(la, w, x, xo, sums);
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
