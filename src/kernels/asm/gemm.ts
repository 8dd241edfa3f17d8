// GEMM: C = alpha·op(A)·op(B) + beta·C in float32 (AssemblyScript). A packed Goto/BLIS loop nest
// for large products, matrix-vector paths for few columns, and no-packing paths for few rows of C
// (decoding). One call computes one band of C on one thread; jobs.ts cuts a product into bands.
import { at, hsum, madd } from './simd';

// Register block of the GEMM micro-kernel: 6 rows × 8 columns = 12 f32x4 accumulators. With 2 B
// vectors and a broadcast that is 15 xmm registers, all V8 allocates; per 12 multiply-adds it loads
// 2 vectors and 6 broadcasts, and runs at 99% of the FMA peak from L1 (2×16, the block this replaced,
// ran at 91%). Taller or wider blocks spill and run at half the speed. Without relaxed SIMD a
// multiply-add is a multiply and an add that needs one more register, so that build takes 4 × 8.
export const MR: i32 = ASC_FEATURE_RELAXED_SIMD ? 6 : 4;
const NR: i32 = 8;
// A KC×NR sliver of packed B (8 KiB) stays in L1 while all MR-row slivers of the MC×KC block of
// packed A (192 KiB, in L2) stream past it. B is packed one sliver at a time, right before use, rather
// than as a whole panel up front: it then goes from memory straight into L1 once per A block, which
// is what matters when m is small and B is most of the traffic. MC is a multiple of MR.
const KC: i32 = 256;
export const MC: i32 = 192;
// Chunks of the vector path (matrix-vector products): the vector and the outputs it accumulates.
const KV: i32 = 2048;
export const YV: i32 = 4096;
// Up to this many columns of C (with more rows), each is a matrix-vector product that streams the
// matrix in long contiguous runs; the register block would spend half its work or more on padding.
export const VEC_MAX: i32 = 2;
// Up to this many rows of C, the small-m paths (decoding a few tokens): no packing of B, which would
// cost as much as the product itself. One or two rows with B row-major stream rows of B into outputs
// that stay in cache (axpyRows, axpyRows2); three or four rows take a 4×8 register block that reads
// B in place (block4x8); with B stored transposed, rows of B are dot products (dot2, dot4).
export const SMALL_M: i32 = 8;
// Rows of k per pass of the 4×8 register block: 256 rows of 64 bytes of B stay in L1 between the two
// halves of each cache line.
const KB: i32 = 256;

const A_PACK: usize = 0;
const B_PACK: usize = A_PACK + <usize>(MC * KC) * 4;
const TILE: usize = B_PACK + <usize>(KC * NR * 2) * 4;
const PACKED_END: usize = TILE + <usize>(MR * NR) * 4;
const VEC_X: usize = 0;
const VEC_Y: usize = <usize>KV * 4;
const VEC_END: usize = VEC_Y + <usize>YV * 4;
// Small-m paths: up to four gathered rows of op(A) (KV apart), then two rows of outputs (YS bytes
// apart: the 64 bytes of padding keep the two rows from aliasing in the L1 by their low 12 bits), then
// the tag of the job whose split-k partial sums the outputs hold.
const SX: usize = 0;
const XS: usize = <usize>KV * 4;
export const SY: usize = SX + 4 * XS;
export const YS: usize = <usize>(YV + 16) * 4;
export const STAG: usize = SY + 2 * YS;
const SMALL_END: usize = STAG + 64;

/** Bytes of scratch space one thread needs (a 64-byte aligned block the caller allocates). */
export function scratchBytes(): usize {
  return max(max(PACKED_END, VEC_END), SMALL_END);
}

/** c[0..4) = acc + beta·c (beta = 0 ignores c). */
@inline function storeAcc(c: usize, acc: v128, beta: f32): void {
  if (beta == 0) v128.store(c, acc);
  else if (beta == 1) v128.store(c, f32x4.add(v128.load(c), acc));
  else v128.store(c, madd(v128.load(c), f32x4.splat(beta), acc));
}

/** C = beta·C over an m×n block; beta = 0 writes zeros so that NaN in the old C does not survive. */
function scaleC(m: i32, n: i32, c: usize, ldc: i32, beta: f32): void {
  if (beta == 1) return;
  const vb = f32x4.splat(beta);
  for (let i = 0; i < m; i++) {
    const row = at(c, <usize>i * <usize>ldc);
    if (beta == 0) {
      memory.fill(row, 0, <usize>n << 2);
      continue;
    }
    let j = 0;
    for (; j + 4 <= n; j += 4) v128.store(at(row, j), f32x4.mul(v128.load(at(row, j)), vb));
    for (; j < n; j++) store<f32>(at(row, j), load<f32>(at(row, j)) * beta);
  }
}

// ---------------------------------------------------------------------------------------------
// Packed GEMM (Goto/BLIS loop nest)

/**
 * Rows in the sliver of an mc-row block that starts at row i0: MR, except that a block of 6j + 2 rows
 * ends in two slivers of 4 (for micro4) rather than one of 6 and one of 2 that costs as much as 6.
 */
@inline function sliverRows(mc: i32, i0: i32): i32 {
  return mc - i0 == 8 && mc % MR == 2 ? 4 : min(MR, mc - i0);
}

/**
 * Packs rows [0, mc) × columns [0, kc) of op(A) (already offset to the block) times alpha into slivers
 * of sliverRows() rows, k-major: sliver s, starting at row i0, holds op(A)[i0 + r][p] at
 * (s·kc + p)·MR + r. Rows past the sliver's height are zero.
 */
function packA(mc: i32, kc: i32, a: usize, lda: i32, transA: bool, alpha: f32, dst: usize): void {
  const va = f32x4.splat(alpha);
  let out = dst;
  for (let i0 = 0, rows = 0; i0 < mc; i0 += rows, out += <usize>(kc * MR) << 2) {
    rows = sliverRows(mc, i0);
    if (rows == 4 && MR == 4 && !transA) {
      const r0 = at(a, <usize>i0 * <usize>lda);
      const step = <usize>lda << 2;
      const r1 = r0 + step, r2 = r1 + step, r3 = r2 + step;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const po = <usize>p << 2;
        const x0 = f32x4.mul(v128.load(r0 + po), va);
        const x1 = f32x4.mul(v128.load(r1 + po), va);
        const x2 = f32x4.mul(v128.load(r2 + po), va);
        const x3 = f32x4.mul(v128.load(r3 + po), va);
        const t0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5);
        const t1 = f32x4.shuffle(x0, x1, 2, 6, 3, 7);
        const t2 = f32x4.shuffle(x2, x3, 0, 4, 1, 5);
        const t3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7);
        const o = at(out, p * 4);
        v128.store(o, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
        v128.store(o, f32x4.shuffle(t0, t2, 2, 3, 6, 7), 16);
        v128.store(o, f32x4.shuffle(t1, t3, 0, 1, 4, 5), 32);
        v128.store(o, f32x4.shuffle(t1, t3, 2, 3, 6, 7), 48);
      }
      for (; p < kc; p++) {
        const po = <usize>p << 2;
        const o = at(out, p * 4);
        store<f32>(o, load<f32>(r0 + po) * alpha);
        store<f32>(o, load<f32>(r1 + po) * alpha, 4);
        store<f32>(o, load<f32>(r2 + po) * alpha, 8);
        store<f32>(o, load<f32>(r3 + po) * alpha, 12);
      }
    } else if (rows == 6 && MR == 6 && !transA) {
      // Four values of k from each of the six rows: a 4×4 transpose for rows 0-3, pairs for 4-5.
      const r0 = at(a, <usize>i0 * <usize>lda);
      const step = <usize>lda << 2;
      const r1 = r0 + step, r2 = r1 + step, r3 = r2 + step, r4 = r3 + step, r5 = r4 + step;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const po = <usize>p << 2;
        const x0 = f32x4.mul(v128.load(r0 + po), va);
        const x1 = f32x4.mul(v128.load(r1 + po), va);
        const x2 = f32x4.mul(v128.load(r2 + po), va);
        const x3 = f32x4.mul(v128.load(r3 + po), va);
        const x4 = f32x4.mul(v128.load(r4 + po), va);
        const x5 = f32x4.mul(v128.load(r5 + po), va);
        const t0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5);
        const t1 = f32x4.shuffle(x0, x1, 2, 6, 3, 7);
        const t2 = f32x4.shuffle(x2, x3, 0, 4, 1, 5);
        const t3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7);
        const u0 = f32x4.shuffle(x4, x5, 0, 4, 1, 5);
        const u1 = f32x4.shuffle(x4, x5, 2, 6, 3, 7);
        const o = at(out, p * MR);
        // p: rows 0-3 then rows 4-5, 24 bytes per p.
        v128.store(o, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
        v128.store64_lane(o + 16, u0, 0);
        v128.store(o + 24, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
        v128.store64_lane(o + 40, u0, 1);
        v128.store(o + 48, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
        v128.store64_lane(o + 64, u1, 0);
        v128.store(o + 72, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
        v128.store64_lane(o + 88, u1, 1);
      }
      for (; p < kc; p++) {
        const po = <usize>p << 2;
        const o = at(out, p * MR);
        store<f32>(o, load<f32>(r0 + po) * alpha);
        store<f32>(o, load<f32>(r1 + po) * alpha, 4);
        store<f32>(o, load<f32>(r2 + po) * alpha, 8);
        store<f32>(o, load<f32>(r3 + po) * alpha, 12);
        store<f32>(o, load<f32>(r4 + po) * alpha, 16);
        store<f32>(o, load<f32>(r5 + po) * alpha, 20);
      }
    } else if (rows == MR) {
      // op(A) rows are columns of A: MR consecutive values of each row of A.
      for (let p = 0; p < kc; p++) {
        const src = at(a, <usize>p * <usize>lda + <usize>i0);
        const o = at(out, p * MR);
        v128.store(o, f32x4.mul(v128.load(src), va));
        if (MR == 6) {
          store<f32>(o, load<f32>(src, 16) * alpha, 16);
          store<f32>(o, load<f32>(src, 20) * alpha, 20);
        }
      }
    } else {
      for (let p = 0; p < kc; p++) {
        const o = at(out, p * MR);
        for (let r = 0; r < MR; r++) {
          let v: f32 = 0;
          if (r < rows) {
            const e = transA ? <usize>p * <usize>lda + <usize>(i0 + r) : <usize>(i0 + r) * <usize>lda + <usize>p;
            v = load<f32>(at(a, e)) * alpha;
          }
          store<f32>(at(o, r), v);
        }
      }
    }
  }
}

/**
 * Packs rows [0, kc) × columns [0, w) of op(B), w ≤ 2·NR, into two k-major slivers (the second at
 * out + kc·NR floats): op(B)[p][q] at p·NR + q of sliver q / NR. Columns past w are zero. Two slivers
 * at once read whole 64-byte lines of a row-major B; one sliver would take half of each line and
 * come back for the other half.
 */
function packB(kc: i32, w: i32, b: usize, ldb: i32, transB: bool, out: usize): void {
  const out1 = at(out, kc * NR);
  if (w == 2 * NR && !transB) {
    for (let p = 0; p < kc; p++) {
      const src = at(b, <usize>p * <usize>ldb);
      const o = at(out, p * NR);
      const o1 = at(out1, p * NR);
      v128.store(o, v128.load(src));
      v128.store(o, v128.load(src, 16), 16);
      v128.store(o1, v128.load(src, 32));
      v128.store(o1, v128.load(src, 48), 16);
    }
  } else if (w == 2 * NR) {
    // op(B) columns are rows of B here: transpose 4×4 blocks of them into the slivers.
    for (let g = 0; g < 2 * NR; g += 4) {
      const r0 = at(b, <usize>g * <usize>ldb);
      const r1 = at(r0, <usize>ldb);
      const r2 = at(r1, <usize>ldb);
      const r3 = at(r2, <usize>ldb);
      const base = g < NR ? at(out, g) : at(out1, g - NR);
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const x0 = v128.load(at(r0, p));
        const x1 = v128.load(at(r1, p));
        const x2 = v128.load(at(r2, p));
        const x3 = v128.load(at(r3, p));
        const t0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5);
        const t1 = f32x4.shuffle(x0, x1, 2, 6, 3, 7);
        const t2 = f32x4.shuffle(x2, x3, 0, 4, 1, 5);
        const t3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7);
        const o = at(base, p * NR);
        v128.store(o, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
        v128.store(o, f32x4.shuffle(t0, t2, 2, 3, 6, 7), NR * 4);
        v128.store(o, f32x4.shuffle(t1, t3, 0, 1, 4, 5), NR * 8);
        v128.store(o, f32x4.shuffle(t1, t3, 2, 3, 6, 7), NR * 12);
      }
      for (; p < kc; p++) {
        const o = at(base, p * NR);
        store<f32>(o, load<f32>(at(r0, p)));
        store<f32>(o, load<f32>(at(r1, p)), 4);
        store<f32>(o, load<f32>(at(r2, p)), 8);
        store<f32>(o, load<f32>(at(r3, p)), 12);
      }
    }
  } else {
    const colStep: usize = transB ? <usize>ldb : 1;
    const rowStep: usize = transB ? 1 : <usize>ldb;
    for (let p = 0; p < kc; p++) {
      const src = at(b, <usize>p * rowStep);
      for (let q = 0; q < 2 * NR; q++) {
        const v: f32 = q < w ? load<f32>(at(src, <usize>q * colStep)) : 0;
        store<f32>(q < NR ? at(out, p * NR + q) : at(out1, p * NR + q - NR), v);
      }
    }
  }
}

/**
 * The 6×8 register block: tile[0..6)[0..8) (row-major, NR wide) = the sum of kc rank-1 updates of a
 * packed A sliver and a packed B sliver. It writes a tile rather than C: beta and the C pointers
 * would be live across the loop, and one more xmm register than the 15 in use spills accumulators.
 */
function micro(kc: i32, ap: usize, bp: usize, tile: usize): void {
  let c00 = f32x4.splat(0);
  let c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  let c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  let a = ap;
  let b = bp;
  const end = at(ap, kc * MR);
  while (a < end) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let s = v128.load32_splat(a);
    c00 = madd(s, b0, c00);
    c01 = madd(s, b1, c01);
    s = v128.load32_splat(a, 4);
    c10 = madd(s, b0, c10);
    c11 = madd(s, b1, c11);
    s = v128.load32_splat(a, 8);
    c20 = madd(s, b0, c20);
    c21 = madd(s, b1, c21);
    s = v128.load32_splat(a, 12);
    c30 = madd(s, b0, c30);
    c31 = madd(s, b1, c31);
    s = v128.load32_splat(a, 16);
    c40 = madd(s, b0, c40);
    c41 = madd(s, b1, c41);
    s = v128.load32_splat(a, 20);
    c50 = madd(s, b0, c50);
    c51 = madd(s, b1, c51);
    a += MR * 4;
    b += NR * 4;
  }
  v128.store(tile, c00);
  v128.store(tile, c01, 16);
  v128.store(tile, c10, 32);
  v128.store(tile, c11, 48);
  v128.store(tile, c20, 64);
  v128.store(tile, c21, 80);
  v128.store(tile, c30, 96);
  v128.store(tile, c31, 112);
  v128.store(tile, c40, 128);
  v128.store(tile, c41, 144);
  v128.store(tile, c50, 160);
  v128.store(tile, c51, 176);
}

/** The first four rows of the same: edge slivers of four rows or fewer, and the whole block where MR is 4. */
function micro4(kc: i32, ap: usize, bp: usize, tile: usize): void {
  let c00 = f32x4.splat(0);
  let c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  let a = ap;
  let b = bp;
  const end = at(ap, kc * MR);
  while (a < end) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let s = v128.load32_splat(a);
    c00 = madd(s, b0, c00);
    c01 = madd(s, b1, c01);
    s = v128.load32_splat(a, 4);
    c10 = madd(s, b0, c10);
    c11 = madd(s, b1, c11);
    s = v128.load32_splat(a, 8);
    c20 = madd(s, b0, c20);
    c21 = madd(s, b1, c21);
    s = v128.load32_splat(a, 12);
    c30 = madd(s, b0, c30);
    c31 = madd(s, b1, c31);
    a += MR * 4;
    b += NR * 4;
  }
  v128.store(tile, c00);
  v128.store(tile, c01, 16);
  v128.store(tile, c10, 32);
  v128.store(tile, c11, 48);
  v128.store(tile, c20, 64);
  v128.store(tile, c21, 80);
  v128.store(tile, c30, 96);
  v128.store(tile, c31, 112);
}

/** C[0..MR)[0..NR) = tile + beta·C (beta = 0 ignores C). */
function storeTile(tile: usize, c: usize, ldc: i32, beta: f32): void {
  const cs = <usize>ldc << 2;
  let o = c;
  for (let i = 0; i < MR; i++) {
    const t = tile + <usize>(i * NR * 4);
    storeAcc(o, v128.load(t), beta);
    storeAcc(o + 16, v128.load(t, 16), beta);
    o += cs;
  }
}

/** Edge tiles: the full block goes to a scratch tile, then its mr×nr corner into C. */
function microEdge(kc: i32, ap: usize, bp: usize, c: usize, ldc: i32, beta: f32, mr: i32, nr: i32, tile: usize): void {
  if (mr <= 4) micro4(kc, ap, bp, tile);
  else micro(kc, ap, bp, tile);
  for (let i = 0; i < mr; i++) {
    const row = at(c, <usize>i * <usize>ldc);
    const t = at(tile, i * NR);
    for (let j = 0; j < nr; j++) {
      const v = load<f32>(at(t, j));
      const old: f32 = beta == 0 ? 0 : load<f32>(at(row, j)) * beta;
      store<f32>(at(row, j), v + old);
    }
  }
}

function gemmPacked(
  m: i32, n: i32, k: i32, a: usize, lda: i32, transA: bool, b: usize, ldb: i32, transB: bool,
  c: usize, ldc: i32, alpha: f32, beta: f32, scratch: usize,
): void {
  const ap = scratch + A_PACK;
  const bp = scratch + B_PACK;
  const tile = scratch + TILE;
  for (let pc = 0; pc < k; pc += KC) {
    const kc = min(KC, k - pc);
    // Only the first pass over k applies beta; the later ones accumulate onto it.
    const bk: f32 = pc == 0 ? beta : 1;
    for (let ic = 0; ic < m; ic += MC) {
      const mc = min(MC, m - ic);
      const asrc = transA ? <usize>pc * <usize>lda + <usize>ic : <usize>ic * <usize>lda + <usize>pc;
      packA(mc, kc, at(a, asrc), lda, transA, alpha, ap);
      for (let jp = 0; jp < n; jp += 2 * NR) {
        const bsrc = transB ? <usize>jp * <usize>ldb + <usize>pc : <usize>pc * <usize>ldb + <usize>jp;
        const w = min(2 * NR, n - jp);
        packB(kc, w, at(b, bsrc), ldb, transB, bp);
        // Both slivers against each A sliver in turn: the two halves of each 64-byte line of C are
        // written back to back, while the line is still in L1.
        let as = ap;
        for (let ir = 0, mr = 0; ir < mc; ir += mr, as += <usize>(kc * MR) << 2) {
          mr = sliverRows(mc, ir);
          for (let jr = 0; jr < w; jr += NR) {
            const nr = min(NR, w - jr);
            const bs = at(bp, jr * kc);
            const cp = at(c, <usize>(ic + ir) * <usize>ldc + <usize>(jp + jr));
            if (mr == MR && nr == NR) {
              if (MR == 6) micro(kc, as, bs, tile);
              else micro4(kc, as, bs, tile);
              storeTile(tile, cp, ldc, bk);
            } else microEdge(kc, as, bs, cp, ldc, bk, mr, nr, tile);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Matrix-vector products (few rows or few columns of C)

/**
 * y[0..len) += Σ_p x[p] · M[p·ld + j], streaming kc rows of M four at a time, eight columns per step:
 * four consecutive rows are one contiguous run of memory, which the prefetchers follow; more rows at
 * once run out of registers and streams.
 */
function axpyRows(kc: i32, x: usize, mat: usize, ld: i32, y: usize, len: i32): void {
  const step = <usize>ld << 2;
  const len8 = len & ~7;
  let p = 0;
  for (; p + 4 <= kc; p += 4) {
    const x0 = v128.load32_splat(at(x, p));
    const x1 = v128.load32_splat(at(x, p + 1));
    const x2 = v128.load32_splat(at(x, p + 2));
    const x3 = v128.load32_splat(at(x, p + 3));
    let r0 = at(mat, <usize>p * <usize>ld);
    let r1 = r0 + step, r2 = r1 + step, r3 = r2 + step;
    let o = y;
    const end = at(y, len8);
    while (o < end) {
      let u = v128.load(o);
      let w = v128.load(o, 16);
      u = madd(x0, v128.load(r0), u);
      w = madd(x0, v128.load(r0, 16), w);
      u = madd(x1, v128.load(r1), u);
      w = madd(x1, v128.load(r1, 16), w);
      u = madd(x2, v128.load(r2), u);
      w = madd(x2, v128.load(r2, 16), w);
      u = madd(x3, v128.load(r3), u);
      w = madd(x3, v128.load(r3, 16), w);
      v128.store(o, u);
      v128.store(o, w, 16);
      o += 32;
      r0 += 32;
      r1 += 32;
      r2 += 32;
      r3 += 32;
    }
    for (let j = len8; j < len; j++) {
      const m0 = at(mat, <usize>p * <usize>ld + <usize>j);
      let s = load<f32>(at(y, j));
      s += load<f32>(at(x, p)) * load<f32>(m0);
      s += load<f32>(at(x, p + 1)) * load<f32>(m0 + step);
      s += load<f32>(at(x, p + 2)) * load<f32>(m0 + 2 * step);
      s += load<f32>(at(x, p + 3)) * load<f32>(m0 + 3 * step);
      store<f32>(at(y, j), s);
    }
  }
  for (; p < kc; p++) {
    const s = load<f32>(at(x, p));
    const xs = f32x4.splat(s);
    const row = at(mat, <usize>p * <usize>ld);
    let j = 0;
    for (; j + 4 <= len; j += 4) v128.store(at(y, j), madd(xs, v128.load(at(row, j)), v128.load(at(y, j))));
    for (; j < len; j++) store<f32>(at(y, j), load<f32>(at(y, j)) + s * load<f32>(at(row, j)));
  }
}

/**
 * The same for two vectors at once: y0 += Σ_p x0[p]·M[p, :] and y1 += Σ_p x1[p]·M[p, :] (x1 = x0 +
 * xs bytes, y1 = y0 + ys bytes), so that each element of M, loaded once, feeds two multiply-adds.
 */
function axpyRows2(kc: i32, x: usize, xs: usize, mat: usize, ld: i32, y: usize, ys: usize, len: i32): void {
  const step = <usize>ld << 2;
  const len4 = len & ~3;
  let p = 0;
  for (; p + 4 <= kc; p += 4) {
    const xp = at(x, p);
    const a0 = v128.load32_splat(xp), a1 = v128.load32_splat(xp, 4);
    const a2 = v128.load32_splat(xp, 8), a3 = v128.load32_splat(xp, 12);
    const zp = xp + xs;
    const c0 = v128.load32_splat(zp), c1 = v128.load32_splat(zp, 4);
    const c2 = v128.load32_splat(zp, 8), c3 = v128.load32_splat(zp, 12);
    let r0 = at(mat, <usize>p * <usize>ld);
    let r1 = r0 + step, r2 = r1 + step, r3 = r2 + step;
    let o = y;
    const end = at(y, len4);
    while (o < end) {
      const b0 = v128.load(r0), b1 = v128.load(r1), b2 = v128.load(r2), b3 = v128.load(r3);
      let u = v128.load(o);
      let w = v128.load(o + ys);
      u = madd(a0, b0, u);
      w = madd(c0, b0, w);
      u = madd(a1, b1, u);
      w = madd(c1, b1, w);
      u = madd(a2, b2, u);
      w = madd(c2, b2, w);
      u = madd(a3, b3, u);
      w = madd(c3, b3, w);
      v128.store(o, u);
      v128.store(o + ys, w);
      o += 16;
      r0 += 16;
      r1 += 16;
      r2 += 16;
      r3 += 16;
    }
    for (let j = len4; j < len; j++) {
      const m0 = at(mat, <usize>p * <usize>ld + <usize>j);
      const v0 = load<f32>(m0), v1 = load<f32>(m0 + step), v2 = load<f32>(m0 + 2 * step), v3 = load<f32>(m0 + 3 * step);
      const o0 = at(y, j), o1 = o0 + ys;
      store<f32>(o0, load<f32>(o0) + load<f32>(xp) * v0 + load<f32>(xp, 4) * v1 + load<f32>(xp, 8) * v2 + load<f32>(xp, 12) * v3);
      store<f32>(o1, load<f32>(o1) + load<f32>(zp) * v0 + load<f32>(zp, 4) * v1 + load<f32>(zp, 8) * v2 + load<f32>(zp, 12) * v3);
    }
  }
  for (; p < kc; p++) {
    const s = load<f32>(at(x, p));
    const t = load<f32>(at(x, p) + xs);
    const row = at(mat, <usize>p * <usize>ld);
    for (let j = 0; j < len; j++) {
      const v = load<f32>(at(row, j));
      const o0 = at(y, j);
      store<f32>(o0, load<f32>(o0) + s * v);
      store<f32>(o0 + ys, load<f32>(o0 + ys) + t * v);
    }
  }
}

@inline function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(f32x4.shuffle(a, b, 0, 4, 1, 5), f32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(f32x4.shuffle(c, d, 0, 4, 1, 5), f32x4.shuffle(c, d, 2, 6, 3, 7));
  return f32x4.add(f32x4.shuffle(ab, cd, 0, 1, 4, 5), f32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

/**
 * y[r] += Σ_p x[p] · M[r·ld + p] for r in [0, rows): dot products along contiguous rows of M, one row
 * at a time with four accumulators. A single sequential stream is what the prefetchers follow best:
 * interleaving four rows (each loaded value then serving more accumulators) measured 40% slower.
 */
function dotRows(kc: i32, x: usize, mat: usize, ld: i32, y: usize, rows: i32): void {
  const k16 = kc & ~15;
  const xe = at(x, k16);
  for (let r = 0; r < rows; r++) {
    let row = at(mat, <usize>r * <usize>ld);
    let a0 = f32x4.splat(0);
    let a1 = a0, a2 = a0, a3 = a0;
    let xp = x;
    while (xp < xe) {
      a0 = madd(v128.load(xp), v128.load(row), a0);
      a1 = madd(v128.load(xp, 16), v128.load(row, 16), a1);
      a2 = madd(v128.load(xp, 32), v128.load(row, 32), a2);
      a3 = madd(v128.load(xp, 48), v128.load(row, 48), a3);
      xp += 64;
      row += 64;
    }
    let p = k16;
    for (; p + 4 <= kc; p += 4) {
      a0 = madd(v128.load(xp), v128.load(row), a0);
      xp += 16;
      row += 16;
    }
    let t = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
    for (; p < kc; p++) {
      t += load<f32>(xp) * load<f32>(row);
      xp += 4;
      row += 4;
    }
    store<f32>(at(y, r), load<f32>(at(y, r)) + t);
  }
}

/** out[i·stride] = y[i] + beta·out[i·stride]. */
export function storeVec(len: i32, y: usize, out: usize, stride: i32, beta: f32): void {
  if (stride == 1) {
    const vb = f32x4.splat(beta);
    let i = 0;
    if (beta == 0) for (; i + 4 <= len; i += 4) v128.store(at(out, i), v128.load(at(y, i)));
    else for (; i + 4 <= len; i += 4) v128.store(at(out, i), madd(v128.load(at(out, i)), vb, v128.load(at(y, i))));
    for (; i < len; i++) store<f32>(at(out, i), load<f32>(at(y, i)) + (beta == 0 ? 0 : beta * load<f32>(at(out, i))));
    return;
  }
  for (let i = 0; i < len; i++) {
    const o = at(out, <usize>i * <usize>stride);
    store<f32>(o, load<f32>(at(y, i)) + (beta == 0 ? 0 : beta * load<f32>(o)));
  }
}

/** x[0..kc) = alpha · v[p·stride]. */
function gather(kc: i32, v: usize, stride: i32, alpha: f32, x: usize): void {
  let p = 0;
  if (stride == 1) {
    const va = f32x4.splat(alpha);
    for (; p + 4 <= kc; p += 4) v128.store(at(x, p), f32x4.mul(v128.load(at(v, p)), va));
  }
  for (; p < kc; p++) store<f32>(at(x, p), load<f32>(at(v, <usize>p * <usize>stride)) * alpha);
}

/**
 * out (len values at stride outStride) = alpha · M·v + beta·out, where v has k values at vStride and
 * M is len×k with element (i, p) at mat + i·rowStep + p·kStep; one of the two steps is 1.
 */
function gemv(
  len: i32, k: i32, v: usize, vStride: i32, alpha: f32, mat: usize, ld: i32, rowsContiguous: bool,
  out: usize, outStride: i32, beta: f32, scratch: usize,
): void {
  const x = scratch + VEC_X;
  const y = scratch + VEC_Y;
  for (let i0 = 0; i0 < len; i0 += YV) {
    const ly = min(YV, len - i0);
    memory.fill(y, 0, <usize>ly << 2);
    for (let p0 = 0; p0 < k; p0 += KV) {
      const kc = min(KV, k - p0);
      gather(kc, at(v, <usize>p0 * <usize>vStride), vStride, alpha, x);
      if (rowsContiguous) dotRows(kc, x, at(mat, <usize>i0 * <usize>ld + <usize>p0), ld, y, ly);
      else axpyRows(kc, x, at(mat, <usize>p0 * <usize>ld + <usize>i0), ld, y, ly);
    }
    storeVec(ly, y, at(out, <usize>i0 * <usize>outStride), outStride, beta);
  }
}

// ---------------------------------------------------------------------------------------------
// Small m: a few rows of C (decoding), no packing of B

/** Row i of op(A), columns [p0, p0 + kc), times alpha into x + i·XS, for i < mr; rows mr..rows-1 zero. */
function gatherRows(mr: i32, rows: i32, kc: i32, a: usize, lda: i32, transA: bool, alpha: f32, p0: i32, x: usize): void {
  for (let i = 0; i < mr; i++) {
    const src = transA ? at(a, <usize>p0 * <usize>lda + <usize>i) : at(a, <usize>i * <usize>lda + <usize>p0);
    gather(kc, src, transA ? lda : 1, alpha, x + <usize>i * XS);
  }
  for (let i = mr; i < rows; i++) memory.fill(x + <usize>i * XS, 0, <usize>kc << 2);
}

/**
 * Outputs y (m ≤ 2 rows, YS bytes apart, len columns) += alpha · op(A)[0..m)[p0..p1) · B[p0..p1)[0..len),
 * B row-major (already offset to the first column).
 */
export function axpyAccum(
  m: i32, p0: i32, p1: i32, a: usize, lda: i32, transA: bool, alpha: f32, b: usize, ldb: i32, len: i32,
  y: usize, scratch: usize,
): void {
  const x = scratch + SX;
  for (let pc = p0; pc < p1; pc += KV) {
    const kc = min(KV, p1 - pc);
    gatherRows(m, m, kc, a, lda, transA, alpha, pc, x);
    const mat = at(b, <usize>pc * <usize>ldb);
    if (m == 1) axpyRows(kc, x, mat, ldb, y, len);
    else axpyRows2(kc, x, XS, mat, ldb, y, YS, len);
  }
}

/** C (m ≤ 2 rows) = alpha · op(A) · B + beta · C with B row-major, in column blocks of YV. */
function axpySmall(
  m: i32, n: i32, k: i32, a: usize, lda: i32, transA: bool, b: usize, ldb: i32, c: usize, ldc: i32,
  alpha: f32, beta: f32, scratch: usize,
): void {
  const y = scratch + SY;
  for (let j0 = 0; j0 < n; j0 += YV) {
    const len = min(YV, n - j0);
    for (let i = 0; i < m; i++) memory.fill(y + <usize>i * YS, 0, <usize>len << 2);
    axpyAccum(m, 0, k, a, lda, transA, alpha, at(b, <usize>j0), ldb, len, y, scratch);
    for (let i = 0; i < m; i++) storeVec(len, y + <usize>i * YS, at(c, <usize>i * <usize>ldc + <usize>j0), 1, beta);
  }
}

/** Packs rows [0, mr) × columns [0, kc) of op(A) times alpha k-major for the 4×8 block: x[p·4 + i]; rows past mr zero. */
function packA4(mr: i32, kc: i32, a: usize, lda: i32, transA: bool, alpha: f32, x: usize): void {
  for (let p = 0; p < kc; p++) {
    const o = at(x, p * 4);
    for (let i = 0; i < 4; i++) {
      let v: f32 = 0;
      if (i < mr) v = load<f32>(at(a, transA ? <usize>p * <usize>lda + <usize>i : <usize>i * <usize>lda + <usize>p)) * alpha;
      store<f32>(at(o, i), v);
    }
  }
}

@inline function storeOne(c: usize, v: f32, beta: f32): void {
  store<f32>(c, beta == 0 ? v : v + beta * load<f32>(c));
}

/** Column j of rows [0, mr) of C from the lanes of v: c[i·ldc] = v[i] + beta·c[i·ldc]. */
function storeColumn(c: usize, ldc: i32, v: v128, mr: i32, beta: f32): void {
  const step = <usize>ldc << 2;
  storeOne(c, f32x4.extract_lane(v, 0), beta);
  if (mr > 1) storeOne(c + step, f32x4.extract_lane(v, 1), beta);
  if (mr > 2) storeOne(c + 2 * step, f32x4.extract_lane(v, 2), beta);
  if (mr > 3) storeOne(c + 3 * step, f32x4.extract_lane(v, 3), beta);
}

/**
 * Rows [0, mr) × columns [0, 8) of C = Σ_p x[p·4 + i] · B[p][j] + beta·C over kc rows of B, read in
 * place: 8 accumulators, two loads of B and four broadcasts of A per eight multiply-adds.
 */
function block4x8(kc: i32, x: usize, b: usize, ldb: i32, c: usize, ldc: i32, mr: i32, beta: f32): void {
  const step = <usize>ldb << 2;
  let c00 = f32x4.splat(0);
  let c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  let xp = x;
  let r = b;
  const end = at(x, kc * 4);
  while (xp < end) {
    const b0 = v128.load(r);
    const b1 = v128.load(r, 16);
    let s = v128.load32_splat(xp);
    c00 = madd(s, b0, c00);
    c01 = madd(s, b1, c01);
    s = v128.load32_splat(xp, 4);
    c10 = madd(s, b0, c10);
    c11 = madd(s, b1, c11);
    s = v128.load32_splat(xp, 8);
    c20 = madd(s, b0, c20);
    c21 = madd(s, b1, c21);
    s = v128.load32_splat(xp, 12);
    c30 = madd(s, b0, c30);
    c31 = madd(s, b1, c31);
    xp += 16;
    r += step;
  }
  const cs = <usize>ldc << 2;
  storeAcc(c, c00, beta);
  storeAcc(c + 16, c01, beta);
  if (mr > 1) {
    storeAcc(c + cs, c10, beta);
    storeAcc(c + cs + 16, c11, beta);
  }
  if (mr > 2) {
    storeAcc(c + 2 * cs, c20, beta);
    storeAcc(c + 2 * cs + 16, c21, beta);
  }
  if (mr > 3) {
    storeAcc(c + 3 * cs, c30, beta);
    storeAcc(c + 3 * cs + 16, c31, beta);
  }
}

/** One column of the same: the four rows are the lanes of one accumulator. */
function block4x1(kc: i32, x: usize, b: usize, ldb: i32, c: usize, ldc: i32, mr: i32, beta: f32): void {
  const step = <usize>ldb << 2;
  let acc = f32x4.splat(0);
  let r = b;
  for (let p = 0; p < kc; p++) {
    acc = madd(v128.load(at(x, p * 4)), v128.load32_splat(r), acc);
    r += step;
  }
  storeColumn(c, ldc, acc, mr, beta);
}

/** C (3 ≤ m ≤ SMALL_M rows) = alpha · op(A) · B + beta · C with B row-major: four rows at a time. */
function blockSmall(
  m: i32, n: i32, k: i32, a: usize, lda: i32, transA: bool, b: usize, ldb: i32, c: usize, ldc: i32,
  alpha: f32, beta: f32, scratch: usize,
): void {
  const x = scratch + SX;
  for (let i0 = 0; i0 < m; i0 += 4) {
    const mr = min(4, m - i0);
    const ai = at(a, transA ? <usize>i0 : <usize>i0 * <usize>lda);
    const ci = at(c, <usize>i0 * <usize>ldc);
    if (mr <= 2) {
      // One or two rows left: streaming B once more beats a block that is half padding.
      axpySmall(mr, n, k, ai, lda, transA, b, ldb, ci, ldc, alpha, beta, scratch);
      continue;
    }
    for (let pc = 0; pc < k; pc += KB) {
      const kc = min(KB, k - pc);
      packA4(mr, kc, at(ai, transA ? <usize>pc * <usize>lda : <usize>pc), lda, transA, alpha, x);
      const bk: f32 = pc == 0 ? beta : 1;
      const brow = at(b, <usize>pc * <usize>ldb);
      let j = 0;
      for (; j + 8 <= n; j += 8) block4x8(kc, x, at(brow, <usize>j), ldb, at(ci, <usize>j), ldc, mr, bk);
      for (; j < n; j++) block4x1(kc, x, at(brow, <usize>j), ldb, at(ci, <usize>j), ldc, mr, bk);
    }
  }
}

/**
 * Rows 0 and 1 of C (ldc apart) over columns [0, n) = Σ_p x_i[p] · B[j][p] + beta·C, B stored
 * transposed (row j of B is column j of op(B)): two rows of A against four rows of B, 8 accumulators.
 */
function dot2(kc: i32, x: usize, b: usize, ldb: i32, c: usize, ldc: i32, n: i32, beta: f32): void {
  const step = <usize>ldb << 2;
  const cs = <usize>ldc << 2;
  const x1 = x + XS;
  const k4 = kc & ~3;
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const r0 = at(b, <usize>j * <usize>ldb);
    const r1 = r0 + step, r2 = r1 + step, r3 = r2 + step;
    let a0 = f32x4.splat(0);
    let a1 = a0, a2 = a0, a3 = a0, e0 = a0, e1 = a0, e2 = a0, e3 = a0;
    for (let p = 0; p < k4; p += 4) {
      const po = <usize>p << 2;
      const u = v128.load(x + po);
      const v = v128.load(x1 + po);
      let q = v128.load(r0 + po);
      a0 = madd(u, q, a0);
      e0 = madd(v, q, e0);
      q = v128.load(r1 + po);
      a1 = madd(u, q, a1);
      e1 = madd(v, q, e1);
      q = v128.load(r2 + po);
      a2 = madd(u, q, a2);
      e2 = madd(v, q, e2);
      q = v128.load(r3 + po);
      a3 = madd(u, q, a3);
      e3 = madd(v, q, e3);
    }
    let s0 = hsum4(a0, a1, a2, a3);
    let s1 = hsum4(e0, e1, e2, e3);
    for (let p = k4; p < kc; p++) {
      const po = <usize>p << 2;
      const q = f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(
        f32x4.splat(load<f32>(r0 + po)), 1, load<f32>(r1 + po)), 2, load<f32>(r2 + po)), 3, load<f32>(r3 + po));
      s0 = madd(v128.load32_splat(x + po), q, s0);
      s1 = madd(v128.load32_splat(x1 + po), q, s1);
    }
    storeAcc(at(c, <usize>j), s0, beta);
    storeAcc(at(c, <usize>j) + cs, s1, beta);
  }
  for (; j < n; j++) {
    const r0 = at(b, <usize>j * <usize>ldb);
    let a0 = f32x4.splat(0);
    let e0 = a0;
    for (let p = 0; p < k4; p += 4) {
      const po = <usize>p << 2;
      const q = v128.load(r0 + po);
      a0 = madd(v128.load(x + po), q, a0);
      e0 = madd(v128.load(x1 + po), q, e0);
    }
    let t0 = hsum(a0), t1 = hsum(e0);
    for (let p = k4; p < kc; p++) {
      const po = <usize>p << 2;
      const q = load<f32>(r0 + po);
      t0 += load<f32>(x + po) * q;
      t1 += load<f32>(x1 + po) * q;
    }
    storeOne(at(c, <usize>j), t0, beta);
    storeOne(at(c, <usize>j) + cs, t1, beta);
  }
}

/** The same for rows [0, mr) of C, mr ≤ 4 (x rows past mr are zero): four rows of A against two of B. */
function dot4(kc: i32, x: usize, b: usize, ldb: i32, c: usize, ldc: i32, n: i32, mr: i32, beta: f32): void {
  const step = <usize>ldb << 2;
  const x1 = x + XS, x2 = x1 + XS, x3 = x2 + XS;
  const k4 = kc & ~3;
  let j = 0;
  for (; j + 2 <= n; j += 2) {
    const r0 = at(b, <usize>j * <usize>ldb);
    const r1 = r0 + step;
    let a0 = f32x4.splat(0);
    let a1 = a0, a2 = a0, a3 = a0, e0 = a0, e1 = a0, e2 = a0, e3 = a0;
    for (let p = 0; p < k4; p += 4) {
      const po = <usize>p << 2;
      const u = v128.load(r0 + po);
      const v = v128.load(r1 + po);
      let q = v128.load(x + po);
      a0 = madd(q, u, a0);
      e0 = madd(q, v, e0);
      q = v128.load(x1 + po);
      a1 = madd(q, u, a1);
      e1 = madd(q, v, e1);
      q = v128.load(x2 + po);
      a2 = madd(q, u, a2);
      e2 = madd(q, v, e2);
      q = v128.load(x3 + po);
      a3 = madd(q, u, a3);
      e3 = madd(q, v, e3);
    }
    let s0 = hsum4(a0, a1, a2, a3);
    let s1 = hsum4(e0, e1, e2, e3);
    for (let p = k4; p < kc; p++) {
      const po = <usize>p << 2;
      const q = f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(
        f32x4.splat(load<f32>(x + po)), 1, load<f32>(x1 + po)), 2, load<f32>(x2 + po)), 3, load<f32>(x3 + po));
      s0 = madd(q, v128.load32_splat(r0 + po), s0);
      s1 = madd(q, v128.load32_splat(r1 + po), s1);
    }
    storeColumn(at(c, <usize>j), ldc, s0, mr, beta);
    storeColumn(at(c, <usize>j + 1), ldc, s1, mr, beta);
  }
  for (; j < n; j++) {
    const r0 = at(b, <usize>j * <usize>ldb);
    let a0 = f32x4.splat(0);
    let a1 = a0, a2 = a0, a3 = a0;
    for (let p = 0; p < k4; p += 4) {
      const po = <usize>p << 2;
      const u = v128.load(r0 + po);
      a0 = madd(v128.load(x + po), u, a0);
      a1 = madd(v128.load(x1 + po), u, a1);
      a2 = madd(v128.load(x2 + po), u, a2);
      a3 = madd(v128.load(x3 + po), u, a3);
    }
    let s0 = hsum4(a0, a1, a2, a3);
    for (let p = k4; p < kc; p++) {
      const po = <usize>p << 2;
      const q = f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(
        f32x4.splat(load<f32>(x + po)), 1, load<f32>(x1 + po)), 2, load<f32>(x2 + po)), 3, load<f32>(x3 + po));
      s0 = madd(q, v128.load32_splat(r0 + po), s0);
    }
    storeColumn(at(c, <usize>j), ldc, s0, mr, beta);
  }
}

/** C (2 ≤ m ≤ SMALL_M rows) = alpha · op(A) · op(B) + beta · C with B stored transposed. */
function dotSmall(
  m: i32, n: i32, k: i32, a: usize, lda: i32, transA: bool, b: usize, ldb: i32, c: usize, ldc: i32,
  alpha: f32, beta: f32, scratch: usize,
): void {
  const x = scratch + SX;
  for (let i0 = 0; i0 < m; i0 += 4) {
    const mr = min(4, m - i0);
    const ai = at(a, transA ? <usize>i0 : <usize>i0 * <usize>lda);
    const ci = at(c, <usize>i0 * <usize>ldc);
    if (mr == 1) {
      gemv(n, k, ai, transA ? lda : 1, alpha, b, ldb, true, ci, 1, beta, scratch);
      continue;
    }
    for (let pc = 0; pc < k; pc += KV) {
      const kc = min(KV, k - pc);
      const rows = mr == 2 ? 2 : 4;
      gatherRows(mr, rows, kc, ai, lda, transA, alpha, pc, x);
      const bk: f32 = pc == 0 ? beta : 1;
      if (mr == 2) dot2(kc, x, at(b, <usize>pc), ldb, ci, ldc, n, bk);
      else dot4(kc, x, at(b, <usize>pc), ldb, ci, ldc, n, mr, bk);
    }
  }
}

/** One GEMM: C = alpha·op(A)·op(B) + beta·C, row-major, pointers in bytes, leading dimensions in elements. */
export function sgemm(
  m: i32, n: i32, k: i32, a: usize, lda: i32, transA: bool, b: usize, ldb: i32, transB: bool,
  c: usize, ldc: i32, alpha: f32, beta: f32, scratch: usize,
): void {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0) {
    scaleC(m, n, c, ldc, beta);
    return;
  }
  if (m <= SMALL_M) {
    if (transB) dotSmall(m, n, k, a, lda, transA, b, ldb, c, ldc, alpha, beta, scratch);
    else if (m <= 2) axpySmall(m, n, k, a, lda, transA, b, ldb, c, ldc, alpha, beta, scratch);
    else blockSmall(m, n, k, a, lda, transA, b, ldb, c, ldc, alpha, beta, scratch);
  } else if (n <= VEC_MAX) {
    for (let j = 0; j < n; j++) {
      const bcol = at(b, transB ? <usize>j * <usize>ldb : <usize>j);
      gemv(m, k, bcol, transB ? 1 : ldb, alpha, a, lda, !transA, at(c, j), ldc, beta, scratch);
    }
  } else {
    gemmPacked(m, n, k, a, lda, transA, b, ldb, transB, c, ldc, alpha, beta, scratch);
  }
}
