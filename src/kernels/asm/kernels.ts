// AssemblyScript source of the WASM compute kernels (built by scripts/build-kernels.mjs, twice: with
// relaxed SIMD, where a multiply-add is one fused instruction, and with plain SIMD as the fallback).
// All pointers are byte offsets into the one shared memory; the module owns no data of its own, so
// every thread instantiates it on the same memory without touching anything but the buffers it is given.

// Register block of the GEMM micro-kernel: 6 rows × 8 columns = 12 f32x4 accumulators. With 2 B
// vectors and a broadcast that is 15 xmm registers, all V8 allocates; per 12 multiply-adds it loads
// 2 vectors and 6 broadcasts, and runs at 99% of the FMA peak from L1 (2×16, the block this replaced,
// ran at 91%). Taller or wider blocks spill and run at half the speed. Without relaxed SIMD a
// multiply-add is a multiply and an add that needs one more register, so that build takes 4 × 8.
const MR: i32 = ASC_FEATURE_RELAXED_SIMD ? 6 : 4;
const NR: i32 = 8;
// A KC×NR sliver of packed B (8 KiB) stays in L1 while all MR-row slivers of the MC×KC block of
// packed A (192 KiB, in L2) stream past it. B is packed one sliver at a time, right before use, rather
// than as a whole panel up front: it then goes from memory straight into L1 once per A block, which
// is what matters when m is small and B is most of the traffic. MC is a multiple of MR.
const KC: i32 = 256;
const MC: i32 = 192;
// Chunks of the vector path (matrix-vector products): the vector and the outputs it accumulates.
const KV: i32 = 2048;
const YV: i32 = 4096;
// Up to this many columns of C (with more rows), each is a matrix-vector product that streams the
// matrix in long contiguous runs; the register block would spend half its work or more on padding.
const VEC_MAX: i32 = 2;
// Up to this many rows of C, the small-m paths (decoding a few tokens): no packing of B, which would
// cost as much as the product itself. One or two rows with B row-major stream rows of B into outputs
// that stay in cache (axpyRows, axpyRows2); three or four rows take a 4×8 register block that reads
// B in place (block4x8); with B stored transposed, rows of B are dot products (dot2, dot4).
const SMALL_M: i32 = 8;
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
const SY: usize = SX + 4 * XS;
const YS: usize = <usize>(YV + 16) * 4;
const STAG: usize = SY + 2 * YS;
const SMALL_END: usize = STAG + 64;

/** Bytes of scratch space one thread needs (a 64-byte aligned block the caller allocates). */
export function scratchBytes(): usize {
  return max(max(PACKED_END, VEC_END), SMALL_END);
}

@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

@inline function at(base: usize, index: usize): usize {
  return base + (index << 2);
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

@inline function hsum(a: v128): f32 {
  return f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3);
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
function storeVec(len: i32, y: usize, out: usize, stride: i32, beta: f32): void {
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
function axpyAccum(
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

// ---------------------------------------------------------------------------------------------
// AdamW

/**
 * One AdamW step over n parameters. The caller folds the scalars: decay = 1 − lr·wd,
 * stepSize = lr / (1 − β1ᵗ), invBc2 = 1 / (1 − β2ᵗ).
 */
export function adamw(
  n: i32, param: usize, grad: usize, mom: usize, vel: usize, gradScale: f32, beta1: f32, beta2: f32,
  eps: f32, decay: f32, stepSize: f32, invBc2: f32,
): void {
  const vs = f32x4.splat(gradScale);
  const vb1 = f32x4.splat(beta1);
  const vc1 = f32x4.splat(1 - beta1);
  const vb2 = f32x4.splat(beta2);
  const vc2 = f32x4.splat(1 - beta2);
  const ve = f32x4.splat(eps);
  const vd = f32x4.splat(decay);
  const vl = f32x4.splat(stepSize);
  const vi = f32x4.splat(invBc2);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const g = f32x4.mul(v128.load(grad + o), vs);
    const mi = madd(vb1, v128.load(mom + o), f32x4.mul(vc1, g));
    const vv = madd(vb2, v128.load(vel + o), f32x4.mul(vc2, f32x4.mul(g, g)));
    v128.store(mom + o, mi);
    v128.store(vel + o, vv);
    const den = f32x4.add(f32x4.sqrt(f32x4.mul(vv, vi)), ve);
    const upd = f32x4.div(f32x4.mul(vl, mi), den);
    v128.store(param + o, f32x4.sub(f32x4.mul(v128.load(param + o), vd), upd));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(grad + o) * gradScale;
    const mi = beta1 * load<f32>(mom + o) + (1 - beta1) * g;
    const vv = beta2 * load<f32>(vel + o) + (1 - beta2) * g * g;
    store<f32>(mom + o, mi);
    store<f32>(vel + o, vv);
    store<f32>(param + o, load<f32>(param + o) * decay - (stepSize * mi) / (sqrt<f32>(vv * invBc2) + eps));
  }
}

// ---------------------------------------------------------------------------------------------
// Row-wise and element-wise kernels (the non-GEMM parts of a training step)
//
// Each one works on a range [r0, r1) of independent units (rows, elements or columns), so the work
// split below can hand ranges to threads. Each has a plain TypeScript twin in ../reference.ts, which
// the tests hold it to; they compute in float32 where the twin uses float64, so they agree to float32
// rounding.

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

// ---------------------------------------------------------------------------------------------
// Work split across threads
//
// The caller writes a job into a block of 32-bit words, plan() cuts it into chunks (bands of rows or
// columns of C, groups of batch entries, runs of parameters), and every thread then runs work(): it
// claims chunks one at a time until none are left. Claiming dynamically means a thread that the OS
// has descheduled (another process on the core) costs at most the chunk it holds, not a fixed share.
//
// NEXT holds the generation (which job) in its high bits and the next chunk index in its low bits, so
// a claim is one compare-and-swap that fails once the job it was meant for is over. The caller
// closes NEXT (close()) before it writes the next job's arguments, so a thread that wakes late and
// reads a half-written job can never claim anything from it. DONE counts finished chunks; the job is
// over when it reaches the total.

// Job block layout, in 32-bit words (the JavaScript side writes the arguments, see wasm.ts).
const J_KIND = 0;
const J_THREADS = 1;
const J_SCRATCH = 2; // pointer to an array of per-thread scratch pointers
// gemm
const G_M = 3, G_N = 4, G_K = 5, G_A = 6, G_LDA = 7, G_TA = 8, G_B = 9, G_LDB = 10, G_TB = 11;
const G_C = 12, G_LDC = 13, G_ALPHA = 14, G_BETA = 15, G_BATCH = 16, G_SA = 17, G_SB = 18, G_SC = 19;
// adamw
const W_N = 3, W_P = 4, W_G = 5, W_M = 6, W_V = 7, W_SCALE = 8, W_B1 = 9, W_B2 = 10, W_EPS = 11;
const W_DECAY = 12, W_STEP = 13, W_INVBC2 = 14;
// row-wise kernels: which one, how many units (rows, elements or columns) to split, the work per
// unit (to size chunks), the multiple chunk boundaries keep, then pointers, integers and a real.
const R_OP = 3, R_UNITS = 4, R_COST = 5, R_ALIGN = 6;
const R_P0 = 7, R_P1 = 8, R_P2 = 9, R_P3 = 10, R_P4 = 11, R_I0 = 12, R_I1 = 13, R_I2 = 14, R_X0 = 15;
// plan (written by plan())
const P_TOTAL = 20, P_COLS = 21, P_BANDS = 22, P_BAND = 23, P_GROUP = 24, P_SPLITK = 25;
// synchronisation, each on its own cache line (S_PART shares S_DONE's: both change once per chunk)
const S_NEXT = 48;
const S_DONE = 64;
const S_PART = 72;

const KIND_GEMM = 1;
const KIND_ADAMW = 2;
const KIND_ROWS = 3;
// row-wise kernels (R_OP)
const OP_SWIGLU = 1, OP_SWIGLU_BACKWARD = 2, OP_RMSNORM = 3, OP_RMSNORM_BACKWARD_X = 4, OP_RMSNORM_BACKWARD_W = 5;
const OP_LOGSUMEXP = 6, OP_XENT_BACKWARD = 7, OP_SOFTMAX = 8, OP_SOFTMAX_BACKWARD = 9, OP_COPY_ROWS = 10;
const OP_SUM_SQUARES = 11, OP_GATHER_ROWS = 12, OP_SCATTER_ROWS = 13, OP_ROW_DOTS = 14;

const INDEX_BITS = 12;
const INDEX_MASK = (1 << INDEX_BITS) - 1;
// Chunks per thread: enough that a slow thread leaves little behind.
const CHUNKS_PER_THREAD = 4;
// Below this much work per chunk the claim and the repeated packing start to show.
const CHUNK_MIN_FLOPS: f64 = 4 * 1024 * 1024;
const ADAMW_CHUNK = 32768;
// Row-wise chunks: at least this much work (units × cost per unit) each.
const ROWS_CHUNK_MIN: f64 = 16384;
// Columns per band where bands stream rows of the matrix: runs of 8 KiB or more keep the prefetchers
// ahead; shorter runs cost up to half the bandwidth.
const AXPY_BAND = 2048;
// Rows of B per chunk of a split-k product are a multiple of this.
const SPLITK_UNIT = 16;

@inline function wordAt(job: usize, i: i32): usize {
  return job + (<usize>i << 2);
}

@inline function word(job: usize, i: i32): i32 {
  return load<i32>(wordAt(job, i));
}

@inline function real(job: usize, i: i32): f32 {
  return load<f32>(wordAt(job, i));
}

@inline function ceilDiv(a: i32, b: i32): i32 {
  return (a + b - 1) / b;
}

/** Whether the batch entries of C do not overlap, so that they may be computed in any order. */
@inline function disjointBatches(job: usize): bool {
  const m = word(job, G_M), n = word(job, G_N);
  return <u64>word(job, G_SC) >= <u64>(m - 1) * <u64>word(job, G_LDC) + <u64>n;
}

/** Ends all claiming on the job block: no chunk index reaches INDEX_MASK. */
export function close(job: usize): void {
  atomic.or<i32>(wordAt(job, S_NEXT), INDEX_MASK);
}

/** Cuts the job into chunks and opens them to claims for generation gen. */
export function plan(job: usize, gen: i32): void {
  const parts = word(job, J_THREADS);
  const most = parts * CHUNKS_PER_THREAD;
  let total = 1;
  if (word(job, J_KIND) == KIND_ROWS) {
    const units = max(1, word(job, R_UNITS)), align = word(job, R_ALIGN);
    let size = units;
    if (parts > 1) {
      const target = <i32>min(<f64>most, max(<f64>parts, <f64>units * <f64>word(job, R_COST) / ROWS_CHUNK_MIN));
      size = ceilDiv(ceilDiv(units, target), align) * align;
    }
    store<i32>(wordAt(job, P_BAND), size);
    total = ceilDiv(units, size);
  } else if (word(job, J_KIND) == KIND_ADAMW) {
    const n = max(1, word(job, W_N));
    const size = parts > 1 ? ceilDiv(ceilDiv(n, min(most, ceilDiv(n, ADAMW_CHUNK))), 16) * 16 : n;
    store<i32>(wordAt(job, P_BAND), size);
    total = ceilDiv(n, size);
  } else {
    const m = word(job, G_M), n = word(job, G_N), k = word(job, G_K), batch = word(job, G_BATCH);
    const transB = word(job, G_TB) != 0;
    const small = m <= SMALL_M;
    // One or two rows times a row-major B whose outputs fit in scratch: each thread streams its own
    // contiguous run of rows of B (split k) into partial sums, and whoever finishes the last chunk
    // adds them up. Cutting the columns instead would cut every row of B into short runs.
    const splitK = parts > 1 && m <= 2 && !transB && batch == 1 && n <= YV && k >= 2 * SPLITK_UNIT;
    store<i32>(wordAt(job, P_SPLITK), splitK ? 1 : 0);
    // Column bands repeat the packing of A (each band reads all of A, and B once per MC rows), row
    // bands that of B (each band reads all of B, A once): cut the side that moves fewer bytes. For
    // square products that is rows.
    const bandGuess = <f64>max(1, parts * CHUNKS_PER_THREAD);
    const rowsCost = bandGuess * <f64>n + <f64>m;
    const colsCost = bandGuess * <f64>m + <f64>ceilDiv(m, MC) * <f64>n;
    const cols = small || (n > VEC_MAX && colsCost < rowsCost);
    // A matrix-vector product that streams rows of its matrix needs long runs of each row per band
    // for the hardware prefetcher to keep up; the other forms only need whole register blocks (and
    // bands of C whole cache lines apart).
    const streamsRows = small ? m <= 2 && !transB : n <= VEC_MAX && word(job, G_TA) != 0;
    const unit = splitK ? SPLITK_UNIT : streamsRows ? AXPY_BAND : small || cols ? 16 : MR;
    const side = max(1, splitK ? k : cols ? n : m);
    let bands = 1, group = max(1, batch), groups = 1;
    if (parts > 1) {
      const flops = 2 * <f64>m * <f64>n * <f64>k * <f64>batch;
      // The small-m paths pack nothing per chunk, so they take the most chunks, which even out
      // threads that start or run late.
      const target = small ? most : <i32>min(<f64>most, max(<f64>parts, flops / CHUNK_MIN_FLOPS));
      // In order, one band of C per chunk through all batch entries, where they may share C.
      if (batch > 1 && disjointBatches(job)) {
        group = ceilDiv(batch, min(batch, target));
        groups = ceilDiv(batch, group);
      }
      bands = min(ceilDiv(side, unit), ceilDiv(target, groups));
      // Split-k chunks only add to per-thread partial sums; each streams 64 rows of B or more.
      if (splitK) bands = min(ceilDiv(k, 4 * SPLITK_UNIT), most);
    }
    const band = ceilDiv(ceilDiv(side, unit), bands) * unit;
    bands = ceilDiv(side, band);
    store<i32>(wordAt(job, P_COLS), cols ? 1 : 0);
    store<i32>(wordAt(job, P_BANDS), bands);
    store<i32>(wordAt(job, P_BAND), band);
    store<i32>(wordAt(job, P_GROUP), group);
    total = groups * bands;
  }
  store<i32>(wordAt(job, P_TOTAL), total);
  atomic.store<i32>(wordAt(job, S_PART), 0);
  atomic.store<i32>(wordAt(job, S_DONE), 0);
  atomic.store<i32>(wordAt(job, S_NEXT), gen << INDEX_BITS);
}

/** The most threads a job can be cut for: chunk indices must fit below the generation bits. */
export function maxThreads(): i32 {
  return INDEX_MASK / CHUNKS_PER_THREAD;
}

function gemmChunk(job: usize, chunk: i32, scratch: usize): void {
  const m = word(job, G_M), n = word(job, G_N), k = word(job, G_K);
  const lda = word(job, G_LDA), ldb = word(job, G_LDB), ldc = word(job, G_LDC);
  const transA = word(job, G_TA) != 0, transB = word(job, G_TB) != 0;
  const alpha = real(job, G_ALPHA), beta = real(job, G_BETA);
  const sa = <usize>word(job, G_SA) << 2, sb = <usize>word(job, G_SB) << 2, sc = <usize>word(job, G_SC) << 2;
  const bands = word(job, P_BANDS), band = word(job, P_BAND), group = word(job, P_GROUP);
  const cols = word(job, P_COLS) != 0;
  const b0 = (chunk / bands) * group;
  const b1 = min(word(job, G_BATCH), b0 + group);
  const lo = (chunk % bands) * band;
  let i0 = 0, i1 = m, j0 = 0, j1 = n;
  if (cols) {
    j0 = lo;
    j1 = min(n, lo + band);
  } else {
    i0 = lo;
    i1 = min(m, lo + band);
  }
  const ao = transA ? <usize>i0 : <usize>i0 * <usize>lda;
  const bo = transB ? <usize>j0 * <usize>ldb : <usize>j0;
  const co = <usize>i0 * <usize>ldc + <usize>j0;
  const a = <usize>word(job, G_A), b = <usize>word(job, G_B), c = <usize>word(job, G_C);
  for (let bi = b0; bi < b1; bi++) {
    const e = <usize>bi;
    sgemm(
      i1 - i0, j1 - j0, k, at(a + e * sa, ao), lda, transA, at(b + e * sb, bo), ldb, transB,
      at(c + e * sc, co), ldc, alpha, beta, scratch,
    );
  }
}

/** Rows [p0, p1) of B of a split-k product into this thread's partial sums (zeroed on its first chunk). */
function splitKChunk(job: usize, chunk: i32, scratch: usize, gen: i32): void {
  const m = word(job, G_M), n = word(job, G_N), k = word(job, G_K);
  const band = word(job, P_BAND);
  const p0 = chunk * band;
  const p1 = min(k, p0 + band);
  const y = scratch + SY;
  // The caller zeroes scratch space when it allocates it and never uses generation 0.
  if (load<i32>(scratch + STAG) != gen) {
    for (let i = 0; i < m; i++) memory.fill(y + <usize>i * YS, 0, <usize>n << 2);
    store<i32>(scratch + STAG, gen);
  }
  axpyAccum(
    m, p0, p1, <usize>word(job, G_A), word(job, G_LDA), word(job, G_TA) != 0, real(job, G_ALPHA),
    <usize>word(job, G_B), word(job, G_LDB), n, y, scratch,
  );
}

/** C = Σ over the threads that took part of their partial sums + beta·C (after the last chunk). */
function splitKReduce(job: usize, gen: i32): void {
  const m = word(job, G_M), n = word(job, G_N), ldc = word(job, G_LDC);
  const c = <usize>word(job, G_C);
  const beta = real(job, G_BETA);
  const table = <usize>word(job, J_SCRATCH);
  const parts = word(job, J_THREADS);
  for (let i = 0; i < m; i++) {
    const row = at(c, <usize>i * <usize>ldc);
    let first = true;
    for (let t = 0; t < parts; t++) {
      const s = <usize>load<u32>(table + (<usize>t << 2));
      if (load<i32>(s + STAG) != gen) continue;
      storeVec(n, s + SY + <usize>i * YS, row, 1, first ? beta : 1);
      first = false;
    }
  }
}

function adamwChunk(job: usize, chunk: i32): void {
  const size = word(job, P_BAND);
  const s = chunk * size;
  const e = min(word(job, W_N), s + size);
  const o = <usize>s << 2;
  adamw(
    e - s, <usize>word(job, W_P) + o, <usize>word(job, W_G) + o, <usize>word(job, W_M) + o,
    <usize>word(job, W_V) + o, real(job, W_SCALE), real(job, W_B1), real(job, W_B2), real(job, W_EPS),
    real(job, W_DECAY), real(job, W_STEP), real(job, W_INVBC2),
  );
}

function rowsChunk(job: usize, chunk: i32): void {
  const size = word(job, P_BAND);
  const lo = chunk * size;
  const hi = min(word(job, R_UNITS), lo + size);
  const p0 = <usize>word(job, R_P0), p1 = <usize>word(job, R_P1), p2 = <usize>word(job, R_P2);
  const p3 = <usize>word(job, R_P3), p4 = <usize>word(job, R_P4);
  const i0 = word(job, R_I0), i1 = word(job, R_I1), i2 = word(job, R_I2);
  switch (word(job, R_OP)) {
    case OP_SWIGLU: swigluRange(p0, p1, p2, lo, hi); break;
    case OP_SWIGLU_BACKWARD: swigluBackwardRange(p0, p1, p2, p3, p4, i0 != 0, lo, hi); break;
    case OP_RMSNORM: rmsnormRange(p0, p1, p2, p3, i0, real(job, R_X0), lo, hi); break;
    case OP_RMSNORM_BACKWARD_X: rmsnormBackwardXRange(p0, p1, p2, p3, p4, i0, i1 != 0, lo, hi); break;
    case OP_RMSNORM_BACKWARD_W: rmsnormBackwardWRange(p0, p1, p2, p3, i1, i0, lo, hi); break;
    case OP_LOGSUMEXP: logSumExpRange(p0, p1, i0, lo, hi); break;
    case OP_XENT_BACKWARD: softmaxXentBackwardRange(p0, p1, p2, p3, p4, i0, lo, hi); break;
    case OP_SOFTMAX: softmaxRange(p0, i0, i1, i2, lo, hi); break;
    case OP_SOFTMAX_BACKWARD: softmaxBackwardRange(p0, p1, i0, i1, i2, lo, hi); break;
    case OP_COPY_ROWS: copyRowsRange(p0, p1, i0, i1, i2, real(job, R_X0) != 0, lo, hi); break;
    // one float64 partial sum per chunk, added up by the caller
    case OP_SUM_SQUARES: store<f64>(p1 + (<usize>chunk << 3), sumSquaresRange(p0, lo, hi)); break;
    case OP_GATHER_ROWS: gatherRowsRange(p0, p1, p2, p3, i0, i1 != 0, lo, hi); break;
    case OP_SCATTER_ROWS: scatterRowsRange(p0, p1, p2, p3, p4, i0, lo, hi); break;
    case OP_ROW_DOTS: rowDotsRange(p0, p1, p2, p3, i0, lo, hi); break;
    default: unreachable();
  }
}

/**
 * Claims and runs chunks of generation gen as thread t until none are left. Returns true when this
 * thread finished the job's last chunk (the caller then wakes whoever waits for the job).
 */
export function work(job: usize, gen: i32, t: i32): bool {
  const tag = (gen << INDEX_BITS) & ~INDEX_MASK;
  const next = wordAt(job, S_NEXT);
  const kind = word(job, J_KIND);
  const total = word(job, P_TOTAL);
  const scratch = <usize>load<u32>(<usize>word(job, J_SCRATCH) + (<usize>t << 2));
  let last = false;
  for (;;) {
    const cur = atomic.load<i32>(next);
    if ((cur & ~INDEX_MASK) != tag) break;
    const chunk = cur & INDEX_MASK;
    if (chunk >= total) break;
    if (atomic.cmpxchg<i32>(next, cur, cur + 1) != cur) continue;
    if (kind == KIND_ADAMW) adamwChunk(job, chunk);
    else if (kind == KIND_ROWS) rowsChunk(job, chunk);
    else if (word(job, P_SPLITK) != 0) {
      splitKChunk(job, chunk, scratch, gen);
      // The partial sums are complete once every chunk is: the thread that ends the last one adds
      // them up before it counts its chunk done, so the job is not over until C is written.
      if (atomic.add<i32>(wordAt(job, S_PART), 1) == total - 1) splitKReduce(job, gen);
    } else gemmChunk(job, chunk, scratch);
    last = atomic.add<i32>(wordAt(job, S_DONE), 1) == total - 1;
  }
  return last;
}
