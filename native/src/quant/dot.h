// The integer products of quantized weight rows with quantized activations, written once for every
// type: a type's traits (legacy.cc, kquants.cc) say how its bytes become levels and scales, these
// templates do the rest, per instruction set. Three AVX-512 kernels: per weight row for few
// activation rows (rowBlock512 for the 32-value types, rowBlock512K for the K-quants, whose integer
// sub-block scales apply before any float work), and tiles of 32 rows for many (tileBlock). Two
// AVX2 kernels, per weight row: rowBlock256 for the 32-value types, rowBlock256K for the K-quants.
//
// A type's traits T provide:
//   kBlock, kBytes, kGroup          block size and bytes; values per scale group (32, or 16 for Q6_K)
//   kSwap                           the levels of every 128 values come as quarters 0, 2, 1, 3 (Q4_K,
//                                   Q5_K: one 64-byte load then holds two vectors' nibbles); the
//                                   activations are stored in the same order (Act::swap)
//   scales(row, k, a, b)            per group g < k/kGroup: w = a[g]·q + b[g] for the group's levels q
//   levels(row, g, q)               the kGroup levels (0..255) of group g, in position order
//   levels512(row, v)               AVX-512: the levels of positions 64v .. 64v+63
//   levels512Half(row, v)           the same where only positions 64v .. 64v+31 exist (k ≡ 32 mod 64)
//   pairLevels512(p, both)          the same from the address of its first block (32-value types) or
//   sbLevels512(p, vv)              of its super-block (K-quants), so the kernels' loops keep a pointer
//   scales512                       the AVX-512 variant of scales, with the same results
//   kOffset, blockScales512(p, …)   32-value types with b = kOffset·a: lane scales of blocks p, p + 1
//   blockPair512(p, both, b)        the others (kOffset = 0): the same, and the two offsets b to b
//   header512(p, …)                 K-quants: the super-block's integer scales in vpdpwssd lane order,
//                                   its offsets b, and its d
//   levels256(row, h)               AVX2, 32-value types: positions 32h .. 32h+31, as unsigned levels,
//                                   or (kSigned256) as the signed weight levels w/a with b = 0 (Q8_0's
//                                   bytes as stored)
//   sbLevels256(p, h), header256    AVX2, K-quants: position group h of the super-block at p; its
//                                   integer scales as 16-bit lanes, offsets b and d (rowBlock256K)
// In a 64-value vector of levels, 4-byte lanes 0-7 hold group 2v and lanes 8-15 group 2v+1 (or
// lanes 4j..4j+3 group 4v+j when kGroup = 16), which is what lets one vector of per-lane scales
// weigh a whole vector of sums.
#pragma once
#include <algorithm>
#include <type_traits>
#include <vector>

#include "quant.h"
#if NS_X86
#include <immintrin.h>
#endif

namespace ns::quant {

/**
 * Runs f(std::integral_constant<int, N>(), i0) over rows 0 .. m − 1 of activations in groups of N = Max
 * and then one group of the rest, so that kernels keep a compile-time number of rows in registers.
 */
template <int N, class F>
inline void lastGroup(int rest, int i0, F& f) {
  if constexpr (N > 0) {
    if (rest == N) {
      f(std::integral_constant<int, N>(), i0);
    } else {
      lastGroup<N - 1>(rest, i0, f);
    }
  }
}

template <int Max, class F>
inline void rowGroups(int m, F f) {
  int i0 = 0;
  for (; i0 + Max <= m; i0 += Max) f(std::integral_constant<int, Max>(), i0);
  lastGroup<Max - 1>(m - i0, i0, f);
}

/** Per-thread scratch for a row's scales and offsets (kernels run on the pool's threads). */
inline float* rowScratch(size_t floats) {
  thread_local std::vector<float> buf;
  if (buf.size() < floats) buf.resize(floats);
  return buf.data();
}

/** Where a row's group scales a and offsets b live: b padded with zeros to x.nu, both with 16 floats of slack. */
struct RowScales {
  float* a;
  float* b;
  RowScales(int groups, int nu) {
    size_t span = static_cast<size_t>(std::max(groups, nu)) + 16;
    a = rowScratch(2 * span);
    b = a + span;
    std::fill(a + groups, a + span, 0.0f);
    std::fill(b + groups, b + span, 0.0f);
  }
};

// ---- Portable: the definition, in plain C++ (any CPU).

template <class T>
void intRowsPortable(const uint8_t* w, size_t rowBytes, int r0, int r1, const Act& x, float* y, size_t ldy) {
  const int k = x.k, G = T::kGroup, groups = k / G;
  RowScales s(groups, x.nu);
  thread_local std::vector<uint8_t> lv;
  if (lv.size() < static_cast<size_t>(k)) lv.resize(k);
  for (int r = r0; r < r1; r++) {
    const uint8_t* row = w + r * rowBytes;
    T::scales(row, k, s.a, s.b);
    for (int g = 0; g < groups; g++) T::levels(row, g, lv.data() + g * G);
    for (int i = 0; i < x.m; i++) {
      const int8_t* q = x.q + static_cast<size_t>(i) * x.kp;
      const float* d = x.d + static_cast<size_t>(i) * x.ds;
      const float* u = x.u + static_cast<size_t>(i) * x.nu;
      float acc = 0;
      for (int g = 0; g < groups; g++) {
        int32_t sum = 0;
        for (int j = g * G; j < (g + 1) * G; j++) sum += lv[j] * q[j];
        acc += static_cast<float>(sum) * (s.a[g] * d[g * G / x.ablock]) + s.b[g] * u[g];
      }
      y[static_cast<size_t>(i) * ldy + r] = acc;
    }
  }
}

#if NS_X86

// ---- AVX-512 with VNNI: one vpdpbusd multiplies 64 levels by 64 activations into 16 lane sums.

/** Adds the offsets Σ_g b[g]·u[g] (u = d·Σq per group, zero padded to nu, a multiple of 16) and stores the sums as y[i0 + i, r]. */
template <int MI>
NS_TARGET_AVX512 inline void finishRows512(__m512* acc, const RowScales& s, const Act& x, int i0, float* y, size_t ldy, int r) {
  for (int j = 0; j < x.nu; j += 16) {
    const __m512 b = _mm512_loadu_ps(s.b + j);
    for (int i = 0; i < MI; i++) acc[i] = _mm512_fmadd_ps(b, _mm512_loadu_ps(x.u + static_cast<size_t>(i0 + i) * x.nu + j), acc[i]);
  }
  for (int i = 0; i < MI; i++) y[static_cast<size_t>(i0 + i) * ldy + r] = _mm512_reduce_add_ps(acc[i]);
}

/**
 * One weight row against MI activation rows i0 .. i0+MI-1, all in registers: per 64 values, the
 * levels are unpacked once and each activation row costs a vpdpbusd, a conversion and two
 * multiplies (by its block scales, then by the weights' group scales).
 */
template <class T, int MI>
NS_TARGET_AVX512 void rowBlock512(const uint8_t* row, RowScales& s, const Act& x, int i0, float* y, size_t ldy, int r) {
  const int nv = x.k / 64;
  const int half = (x.k % 64) != 0;
  const size_t qs = x.kp, ls = x.kp / 4;
  const int8_t* q = x.q + static_cast<size_t>(i0) * qs;
  const float* lanes = x.lanes + static_cast<size_t>(i0) * ls;
  __m512 acc[MI];
  for (int i = 0; i < MI; i++) acc[i] = _mm512_setzero_ps();
  for (int v = 0; v < nv + half; v++) {
    // The block scales come from the headers of the blocks at hand: gathered ahead for the whole row
    // (as the tiles do), they would touch its cache lines out of order, and from memory the row
    // then streams at half the speed.
    const uint8_t* p = row + 2 * v * T::kBytes;
    __m512 al;
    if constexpr (T::kOffset != 0) {
      al = T::blockScales512(p, v < nv);
    } else {
      al = T::blockPair512(p, v < nv, s.b + 2 * v);  // (the offsets rewritten alike by later groups of rows)
    }
    const __m512i lv = T::pairLevels512(p, v < nv);
    for (int i = 0; i < MI; i++) {
      const __m512i xq = _mm512_loadu_si512(q + i * qs + 64 * v);
      // A constant level offset enters the integer sum through its starting value (Act::init).
      const __m512i start = T::kOffset != 0 ? _mm512_loadu_si512(x.init + (i0 + i) * ls + 16 * v) : _mm512_setzero_si512();
      const __m512i sum = _mm512_dpbusd_epi32(start, lv, xq);
      const __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), _mm512_loadu_ps(lanes + i * ls + 16 * v));
      acc[i] = _mm512_fmadd_ps(t, al, acc[i]);
    }
  }
  if constexpr (T::kOffset != 0) {
    for (int i = 0; i < MI; i++) y[static_cast<size_t>(i0 + i) * ldy + r] = _mm512_reduce_add_ps(acc[i]);
  } else {
    finishRows512<MI>(acc, s, x, i0, y, ldy, r);
  }
}

/**
 * The K-quants (activations scaled per 256): their sub-block scales are small integers (6-bit,
 * or Q6_K's signed 8-bit), so they are applied in integer arithmetic and a super-block costs one
 * float multiply-add per activation row. Each 4-value lane sum of a vpdpbusd fits in 16 bits (at
 * most 4·63·127), so two vectors pack into one of 16-bit lanes and a vpdpwssd against the lanes'
 * scales (from T::header512, in the pack's lane order) sums scale × lane sum into 32 bits.
 */
template <class T, int MI>
NS_TARGET_AVX512 void rowBlock512K(const uint8_t* row, const RowScales& s, const Act& x, int i0, float* y, size_t ldy, int r) {
  const int nsb = x.k / 256;
  const size_t qs = x.kp, ds = x.ds;
  const int8_t* q = x.q + static_cast<size_t>(i0) * qs;
  const float* d = x.d + static_cast<size_t>(i0) * ds;
  __m512 acc[MI];
  for (int i = 0; i < MI; i++) acc[i] = _mm512_setzero_ps();
  for (int sb = 0; sb < nsb; sb++) {
    const uint8_t* p = row + sb * T::kBytes;
    __m512i lv[4];
    for (int v = 0; v < 4; v++) lv[v] = T::sbLevels512(p, v);
    __m512i s01, s23;
    const __m512 dw = _mm512_set1_ps(T::header512(p, &s01, &s23, s.b + sb * (256 / T::kGroup)));
    for (int i = 0; i < MI; i++) {
      const int8_t* xq = q + i * qs + 256 * sb;
      const __m512i z = _mm512_setzero_si512();
      const __m512i p0 = _mm512_dpbusd_epi32(z, lv[0], _mm512_loadu_si512(xq));
      const __m512i p1 = _mm512_dpbusd_epi32(z, lv[1], _mm512_loadu_si512(xq + 64));
      const __m512i p2 = _mm512_dpbusd_epi32(z, lv[2], _mm512_loadu_si512(xq + 128));
      const __m512i p3 = _mm512_dpbusd_epi32(z, lv[3], _mm512_loadu_si512(xq + 192));
      __m512i is = _mm512_dpwssd_epi32(z, _mm512_packs_epi32(p0, p1), s01);
      is = _mm512_dpwssd_epi32(is, _mm512_packs_epi32(p2, p3), s23);
      acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(is), _mm512_set1_ps(d[i * ds + sb])), dw, acc[i]);
    }
  }
  finishRows512<MI>(acc, s, x, i0, y, ldy, r);
}

template <class T>
NS_TARGET_AVX512 void rowsK512(const uint8_t* w, size_t rowBytes, int r0, int r1, const Act& x, float* y, size_t ldy) {
  const int groups = x.k / T::kGroup;
  RowScales s(groups, x.nu);
  for (int r = r0; r < r1; r++) {
    const uint8_t* row = w + r * rowBytes;
    rowGroups<6>(x.m, [&](auto mi, int i0) { rowBlock512K<T, mi>(row, s, x, i0, y, ldy, r); });
  }
}

template <class T>
NS_TARGET_AVX512 void intRows512(const uint8_t* w, size_t rowBytes, int r0, int r1, const Act& x, float* y, size_t ldy) {
  if constexpr (T::kBlock == 256) {
    rowsK512<T>(w, rowBytes, r0, r1, x, y, ldy);
  } else {
    const int groups = x.k / T::kGroup;
    RowScales s(groups, x.nu);  // filled by the first group of activation rows
    for (int r = r0; r < r1; r++) {
      const uint8_t* row = w + r * rowBytes;
      rowGroups<6>(x.m, [&](auto mi, int i0) { rowBlock512<T, mi>(row, s, x, i0, y, ldy, r); });
    }
  }
}

// ---- AVX-512 with VNNI, many activation rows (prompts): a band of 32 weight rows is unpacked once
// into a tile whose vectors hold 4 consecutive levels of 16 rows, so that a vpdpbusd with 4
// activations broadcast to every lane advances 16 rows' sums at once and the group scales apply
// per lane (one scale per row) with no shuffling. Each band is then multiplied with every
// activation row, 6 at a time, all from the L2 cache.

constexpr int kTileRows = 32;

/** A band's unpacked weights: levels [kp/4][32 rows][4], scales a and offsets b [groups][32 rows]. */
struct Tile {
  uint8_t* levels;
  float* a;
  float* b;
};

/** Transposes 16 rows of 16 dwords in place: r[j] gets dword j of every row, row order in lanes. */
NS_TARGET_AVX512 inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // Now r[4q + c] holds in 128-bit lane l dword 4l + c of rows 4q .. 4q + 3; a 4×4 transpose of
  // the 128-bit lanes of r[c], r[4 + c], r[8 + c], r[12 + c] finishes the job.
  for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
    r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
  }
}

/** Unpacks weight rows r0 .. r0 + n − 1 (n ≤ 32; missing rows read as zeros) into a tile. */
template <class T>
NS_TARGET_AVX512 void packTile(const uint8_t* w, size_t rowBytes, int r0, int n, int k, int kp, const Tile& t) {
  const int groups = k / T::kGroup, nv = kp / 64;
  RowScales s(groups, groups);
  for (int rr = 0; rr < kTileRows; rr++) {
    if (rr < n) T::scales512(w + (r0 + rr) * rowBytes, k, s.a, s.b);
    for (int g = 0; g < groups; g++) {
      t.a[g * kTileRows + rr] = rr < n ? s.a[g] : 0.0f;
      t.b[g * kTileRows + rr] = rr < n ? s.b[g] : 0.0f;
    }
  }
  __m512i r[16];
  for (int half = 0; half < 2; half++) {
    for (int v = 0; v < nv; v++) {
      for (int j = 0; j < 16; j++) {
        const int rr = 16 * half + j;
        if (rr >= n) {
          r[j] = _mm512_setzero_si512();
        } else {
          const uint8_t* row = w + (r0 + rr) * rowBytes;
          r[j] = 64 * (v + 1) <= k ? T::levels512(row, v) : T::levels512Half(row, v);
        }
      }
      transpose16(r);
      for (int j = 0; j < 16; j++) _mm512_storeu_si512(t.levels + (16 * v + j) * 4 * kTileRows + 64 * half, r[j]);
    }
  }
}

/** Activation rows i0 .. i0 + NX − 1 against a tile: y[i, r0 + rr] for rr < n; meanwhile `prefetch` is brought to L2. */
template <int G, int NX>
NS_TARGET_AVX512 void tileBlock(const Tile& t, const Act& x, int i0, float* y, size_t ldy, int r0, int n, const uint8_t* prefetch, size_t prefetchBytes) {
  __m512 acc[NX][2];
  for (int i = 0; i < NX; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  const int groups = x.k / G;
  const int8_t* q = x.q + static_cast<size_t>(i0) * x.kp;
  // Lines of `prefetch` to ask for per group, spreading the requests over the whole call.
  const size_t step = (prefetchBytes / groups + 64) & ~size_t(63);
  for (int g = 0; g < groups; g++) {
    for (size_t o = g * step; o < std::min(prefetchBytes, (g + 1) * step); o += 64) _mm_prefetch(reinterpret_cast<const char*>(prefetch + o), _MM_HINT_T1);
    __m512i sum[NX][2];
    for (int i = 0; i < NX; i++) sum[i][0] = sum[i][1] = _mm512_setzero_si512();
    for (int kg = 0; kg < G / 4; kg++) {
      const int p = g * (G / 4) + kg;
      const __m512i w0 = _mm512_loadu_si512(t.levels + p * 4 * kTileRows), w1 = _mm512_loadu_si512(t.levels + p * 4 * kTileRows + 64);
      for (int i = 0; i < NX; i++) {
        int32_t four;
        __builtin_memcpy(&four, q + static_cast<size_t>(i) * x.kp + 4 * p, 4);
        const __m512i xb = _mm512_set1_epi32(four);
        sum[i][0] = _mm512_dpbusd_epi32(sum[i][0], w0, xb);
        sum[i][1] = _mm512_dpbusd_epi32(sum[i][1], w1, xb);
      }
    }
    const __m512 a0 = _mm512_loadu_ps(t.a + g * kTileRows), a1 = _mm512_loadu_ps(t.a + g * kTileRows + 16);
    const __m512 b0 = _mm512_loadu_ps(t.b + g * kTileRows), b1 = _mm512_loadu_ps(t.b + g * kTileRows + 16);
    for (int i = 0; i < NX; i++) {
      const __m512 dx = _mm512_set1_ps(x.d[static_cast<size_t>(i0 + i) * x.ds + g * G / x.ablock]);
      const __m512 u = _mm512_set1_ps(x.u[static_cast<size_t>(i0 + i) * x.nu + g]);
      acc[i][0] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(sum[i][0]), dx), a0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(sum[i][1]), dx), a1, acc[i][1]);
      acc[i][0] = _mm512_fmadd_ps(b0, u, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(b1, u, acc[i][1]);
    }
  }
  const __mmask16 m0 = n >= 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1);
  const __mmask16 m1 = n >= 32 ? 0xffff : n <= 16 ? 0 : static_cast<__mmask16>((1u << (n - 16)) - 1);
  for (int i = 0; i < NX; i++) {
    float* yi = y + static_cast<size_t>(i0 + i) * ldy + r0;
    _mm512_mask_storeu_ps(yi, m0, acc[i][0]);
    _mm512_mask_storeu_ps(yi + 16, m1, acc[i][1]);
  }
}

/** Bytes of a tile for rows of k values (padded to kp) with `groups` scale groups. */
inline size_t tileBytes(int kp, int groups) { return static_cast<size_t>(kp) * kTileRows + 2 * sizeof(float) * groups * kTileRows + 128; }

template <class T>
NS_TARGET_AVX512 void intTiles512(const uint8_t* w, size_t rowBytes, int r0, int r1, const Act& x, float* y, size_t ldy) {
  constexpr int G = T::kGroup;
  const int groups = x.k / G;
  thread_local std::vector<uint8_t> buf;
  const size_t need = tileBytes(x.kp, groups);
  if (buf.size() < need) buf.resize(need);
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
  const Tile t{base, reinterpret_cast<float*>(base + static_cast<size_t>(x.kp) * kTileRows),
               reinterpret_cast<float*>(base + static_cast<size_t>(x.kp) * kTileRows) + groups * kTileRows};
  for (int r = r0; r < r1; r += kTileRows) {
    const int n = std::min(kTileRows, r1 - r);
    packTile<T>(w, rowBytes, r, n, x.k, x.kp, t);
    // While this band multiplies, the next one comes in from memory, a share per group of activation rows.
    const uint8_t* next = w + std::min(r + kTileRows, r1) * rowBytes;
    const size_t nextBytes = std::min(kTileRows, std::max(0, r1 - r - kTileRows)) * rowBytes;
    const size_t share = (nextBytes / ((x.m + 5) / 6) + 63) & ~size_t(63);
    rowGroups<6>(x.m, [&](auto mi, int i0) {
      const size_t from = std::min(nextBytes, (i0 / 6) * share);
      tileBlock<G, mi>(t, x, i0, y, ldy, r, n, next + from, std::min(nextBytes - from, share));
    });
  }
}

// ---- AVX2: pmaddubsw forms 16-bit sums of level·activation pairs (never saturating: levels ≤ 63,
// or the signed Q8_0 weights through the sign trick), pmaddwd widens them to 8 lane sums per 32 values.

/** Bytes ahead of the current block that the per-row AVX2 kernels prefetch (the next rows of a task). */
constexpr int kPrefetch256 = 1024;

/** Lane sums of 32 level·activation products: unsigned levels, or signed ones through the sign trick. */
template <bool Signed>
NS_TARGET_AVX2 inline __m256i dot256(__m256i lv, __m256i xq) {
  __m256i pairs;
  if constexpr (Signed) {
    pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(lv, lv), _mm256_sign_epi8(xq, lv));
  } else {
    pairs = _mm256_maddubs_epi16(lv, xq);
  }
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/**
 * The 32-value types on AVX2, one weight row against MI activation rows. Each block's scale is read
 * where the block is (a separate pass over the row's headers first cost as much as the products at
 * one activation row). Types whose offset is a fixed number of levels (Q4_0 −8, Q5_0 −16, Q8_0 −128)
 * take their levels as signed numbers, so that the offset needs no term of its own; the _1 types add
 * their stored min times the block's activation sum.
 */
template <class T, int MI>
NS_TARGET_AVX2 void rowBlock256(const uint8_t* row, const Act& x, int i0, float* y, size_t ldy, int r) {
  constexpr bool kSigned = T::kOffset != 0;
  const int nh = x.k / 32;
  const size_t qs = x.kp, ds = x.ds;
  const int8_t* q = x.q + static_cast<size_t>(i0) * qs;
  const float* d = x.d + static_cast<size_t>(i0) * ds;
  const float* u = x.u + static_cast<size_t>(i0) * x.nu;
  __m256 acc[MI];
  float mins[MI];
  for (int i = 0; i < MI; i++) {
    acc[i] = _mm256_setzero_ps();
    mins[i] = 0.0f;
  }
  for (int h = 0; h < nh; h++) {
    const uint8_t* p = row + h * T::kBytes;
    _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetch256), _MM_HINT_T0);  // as in rowBlock256K
    __m256i lv = T::levels256(row, h);
    if constexpr (kSigned && !T::kSigned256) lv = _mm256_add_epi8(lv, _mm256_set1_epi8(static_cast<char>(T::kOffset)));
    const __m256 al = _mm256_set1_ps(_cvtsh_ss(load16(p)));
    for (int i = 0; i < MI; i++) {
      const __m256i sum = dot256<kSigned>(lv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i * qs + 32 * h)));
      const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(sum), _mm256_broadcast_ss(d + i * ds + h));
      acc[i] = _mm256_fmadd_ps(t, al, acc[i]);
    }
    if constexpr (!kSigned) {
      const float m = _cvtsh_ss(load16(p + 2));
      for (int i = 0; i < MI; i++) mins[i] += m * u[i * x.nu + h];
    }
  }
  for (int i = 0; i < MI; i++) {
    __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1));
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_movehdup_ps(v));
    y[static_cast<size_t>(i0 + i) * ldy + r] = _mm_cvtss_f32(v) + mins[i];
  }
}

/**
 * The K-quants on AVX2, as rowBlock512K does on AVX-512: their sub-block scales are small integers,
 * so pmaddwd multiplies the 16-bit pair sums by them (T::header256: one 16-bit scale per lane)
 * instead of by one, and a super-block's sums stay integer until a single float multiply-add per
 * activation row. Per 32 values and activation row that is a load, pmaddubsw, pmaddwd and an add.
 * Sums stay in 32 bits: a pair sum is at most 2·63·127, a scale at most 127 in magnitude. The
 * header is read once per super-block for the scales and the offsets b alike (at one activation row,
 * decoding, a second pass over the headers per weight row would cost a third of the work).
 */
template <class T, int MI>
NS_TARGET_AVX2 void rowBlock256K(const uint8_t* row, const Act& x, int i0, float* y, size_t ldy, int r) {
  constexpr int G = 256 / T::kGroup;  // scale groups per super-block
  const int nsb = x.k / 256;
  const size_t qs = x.kp, ds = x.ds, nu = x.nu;
  const int8_t* q = x.q + static_cast<size_t>(i0) * qs;
  const float* d = x.d + static_cast<size_t>(i0) * ds;
  const float* u = x.u + static_cast<size_t>(i0) * nu;
  __m256 acc[MI];
  for (int i = 0; i < MI; i++) acc[i] = _mm256_setzero_ps();
  for (int sb = 0; sb < nsb; sb++) {
    const uint8_t* p = row + sb * T::kBytes;
    // Decoding streams each weight once from memory: ask for the bytes ~1 KiB ahead (the next rows of
    // this task) while this super-block computes.
    for (int o = 0; o < T::kBytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetch256 + o), _MM_HINT_T0);
    __m256i sv[8];
    alignas(32) float b[G];
    const float dw = T::header256(p, sv, b);
    __m256i is[MI];
    for (int i = 0; i < MI; i++) is[i] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int h = 0; h < 8; h++) {
      const __m256i lv = T::sbLevels256(p, h);
      for (int i = 0; i < MI; i++) {
        const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i * qs + 256 * sb + 32 * h));
        is[i] = _mm256_add_epi32(is[i], _mm256_madd_epi16(_mm256_maddubs_epi16(lv, xq), sv[h]));
      }
    }
    for (int i = 0; i < MI; i++) acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[i]), _mm256_set1_ps(d[i * ds + sb] * dw), acc[i]);
    // The offsets: Σ_g b[g]·u[g] over the super-block's groups (u = d·Σq of the activations per group).
    for (int j = 0; j < G; j += 8) {
      const __m256 bv = _mm256_load_ps(b + j);
      for (int i = 0; i < MI; i++) acc[i] = _mm256_fmadd_ps(bv, _mm256_loadu_ps(u + i * nu + sb * G + j), acc[i]);
    }
  }
  for (int i = 0; i < MI; i++) {
    __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1));
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_movehdup_ps(v));
    y[static_cast<size_t>(i0 + i) * ldy + r] = _mm_cvtss_f32(v);
  }
}

template <class T>
NS_TARGET_AVX2 void intRows256(const uint8_t* w, size_t rowBytes, int r0, int r1, const Act& x, float* y, size_t ldy) {
  if constexpr (T::kBlock == 256) {
    for (int r = r0; r < r1; r++) {
      const uint8_t* row = w + r * rowBytes;
      rowGroups<6>(x.m, [&](auto mi, int i0) { rowBlock256K<T, mi>(row, x, i0, y, ldy, r); });
    }
  } else {
    for (int r = r0; r < r1; r++) {
      const uint8_t* row = w + r * rowBytes;
      rowGroups<4>(x.m, [&](auto mi, int i0) { rowBlock256<T, mi>(row, x, i0, y, ldy, r); });
    }
  }
}

// ---- AVX2, K-quants, many activation rows (prompts). AVX2 has no vpdpbusd, and the per-row kernel
// spends two multiplies (pmaddubsw, pmaddwd) per 32 values and activation row. Here a band of 8
// weight rows is unpacked once into a tile whose vectors hold 4 consecutive levels of each of the 8
// rows, so that one pmaddubsw with 4 activations broadcast advances 8 rows; its 16-bit pair sums
// are added in 16 bits for as many steps as cannot overflow (T::kMaxLevel: 8 steps of Q4_K levels,
// 4 of Q5_K, 2 of Q6_K), and only then does a pmaddwd apply the rows' integer sub-block scales and
// widen to 32 bits. About 1.2–1.5 multiplies per 32 values instead of 2.

constexpr int kBand256 = 8;

/** A band's unpacked K-quant weights: levels [kp/4][8 rows][4], 16-bit scales [groups][8 rows][2], offsets b [groups][8 rows], d [super-blocks][8 rows]. */
struct Tile256 {
  uint8_t* levels;
  int16_t* sc;
  float* b;
  float* d;
};

/** Transposes 8 rows of 8 dwords: r[j] gets dword j of every row, row order in lanes. */
NS_TARGET_AVX2 inline void transpose8(__m256i r[8]) {
  __m256i t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  __m256i u[8];
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // u[4q + c] holds in 128-bit lane l dword 4l + c of rows 4q .. 4q + 3.
  for (int c = 0; c < 4; c++) {
    r[c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x20);
    r[4 + c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x31);
  }
}

/** Unpacks weight rows r0 .. r0 + n − 1 (n ≤ 8; missing rows read as zeros) into a tile. */
template <class T>
NS_TARGET_AVX2 void packTile256(const uint8_t* w, size_t rowBytes, int r0, int n, int k, const Tile256& t) {
  constexpr int G = 256 / T::kGroup;
  const int nsb = k / 256;
  int16_t sc[G];
  float b[G];
  for (int rr = 0; rr < kBand256; rr++) {
    for (int sb = 0; sb < nsb; sb++) {
      float d = 0.0f;
      if (rr < n) {
        d = T::intHeader(w + (r0 + rr) * rowBytes + sb * T::kBytes, sc, b);
      } else {
        std::fill(sc, sc + G, 0);
        std::fill(b, b + G, 0.0f);
      }
      t.d[sb * kBand256 + rr] = d;
      for (int g = 0; g < G; g++) {
        t.sc[((sb * G + g) * kBand256 + rr) * 2] = t.sc[((sb * G + g) * kBand256 + rr) * 2 + 1] = sc[g];
        t.b[(sb * G + g) * kBand256 + rr] = b[g];
      }
    }
  }
  __m256i r[8];
  for (int sb = 0; sb < nsb; sb++) {
    for (int h = 0; h < 8; h++) {
      for (int rr = 0; rr < kBand256; rr++) r[rr] = rr < n ? T::sbLevels256(w + (r0 + rr) * rowBytes + sb * T::kBytes, h) : _mm256_setzero_si256();
      transpose8(r);
      for (int j = 0; j < 8; j++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(t.levels + ((sb * 8 + h) * 8 + j) * 32), r[j]);
    }
  }
}

/** Activation rows i0 .. i0 + NX − 1 against a tile: y[i, r0 + rr] for rr < n. */
template <class T, int NX>
NS_TARGET_AVX2 void tileBlock256(const Tile256& t, const Act& x, int i0, float* y, size_t ldy, int r0, int n) {
  constexpr int G = 256 / T::kGroup, steps = T::kGroup / 4;
  // Steps whose 16-bit sums cannot overflow: each lane adds two products of at most kMaxLevel·127.
  constexpr int flush = std::min(steps, 32767 / (2 * T::kMaxLevel * 127));
  static_assert(steps % flush == 0, "a group is a whole number of flushes");
  const int nsb = x.k / 256;
  const size_t qs = x.kp;
  __m256 acc[NX];
  for (int i = 0; i < NX; i++) acc[i] = _mm256_setzero_ps();
  for (int sb = 0; sb < nsb; sb++) {
    __m256i is[NX];
    for (int i = 0; i < NX; i++) is[i] = _mm256_setzero_si256();
    for (int g = 0; g < G; g++) {
      const __m256i scv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.sc + (sb * G + g) * 2 * kBand256));
      for (int f = 0; f < steps; f += flush) {
        __m256i s16[NX];
        for (int i = 0; i < NX; i++) s16[i] = _mm256_setzero_si256();
        for (int st = 0; st < flush; st++) {
          const int step = sb * 64 + g * steps + f + st;
          const __m256i tv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.levels + step * 32));
          for (int i = 0; i < NX; i++) {
            int32_t four;
            __builtin_memcpy(&four, x.q + (i0 + i) * qs + 4 * step, 4);
            s16[i] = _mm256_add_epi16(s16[i], _mm256_maddubs_epi16(tv, _mm256_set1_epi32(four)));
          }
        }
        for (int i = 0; i < NX; i++) is[i] = _mm256_add_epi32(is[i], _mm256_madd_epi16(s16[i], scv));
      }
      const __m256 bv = _mm256_loadu_ps(t.b + (sb * G + g) * kBand256);
      for (int i = 0; i < NX; i++) acc[i] = _mm256_fmadd_ps(bv, _mm256_set1_ps(x.u[static_cast<size_t>(i0 + i) * x.nu + sb * G + g]), acc[i]);
    }
    const __m256 dw = _mm256_loadu_ps(t.d + sb * kBand256);
    for (int i = 0; i < NX; i++) acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[i]), _mm256_mul_ps(dw, _mm256_set1_ps(x.d[static_cast<size_t>(i0 + i) * x.ds + sb])), acc[i]);
  }
  for (int i = 0; i < NX; i++) {
    float* yi = y + static_cast<size_t>(i0 + i) * ldy + r0;
    if (n == kBand256) {
      _mm256_storeu_ps(yi, acc[i]);
    } else {
      alignas(32) float v[kBand256];
      _mm256_store_ps(v, acc[i]);
      for (int rr = 0; rr < n; rr++) yi[rr] = v[rr];
    }
  }
}

template <class T>
NS_TARGET_AVX2 void intTiles256(const uint8_t* w, size_t rowBytes, int r0, int r1, const Act& x, float* y, size_t ldy) {
  static_assert(T::kBlock == 256, "AVX2 tiles are for the K-quants");
  constexpr int G = 256 / T::kGroup;
  const int nsb = x.k / 256, groups = nsb * G;
  thread_local std::vector<uint8_t> buf;
  const size_t levelBytes = static_cast<size_t>(x.k) * kBand256;
  const size_t need = levelBytes + groups * kBand256 * (2 * sizeof(int16_t) + sizeof(float)) + nsb * kBand256 * sizeof(float) + 64;
  if (buf.size() < need) buf.resize(need);
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 31) & ~uintptr_t(31));
  Tile256 t;
  t.levels = base;
  t.sc = reinterpret_cast<int16_t*>(base + levelBytes);
  t.b = reinterpret_cast<float*>(t.sc + groups * kBand256 * 2);
  t.d = t.b + groups * kBand256;
  for (int r = r0; r < r1; r += kBand256) {
    const int n = std::min(kBand256, r1 - r);
    packTile256<T>(w, rowBytes, r, n, x.k, t);
    rowGroups<4>(x.m, [&](auto mi, int i0) { tileBlock256<T, mi>(t, x, i0, y, ldy, r, n); });
  }
}

#endif  // NS_X86

/** The kernel table entry of traits T. */
template <class T>
void fillInt(Kernels& k, DequantFn dequantize) {
  k.dequantize = dequantize;
  k.intRows[static_cast<int>(Isa::Portable)] = intRowsPortable<T>;
#if NS_X86
  k.intRows[static_cast<int>(Isa::Avx2)] = intRows256<T>;
  k.intRows[static_cast<int>(Isa::Avx512)] = intRows512<T>;
  k.intTiles512 = intTiles512<T>;
  if constexpr (T::kBlock == 256) k.intTiles256 = intTiles256<T>;
#endif
}

}  // namespace ns::quant
