// The 256-value super-block types: Q4_K, Q5_K, Q6_K (layouts in src/kernels/quant/q*_k.ts).
// Each is decoded exactly as ggml does, and described to the integer kernels (dot.h) as levels and
// per-group scales:
//   Q4_K  f16 d, f16 dmin, 12 bytes of 6-bit scales sc and mins m for eight 32-value sub-blocks,
//         128 bytes of nibbles (byte l of chunk c: value 64c + l low, 64c + 32 + l high)
//         w = (d·sc)·q − dmin·m
//   Q5_K  the Q4_K header, 32 bytes of fifth bits (bit 2c / 2c + 1 of byte l for the low / high
//         nibble of chunk c), nibbles as Q4_K
//   Q6_K  128 bytes of low nibbles, 64 bytes of 2-bit pairs, 16 signed 8-bit scales (one per 16
//         values), f16 d last; w = (d·sc)·(q − 32), levels 0..63
#include "dot.h"

namespace ns::quant {

namespace {

/** Scale and min j (0..7) of a Q4_K/Q5_K header whose 12 scale bytes start at s. */
inline void kScaleMin(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

/**
 * What Q4_K and Q5_K share: the header, 32-value sub-blocks. Qh < 0: no fifth bits.
 *
 * One 64-byte load of nibbles holds chunks c and c + 1, so masking it gives the low-nibble
 * sub-blocks 2c and 2c + 2 and shifting it the high-nibble ones 2c + 1 and 2c + 3. The kernels
 * take the levels in that order, position group g of each 128 values holding sub-block σ(g) with
 * σ = (0, 2, 1, 3): the middle two 32-value quarters swapped, and the activations are swapped to
 * match when quantized (kSwap).
 */
template <int Bytes, int Qh, int Qs>
struct KMin {
  static constexpr int kBlock = 256, kBytes = Bytes, kGroup = 32;
  static constexpr bool kSwap = true;
  static constexpr int kMaxLevel = Qh >= 0 ? 31 : 15;

  /** The sub-block at position group g of a super-block. */
  static constexpr int sigma(int g) { return (g & 4) | ((g & 1) << 1) | ((g >> 1) & 1); }

  static void scales(const uint8_t* row, int k, float* a, float* b) {
    for (int sb = 0; sb < k / 256; sb++) {
      const uint8_t* p = row + sb * Bytes;
      const float d = halfToFloat(load16(p)), dmin = halfToFloat(load16(p + 2));
      for (int g = 0; g < 8; g++) {
        int sc, m;
        kScaleMin(p + 4, sigma(g), &sc, &m);
        a[8 * sb + g] = d * static_cast<float>(sc);
        b[8 * sb + g] = -(dmin * static_cast<float>(m));
      }
    }
  }

  /** The integer scales sc and offsets b = −dmin·m of the 8 position groups of the super-block at p; returns d. */
  static float intHeader(const uint8_t* p, int16_t* sc, float* b) {
    const float dmin = halfToFloat(load16(p + 2));
    for (int g = 0; g < 8; g++) {
      int s, m;
      kScaleMin(p + 4, sigma(g), &s, &m);
      sc[g] = static_cast<int16_t>(s);
      b[g] = -(dmin * static_cast<float>(m));
    }
    return halfToFloat(load16(p));
  }

  /** Levels of sub-block j of the super-block at p, in value order. */
  static void subLevels(const uint8_t* p, int j, uint8_t* q) {
    const int c = j / 2, shift = 4 * (j & 1);
    for (int l = 0; l < 32; l++) {
      q[l] = (p[Qs + 32 * c + l] >> shift) & 15;
      if constexpr (Qh >= 0) q[l] |= ((p[Qh + l] >> j) & 1) << 4;
    }
  }

  /** Levels of position group g. */
  static void levels(const uint8_t* row, int g, uint8_t* q) { subLevels(row + (g / 8) * Bytes, sigma(g % 8), q); }

  static void dequantize(const uint8_t* src, float* dst, size_t n) {
    uint8_t q[32];
    for (size_t sb = 0; sb < n / 256; sb++) {
      const uint8_t* p = src + sb * Bytes;
      const float d = halfToFloat(load16(p)), dmin = halfToFloat(load16(p + 2));
      for (int j = 0; j < 8; j++, dst += 32) {
        int sc, m;
        kScaleMin(p + 4, j, &sc, &m);
        // Both products are exact in float32: the one rounding is the difference's, as in ggml.
        const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
        subLevels(p, j, q);
        for (int l = 0; l < 32; l++) dst[l] = d1 * static_cast<float>(q[l]) - m1;
      }
    }
  }

#if NS_X86
  /** The 16 six-bit numbers of a header (8 scales, then 8 mins, sub-block order) as bytes, unpacked with 32-bit word operations. */
  static __attribute__((always_inline)) inline void unpackHeader(const uint8_t* p, uint64_t* sc, uint64_t* mn) {
    const uint32_t a = load32(p + 4), b = load32(p + 8), c = load32(p + 12);
    *sc = (a & 0x3f3f3f3f) | static_cast<uint64_t>((c & 0x0f0f0f0f) | (((a >> 6) & 0x03030303) << 4)) << 32;
    *mn = (b & 0x3f3f3f3f) | static_cast<uint64_t>(((c >> 4) & 0x0f0f0f0f) | (((b >> 6) & 0x03030303) << 4)) << 32;
  }

  NS_TARGET_AVX512 static void scales512(const uint8_t* row, int k, float* a, float* b) {
    // sub-block scales then mins, to position order
    const __m512i order = _mm512_set_epi32(15, 13, 14, 12, 11, 9, 10, 8, 7, 5, 6, 4, 3, 1, 2, 0);
    for (int sb = 0; sb < k / 256; sb++) {
      const uint8_t* p = row + sb * Bytes;
      uint64_t sc, mn;
      unpackHeader(p, &sc, &mn);
      const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_set_epi64x(static_cast<long long>(mn), static_cast<long long>(sc))));
      // [d ×8, −dmin ×8]: both products exact, as in scales().
      const __m512 dd = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(load32(p) ^ 0x80000000u))));
      const __m512 f = _mm512_mul_ps(_mm512_permutexvar_ps(order, v), _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0), dd));
      _mm256_storeu_ps(a + 8 * sb, _mm512_castps512_ps256(f));
      _mm256_storeu_ps(b + 8 * sb, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1)));
    }
  }

  /**
   * What the K kernel (dot.h, rowBlock512K) needs of the super-block at p: the sub-block scales as 16-bit
   * lanes in the order of packs(p0, p1) and packs(p2, p3), p_v the lane sums of the levels of vector
   * v, and d; the offsets −dmin·m of its 8 position groups go to b. 128-bit lane L of packs(p0, p1)
   * holds lanes 4L .. 4L + 3 of p0 (sub-block 0 for L < 2, else 2) then those of p1 (1, else 3).
   */
  NS_TARGET_AVX512 static float header512(const uint8_t* p, __m512i* s01, __m512i* s23, float* b) {
    uint64_t sc, mn;
    unpackHeader(p, &sc, &mn);
    const __m512i w = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(sc))));
    *s01 = _mm512_permutexvar_epi16(_mm512_set_epi64(0x0003000300030003, 0x0002000200020002, 0x0003000300030003, 0x0002000200020002,
                                                     0x0001000100010001, 0x0000000000000000, 0x0001000100010001, 0x0000000000000000), w);
    *s23 = _mm512_permutexvar_epi16(_mm512_set_epi64(0x0007000700070007, 0x0006000600060006, 0x0007000700070007, 0x0006000600060006,
                                                     0x0005000500050005, 0x0004000400040004, 0x0005000500050005, 0x0004000400040004), w);
    const __m256 m8 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(mn))));
    const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(load32(p) ^ 0x80000000u)));
    _mm256_storeu_ps(b, _mm256_mul_ps(_mm256_permutevar8x32_ps(m8, _mm256_set_epi32(7, 5, 6, 4, 3, 1, 2, 0)),
                                      _mm256_permutevar8x32_ps(_mm256_castps128_ps256(dd), _mm256_set1_epi32(1))));
    return _mm_cvtss_f32(dd);
  }

  /** Levels of vector vv = 2c + h of the super-block at p: the nibbles h of chunks 2c and 2c + 1 (sub-blocks 4c + h, 4c + 2 + h). */
  NS_TARGET_AVX512 static __m512i sbLevels512(const uint8_t* p, int vv) {
    const int c = vv / 2, h = vv & 1;
    __m512i z = _mm512_loadu_si512(p + Qs + 64 * c);
    if (h) z = _mm512_srli_epi16(z, 4);
    z = _mm512_and_si512(z, _mm512_set1_epi8(15));
    if constexpr (Qh >= 0) {
      // Sub-block j's fifth bits are bit j of qh[0..31].
      const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + Qh)));
      const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << (4 * c + h))), _mm256_set1_epi8(static_cast<char>(1 << (4 * c + 2 + h))), 1);
      z = _mm512_mask_add_epi8(z, _mm512_test_epi8_mask(qh, bit), z, _mm512_set1_epi8(16));
    }
    return z;
  }
  NS_TARGET_AVX512 static __m512i levels512(const uint8_t* row, int v) { return sbLevels512(row + (v / 4) * Bytes, v % 4); }
  NS_TARGET_AVX512 static __m512i levels512Half(const uint8_t* row, int v) { return levels512(row, v); }

  /**
   * AVX2 K kernel (dot.h, rowBlock256K): the integer scale of each position group h of the super-block
   * at p as sixteen 16-bit lanes (a byte shuffle of the header's scales, zero-extended), the offsets
   * b = −dmin·m of its 8 position groups, and d.
   */
  NS_TARGET_AVX2 static float header256(const uint8_t* p, __m256i* sv, float* b) {
    uint64_t sc, mn;
    unpackHeader(p, &sc, &mn);
    const __m256i bytes = _mm256_broadcastsi128_si256(_mm_cvtsi64_si128(static_cast<long long>(sc)));
#pragma GCC unroll 8
    for (int h = 0; h < 8; h++) sv[h] = _mm256_shuffle_epi8(bytes, _mm256_set1_epi16(static_cast<short>(0x8000 | sigma(h))));
    const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(load32(p) ^ 0x80000000u)));  // d, −dmin
    const __m256 m8 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(mn))));
    _mm256_store_ps(b, _mm256_mul_ps(_mm256_permutevar8x32_ps(m8, _mm256_set_epi32(7, 5, 6, 4, 3, 1, 2, 0)),
                                     _mm256_permutevar8x32_ps(_mm256_castps128_ps256(dd), _mm256_set1_epi32(1))));
    return _mm_cvtss_f32(dd);
  }

  /** Position group h (0..7) of the super-block at p (AVX2). */
  NS_TARGET_AVX2 static __m256i sbLevels256(const uint8_t* p, int h) {
    const int j = sigma(h);
    __m256i z = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + Qs + 32 * (j / 2)));
    if (j & 1) z = _mm256_srli_epi16(z, 4);
    z = _mm256_and_si256(z, _mm256_set1_epi8(15));
    if constexpr (Qh >= 0) {
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + Qh));
      const __m256i bit = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(j)), _mm256_set1_epi8(1));
      z = _mm256_or_si256(z, _mm256_slli_epi16(bit, 4));
    }
    return z;
  }
#endif
};

using Q4_KT = KMin<144, -1, 16>;
using Q5_KT = KMin<176, 16, 48>;

struct Q6_KT {
  static constexpr int kBlock = 256, kBytes = 210, kGroup = 16;
  static constexpr bool kSwap = false;
  static constexpr int kMaxLevel = 63;
  static constexpr int kQl = 0, kQh = 128, kSc = 192, kD = 208;

  /** The integer scales and offsets b = −32·d·sc of the 16 groups of the super-block at p; returns d. */
  static float intHeader(const uint8_t* p, int16_t* sc, float* b) {
    const float d = halfToFloat(load16(p + kD));
    for (int g = 0; g < 16; g++) {
      sc[g] = static_cast<int8_t>(p[kSc + g]);
      b[g] = -32 * (d * static_cast<float>(sc[g]));
    }
    return d;
  }

  static void scales(const uint8_t* row, int k, float* a, float* b) {
    for (int sb = 0; sb < k / 256; sb++) {
      const uint8_t* p = row + sb * kBytes;
      const float d = halfToFloat(load16(p + kD));
      for (int g = 0; g < 16; g++) {
        a[16 * sb + g] = d * static_cast<float>(static_cast<int8_t>(p[kSc + g]));
        b[16 * sb + g] = -32 * a[16 * sb + g];
      }
    }
  }

  /** Levels (0..63) of group g (values 16g .. 16g + 15). */
  static void levels(const uint8_t* row, int g, uint8_t* q) {
    const uint8_t* p = row + (g / 16) * kBytes;
    for (int t = 0; t < 16; t++) {
      const int n = 16 * (g % 16) + t, h = n / 128, k = (n % 128) / 32, l = n % 32;
      const uint8_t ql = p[kQl + 64 * h + l + 32 * (k & 1)];
      q[t] = ((k < 2 ? ql : ql >> 4) & 15) | (((p[kQh + 32 * h + l] >> (2 * k)) & 3) << 4);
    }
  }

  static void dequantize(const uint8_t* src, float* dst, size_t n) {
    uint8_t q[16];
    for (size_t sb = 0; sb < n / 256; sb++) {
      const uint8_t* p = src + sb * kBytes;
      const float d = halfToFloat(load16(p + kD));
      for (int g = 0; g < 16; g++, dst += 16) {
        // d·sc and then ·(q − 32) are exact in float32, as in ggml.
        const float ds = d * static_cast<float>(static_cast<int8_t>(p[kSc + g]));
        levels(p, g, q);
        for (int t = 0; t < 16; t++) dst[t] = ds * static_cast<float>(q[t] - 32);
      }
    }
  }

#if NS_X86
  NS_TARGET_AVX512 static void scales512(const uint8_t* row, int k, float* a, float* b) {
    for (int sb = 0; sb < k / 256; sb++) {
      const uint8_t* p = row + sb * kBytes;
      const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + kSc))));
      const __m512 f = _mm512_mul_ps(sc, _mm512_set1_ps(_cvtsh_ss(load16(p + kD))));
      _mm512_storeu_ps(a + 16 * sb, f);
      _mm512_storeu_ps(b + 16 * sb, _mm512_mul_ps(f, _mm512_set1_ps(-32.0f)));
    }
  }

  /**
   * Quarter vv of the super-block at p: half h = vv / 2 holds values 128h .. 128h + 127; its
   * 64 low-nibble bytes give the first 64 of them (value order), their high nibbles the last 64,
   * and each value's 2 high bits sit in byte l of qh at bit 2k, k = (value % 128) / 32.
   */
  NS_TARGET_AVX512 static __m512i sbLevels512(const uint8_t* p, int vv) {
    const int h = vv / 2, upper = vv & 1;
    __m512i ql = _mm512_loadu_si512(p + kQl + 64 * h);
    if (upper) ql = _mm512_srli_epi16(ql, 4);
    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kQh + 32 * h)));
    // Bring bits 2k, 2k + 1 to bits 4, 5: k = 0, 1 (lower, upper 32 bytes) shift left 4, 2; k = 2, 3 right 0, 2.
    const __m512i high = upper ? _mm512_srlv_epi16(qh, _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1))
                               : _mm512_sllv_epi16(qh, _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1));
    // (ql & 15) | (high & 0x30)
    return _mm512_ternarylogic_epi32(_mm512_and_si512(ql, _mm512_set1_epi8(15)), high, _mm512_set1_epi8(0x30), 0xf8);
  }
  NS_TARGET_AVX512 static __m512i levels512(const uint8_t* row, int v) { return sbLevels512(row + (v / 4) * kBytes, v % 4); }
  NS_TARGET_AVX512 static __m512i levels512Half(const uint8_t* row, int v) { return levels512(row, v); }

  /**
   * What the K kernel needs of the super-block at p (see KMin::header512): the 16 group scales as 16-bit
   * lanes in the order of packs(p0, p1) (groups L, 4 + L in 128-bit lane L) and packs(p2, p3), and
   * d; the offsets −32·d·sc go to b.
   */
  NS_TARGET_AVX512 static float header512(const uint8_t* p, __m512i* s01, __m512i* s23, float* b) {
    const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + kSc));
    const __m512i w = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(sc));
    *s01 = _mm512_permutexvar_epi16(_mm512_set_epi64(0x0007000700070007, 0x0003000300030003, 0x0006000600060006, 0x0002000200020002,
                                                     0x0005000500050005, 0x0001000100010001, 0x0004000400040004, 0x0000000000000000), w);
    *s23 = _mm512_permutexvar_epi16(_mm512_set_epi64(0x000f000f000f000f, 0x000b000b000b000b, 0x000e000e000e000e, 0x000a000a000a000a,
                                                     0x000d000d000d000d, 0x0009000900090009, 0x000c000c000c000c, 0x0008000800080008), w);
    const float d = _cvtsh_ss(load16(p + kD));
    _mm512_storeu_ps(b, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)), _mm512_set1_ps(-32.0f * d)));
    return d;
  }

  /**
   * AVX2 K kernel (dot.h, rowBlock256K): the scales of groups 2h and 2h + 1 as the low and high eight
   * 16-bit lanes of vector h (each signed byte shuffled into both bytes of a lane, then shifted
   * down arithmetically), the offsets b = −32·d·sc of the 16 groups, and d.
   */
  NS_TARGET_AVX2 static float header256(const uint8_t* p, __m256i* sv, float* b) {
    const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + kSc));
    const __m256i bytes = _mm256_broadcastsi128_si256(sc);
#pragma GCC unroll 8
    for (int h = 0; h < 8; h++) {
      const short lo = static_cast<short>(2 * h * 0x101), hi = static_cast<short>((2 * h + 1) * 0x101);
      sv[h] = _mm256_srai_epi16(_mm256_shuffle_epi8(bytes, _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo))), 8);
    }
    const float d = _cvtsh_ss(load16(p + kD));
    const __m256 m32 = _mm256_set1_ps(-32.0f * d);
    _mm256_store_ps(b, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)), m32));
    _mm256_store_ps(b + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8))), m32));
    return d;
  }

  /** Values 32j .. 32j + 31 (j < 8) of the super-block at p, as levels 0..63 (AVX2). */
  NS_TARGET_AVX2 static __m256i sbLevels256(const uint8_t* p, int j) {
    const int h = j / 4, k = j % 4;
    __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kQl + 64 * h + 32 * (k & 1)));
    if (k >= 2) ql = _mm256_srli_epi16(ql, 4);
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kQh + 32 * h));
    const __m256i high = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k)), _mm256_set1_epi8(3));
    return _mm256_or_si256(_mm256_and_si256(ql, _mm256_set1_epi8(15)), _mm256_slli_epi16(high, 4));
  }
#endif
};

}  // namespace

void registerKQuants(Kernels* table) {
  fillInt<Q4_KT>(table[Q4_K], Q4_KT::dequantize);
  fillInt<Q5_KT>(table[Q5_K], Q5_KT::dequantize);
  fillInt<Q6_KT>(table[Q6_K], Q6_KT::dequantize);
}

}  // namespace ns::quant
