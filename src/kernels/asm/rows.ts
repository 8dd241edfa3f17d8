// Row-wise and element-wise kernels (AssemblyScript): the non-GEMM parts of a training step, the
// attention softmax with its causal mask among them.
//
// Each one works on a range [r0, r1) of independent units (rows, elements or columns), so the work
// split (jobs.ts) can hand ranges to threads. Each has a plain TypeScript twin in ../reference.ts,
// which the tests hold it to; they compute in float32 where the twin uses float64, so they agree to
// float32 rounding.
import { at, hsum, madd } from './simd';

// exp on four lanes (Cephes expf): e^x = 2^n · e^r with n = round(x·log2 e) and |r| ≤ ln2/2, e^r by
// a degree-6 polynomial; about 1 ulp. Past the float32 range it returns 0 (x < ln 2^-126, where 2^n
// would be denormal) or +inf (within 0.4% of the float32 limit); -inf gives 0 and NaN stays NaN.
const EXP_LO: f32 = -87.33654;
const EXP_HI: f32 = 88.37626; // 2^128 would not be finite: above this, +inf (e^88.38 is 2.4e38)

@inline function exp4(x: v128): v128 {
  const lo = f32x4.splat(EXP_LO), hi = f32x4.splat(EXP_HI);
  const xc = f32x4.min(f32x4.max(x, lo), hi);
  const n = f32x4.nearest(f32x4.mul(xc, f32x4.splat(1.44269504088896341)));
  // r = x − n·ln2 in two steps (ln2 split into an exact high part and a correction)
  let r = f32x4.sub(xc, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let y = f32x4.splat(1.9875691500e-4);
  y = madd(y, r, f32x4.splat(1.3981999507e-3));
  y = madd(y, r, f32x4.splat(8.3334519073e-3));
  y = madd(y, r, f32x4.splat(4.1665795894e-2));
  y = madd(y, r, f32x4.splat(1.6666665459e-1));
  y = madd(y, r, f32x4.splat(5.0000001201e-1));
  y = madd(f32x4.mul(y, r), r, f32x4.add(r, f32x4.splat(1)));
  // 2^n built in the exponent bits; n + 127 is at least 1 here, never 0 or negative.
  const pow2 = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  let e = f32x4.mul(y, pow2);
  e = v128.bitselect(f32x4.splat(0), e, f32x4.lt(x, lo));
  e = v128.bitselect(f32x4.splat(Infinity), e, f32x4.gt(x, hi));
  return e;
}

@inline function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

/** out[i] = silu(gate[i]) · up[i] = gate[i] · σ(gate[i]) · up[i] for i in [i0, i1). */
export function swigluRange(gate: usize, up: usize, out: usize, i0: i32, i1: i32): void {
  const one = f32x4.splat(1);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const x = v128.load(at(gate, i));
    const s = f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(x))));
    v128.store(at(out, i), f32x4.mul(f32x4.mul(x, s), v128.load(at(up, i))));
  }
  for (; i < i1; i++) {
    const x = load<f32>(at(gate, i));
    const s: f32 = 1 / (1 + exp1(-x));
    store<f32>(at(out, i), x * s * load<f32>(at(up, i)));
  }
}

/**
 * SwiGLU backward over [i0, i1): gGate += g·up·σ·(1 + x·(1 − σ)), gUp += g·x·σ (x = gate), or = with
 * overwrite (the old contents are never read); a zero pointer skips that gradient.
 */
export function swigluBackwardRange(gate: usize, up: usize, g: usize, gGate: usize, gUp: usize, overwrite: bool, i0: i32, i1: i32): void {
  if (overwrite) {
    // Zero the range first: it stays in L1 and the loop below then has one form.
    if (gGate != 0) memory.fill(at(gGate, i0), 0, <usize>(i1 - i0) << 2);
    if (gUp != 0) memory.fill(at(gUp, i0), 0, <usize>(i1 - i0) << 2);
  }
  const one = f32x4.splat(1);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const x = v128.load(at(gate, i));
    const gi = v128.load(at(g, i));
    const s = f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(x))));
    if (gGate != 0) {
      const d = f32x4.mul(f32x4.mul(gi, v128.load(at(up, i))), f32x4.mul(s, madd(x, f32x4.sub(one, s), one)));
      v128.store(at(gGate, i), f32x4.add(v128.load(at(gGate, i)), d));
    }
    if (gUp != 0) v128.store(at(gUp, i), madd(f32x4.mul(gi, x), s, v128.load(at(gUp, i))));
  }
  for (; i < i1; i++) {
    const x = load<f32>(at(gate, i));
    const gi = load<f32>(at(g, i));
    const s: f32 = 1 / (1 + exp1(-x));
    if (gGate != 0) store<f32>(at(gGate, i), load<f32>(at(gGate, i)) + gi * load<f32>(at(up, i)) * s * (1 + x * (1 - s)));
    if (gUp != 0) store<f32>(at(gUp, i), load<f32>(at(gUp, i)) + gi * x * s);
  }
}

/** Σ a[i]·b[i] over n floats, with two vector accumulators (sums of squares pass a = b). */
@inline function dot(a: usize, b: usize, n: i32): f32 {
  let s0 = f32x4.splat(0), s1 = s0;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    s0 = madd(v128.load(at(a, i)), v128.load(at(b, i)), s0);
    s1 = madd(v128.load(at(a, i), 16), v128.load(at(b, i), 16), s1);
  }
  for (; i + 4 <= n; i += 4) s0 = madd(v128.load(at(a, i)), v128.load(at(b, i)), s0);
  let s = hsum(f32x4.add(s0, s1));
  for (; i < n; i++) s += load<f32>(at(a, i)) * load<f32>(at(b, i));
  return s;
}

/** RMSNorm of rows [r0, r1) of x [rows, dim]: out = x · rstd · w, rstd[r] = 1/√(mean(x²) + eps). */
export function rmsnormRange(x: usize, w: usize, out: usize, rstd: usize, dim: i32, eps: f32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const xr = at(x, <usize>r * <usize>dim);
    const orow = at(out, <usize>r * <usize>dim);
    const s = <f32>(1 / Math.sqrt(<f64>dot(xr, xr, dim) / <f64>dim + <f64>eps));
    store<f32>(at(rstd, r), s);
    const vs = f32x4.splat(s);
    let i = 0;
    for (; i + 4 <= dim; i += 4) v128.store(at(orow, i), f32x4.mul(f32x4.mul(v128.load(at(xr, i)), vs), v128.load(at(w, i))));
    for (; i < dim; i++) store<f32>(at(orow, i), load<f32>(at(xr, i)) * s * load<f32>(at(w, i)));
  }
}

/** RMSNorm backward for the input, rows [r0, r1): gx += s·(g⊙w) − x·s³·mean(g⊙w⊙x) (= with overwrite). */
export function rmsnormBackwardXRange(x: usize, w: usize, rstd: usize, g: usize, gx: usize, dim: i32, overwrite: bool, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const o = <usize>r * <usize>dim;
    const xr = at(x, o), gr = at(g, o), gxr = at(gx, o);
    if (overwrite) memory.fill(gxr, 0, <usize>dim << 2);
    const s = load<f32>(at(rstd, r));
    let acc = f32x4.splat(0);
    let i = 0;
    for (; i + 4 <= dim; i += 4) acc = madd(f32x4.mul(v128.load(at(gr, i)), v128.load(at(w, i))), v128.load(at(xr, i)), acc);
    let d = hsum(acc);
    for (; i < dim; i++) d += load<f32>(at(gr, i)) * load<f32>(at(w, i)) * load<f32>(at(xr, i));
    const c = (d / <f32>dim) * s * s * s;
    const vs = f32x4.splat(s), vc = f32x4.splat(c);
    i = 0;
    for (; i + 4 <= dim; i += 4) {
      const gw = f32x4.mul(v128.load(at(gr, i)), v128.load(at(w, i)));
      v128.store(at(gxr, i), f32x4.sub(madd(gw, vs, v128.load(at(gxr, i))), f32x4.mul(v128.load(at(xr, i)), vc)));
    }
    for (; i < dim; i++) store<f32>(at(gxr, i), load<f32>(at(gxr, i)) + load<f32>(at(gr, i)) * load<f32>(at(w, i)) * s - load<f32>(at(xr, i)) * c);
  }
}

/** RMSNorm backward for the weight, columns [c0, c1): gw[i] += Σ_r g[r, i]·x[r, i]·rstd[r]. */
export function rmsnormBackwardWRange(x: usize, rstd: usize, g: usize, gw: usize, rows: i32, dim: i32, c0: i32, c1: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = <usize>r * <usize>dim;
    const xr = at(x, o), gr = at(g, o);
    const s = load<f32>(at(rstd, r));
    const vs = f32x4.splat(s);
    let i = c0;
    for (; i + 4 <= c1; i += 4) v128.store(at(gw, i), madd(f32x4.mul(v128.load(at(gr, i)), v128.load(at(xr, i))), vs, v128.load(at(gw, i))));
    for (; i < c1; i++) store<f32>(at(gw, i), load<f32>(at(gw, i)) + load<f32>(at(gr, i)) * load<f32>(at(xr, i)) * s);
  }
}

@inline function rowMax(x: usize, n: i32): f32 {
  let m0 = f32x4.splat(-Infinity), m1 = m0;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    m0 = f32x4.max(m0, v128.load(at(x, i)));
    m1 = f32x4.max(m1, v128.load(at(x, i), 16));
  }
  for (; i + 4 <= n; i += 4) m0 = f32x4.max(m0, v128.load(at(x, i)));
  const m = f32x4.max(m0, m1);
  let best = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  for (; i < n; i++) best = max(best, load<f32>(at(x, i)));
  return best;
}

/** Σ exp(x[i] − shift) over n floats; with dst ≠ 0 the exponentials are also stored there. */
@inline function sumExp(x: usize, n: i32, shift: f32, dst: usize): f32 {
  const vs = f32x4.splat(shift);
  let s0 = f32x4.splat(0), s1 = s0;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const e0 = exp4(f32x4.sub(v128.load(at(x, i)), vs));
    const e1 = exp4(f32x4.sub(v128.load(at(x, i), 16), vs));
    if (dst != 0) {
      v128.store(at(dst, i), e0);
      v128.store(at(dst, i), e1, 16);
    }
    s0 = f32x4.add(s0, e0);
    s1 = f32x4.add(s1, e1);
  }
  let s = hsum(f32x4.add(s0, s1));
  for (; i < n; i++) {
    const e = exp1(load<f32>(at(x, i)) - shift);
    if (dst != 0) store<f32>(at(dst, i), e);
    s += e;
  }
  return s;
}

/** lse[r] = log Σ_i exp(x[r, i]) for rows [r0, r1) of x [rows, n] (−inf for a row of −inf). */
export function logSumExpRange(x: usize, lse: usize, n: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const xr = at(x, <usize>r * <usize>n);
    const m = rowMax(xr, n);
    if (m == -Infinity) {
      store<f32>(at(lse, r), -Infinity);
      continue;
    }
    store<f32>(at(lse, r), <f32>(<f64>m + Math.log(<f64>sumExp(xr, n, m, 0))));
  }
}

/**
 * The gradient of −log softmax(x[r])[target[r]] times weight[r], for rows [r0, r1):
 * gx[r, i] += weight[r]·(exp(x[r, i] − lse[r]) − [i = target[r]]). Rows of weight 0 are skipped.
 */
export function softmaxXentBackwardRange(x: usize, lse: usize, target: usize, weight: usize, gx: usize, n: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const wr = load<f32>(at(weight, r));
    if (wr == 0) continue;
    const o = <usize>r * <usize>n;
    const xr = at(x, o), gr = at(gx, o);
    const vl = f32x4.splat(load<f32>(at(lse, r)));
    const vw = f32x4.splat(wr);
    let i = 0;
    for (; i + 4 <= n; i += 4) v128.store(at(gr, i), madd(vw, exp4(f32x4.sub(v128.load(at(xr, i)), vl)), v128.load(at(gr, i))));
    const l = load<f32>(at(lse, r));
    for (; i < n; i++) store<f32>(at(gr, i), load<f32>(at(gr, i)) + wr * exp1(load<f32>(at(xr, i)) - l));
    const t = load<i32>(at(target, r));
    store<f32>(at(gr, t), load<f32>(at(gr, t)) - wr);
  }
}

/**
 * In-place softmax of rows [r0, r1) of p [rows, n]. With `period` > 0 the rows are causal attention
 * scores: row r sees its first (r mod period) + offset + 1 entries and the rest become exactly 0.
 */
export function softmaxRange(p: usize, n: i32, period: i32, offset: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const row = at(p, <usize>r * <usize>n);
    const visible = period > 0 ? min(n, r % period + offset + 1) : n;
    const m = rowMax(row, visible);
    if (m == -Infinity) {
      memory.fill(row, 0, <usize>n << 2);
      continue;
    }
    const inv: f32 = 1 / sumExp(row, visible, m, row);
    const vi = f32x4.splat(inv);
    let i = 0;
    for (; i + 4 <= visible; i += 4) v128.store(at(row, i), f32x4.mul(v128.load(at(row, i)), vi));
    for (; i < visible; i++) store<f32>(at(row, i), load<f32>(at(row, i)) * inv);
    if (visible < n) memory.fill(at(row, visible), 0, <usize>(n - visible) << 2);
  }
}

/**
 * Softmax backward in place, rows [r0, r1): d[r] = p[r] ⊙ (d[r] − p[r]·d[r]), over the same visible
 * prefix as softmaxRange (the tail, where p is 0, becomes 0).
 */
export function softmaxBackwardRange(p: usize, d: usize, n: i32, period: i32, offset: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const o = <usize>r * <usize>n;
    const pr = at(p, o), dr = at(d, o);
    const visible = period > 0 ? min(n, r % period + offset + 1) : n;
    const vd = f32x4.splat(dot(pr, dr, visible));
    const sd = f32x4.extract_lane(vd, 0);
    let i = 0;
    for (; i + 4 <= visible; i += 4) v128.store(at(dr, i), f32x4.mul(v128.load(at(pr, i)), f32x4.sub(v128.load(at(dr, i)), vd)));
    for (; i < visible; i++) store<f32>(at(dr, i), load<f32>(at(pr, i)) * (load<f32>(at(dr, i)) - sd));
    if (visible < n) memory.fill(at(dr, visible), 0, <usize>(n - visible) << 2);
  }
}

/**
 * Rows [r0, r1) of a strided copy: dst[r·dstStride + i] = src[r·srcStride + i] (or +=, with
 * accumulate) for i < width. The shape ops (split, concat, expand and their gradients) are this.
 */
export function copyRowsRange(src: usize, dst: usize, width: i32, srcStride: i32, dstStride: i32, accumulate: bool, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const s = at(src, <usize>r * <usize>srcStride), d = at(dst, <usize>r * <usize>dstStride);
    if (!accumulate) {
      memory.copy(d, s, <usize>width << 2);
      continue;
    }
    let i = 0;
    for (; i + 8 <= width; i += 8) {
      v128.store(at(d, i), f32x4.add(v128.load(at(d, i)), v128.load(at(s, i))));
      v128.store(at(d, i), f32x4.add(v128.load(at(d, i), 16), v128.load(at(s, i), 16)), 16);
    }
    for (; i + 4 <= width; i += 4) v128.store(at(d, i), f32x4.add(v128.load(at(d, i)), v128.load(at(s, i))));
    for (; i < width; i++) store<f32>(at(d, i), load<f32>(at(d, i)) + load<f32>(at(s, i)));
  }
}

/** Σ x[i]² over [i0, i1), in float32 lanes per block of 1024, the blocks summed in float64. */
export function sumSquaresRange(x: usize, i0: i32, i1: i32): f64 {
  let total: f64 = 0;
  for (let b = i0; b < i1; b += 1024) {
    const e = min(i1, b + 1024);
    total += <f64>dot(at(x, b), at(x, b), e - b);
  }
  return total;
}

/** dst[m] (+)= weight[m] · src[index[m]] for rows m in [m0, m1), width floats each (weight 0: none). */
export function gatherRowsRange(src: usize, index: usize, weight: usize, dst: usize, width: i32, accumulate: bool, m0: i32, m1: i32): void {
  for (let m = m0; m < m1; m++) {
    const s = at(src, <usize>load<i32>(at(index, m)) * <usize>width), d = at(dst, <usize>m * <usize>width);
    const w: f32 = weight != 0 ? load<f32>(at(weight, m)) : 1;
    if (!accumulate && weight == 0) {
      memory.copy(d, s, <usize>width << 2);
      continue;
    }
    const vw = f32x4.splat(w);
    let i = 0;
    if (accumulate) {
      for (; i + 4 <= width; i += 4) v128.store(at(d, i), madd(vw, v128.load(at(s, i)), v128.load(at(d, i))));
      for (; i < width; i++) store<f32>(at(d, i), load<f32>(at(d, i)) + w * load<f32>(at(s, i)));
    } else {
      for (; i + 4 <= width; i += 4) v128.store(at(d, i), f32x4.mul(vw, v128.load(at(s, i))));
      for (; i < width; i++) store<f32>(at(d, i), w * load<f32>(at(s, i)));
    }
  }
}

/**
 * The scatter-add dst[index[m]] += weight[m] · src[m], done per destination so that threads never
 * share a row: dst[n] += Σ weight[m] · src[m] over m = order[starts[n] .. starts[n + 1]), for rows
 * n in [n0, n1). (order lists the sources grouped by destination, in source order.)
 */
export function scatterRowsRange(src: usize, order: usize, starts: usize, weight: usize, dst: usize, width: i32, n0: i32, n1: i32): void {
  for (let n = n0; n < n1; n++) {
    const d = at(dst, <usize>n * <usize>width);
    const end = load<i32>(at(starts, n + 1));
    for (let j = load<i32>(at(starts, n)); j < end; j++) {
      const m = load<i32>(at(order, j));
      const s = at(src, <usize>m * <usize>width);
      const w: f32 = weight != 0 ? load<f32>(at(weight, m)) : 1;
      const vw = f32x4.splat(w);
      let i = 0;
      for (; i + 4 <= width; i += 4) v128.store(at(d, i), madd(vw, v128.load(at(s, i)), v128.load(at(d, i))));
      for (; i < width; i++) store<f32>(at(d, i), load<f32>(at(d, i)) + w * load<f32>(at(s, i)));
    }
  }
}

/** out[m] += a[index[m]] · b[m] for rows m in [m0, m1) (the gradient of a gather's weights). */
export function rowDotsRange(a: usize, index: usize, b: usize, out: usize, width: i32, m0: i32, m1: i32): void {
  for (let m = m0; m < m1; m++) {
    const ar = at(a, <usize>load<i32>(at(index, m)) * <usize>width);
    store<f32>(at(out, m), load<f32>(at(out, m)) + dot(ar, at(b, <usize>m * <usize>width), width));
  }
}
