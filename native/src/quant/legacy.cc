// The 32-value block types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (layouts in src/kernels/quant/q*_*.ts).
// Each is decoded exactly as ggml does, and described to the integer kernels (dot.h) as levels and
// per-block scales:
//   Q4_0  f16 d, 16 bytes of nibbles (value j low nibble of byte j, j + 16 high)  w = d·q − 8d
//   Q4_1  f16 d, f16 m, nibbles as Q4_0                                             w = d·q + m
//   Q5_0  f16 d, u32 fifth bits (bit j for value j), nibbles as Q4_0                w = d·q − 16d
//   Q5_1  f16 d, f16 m, u32 fifth bits, nibbles                                     w = d·q + m
//   Q8_0  f16 d, 32 signed bytes; as levels q = s + 128                             w = d·q − 128d
#include "dot.h"

namespace ns::quant {

namespace {

/** The scalar decode shared by all five: `level(block, j)` and the block's (a, b) with w = a·q + b. */
template <class T>
void dequantizeBlocks(const uint8_t* src, float* dst, size_t n) {
  uint8_t q[32];
  for (size_t blk = 0; blk < n / 32; blk++, src += T::kBytes, dst += 32) {
    T::blockLevels(src, q);
    T::blockDecode(src, q, dst);
  }
}

/** Levels of a block whose 16 nibble bytes start at qs: value j low nibble of byte j, j + 16 high. */
inline void nibbleLevels(const uint8_t* qs, uint8_t* q) {
  for (int j = 0; j < 16; j++) {
    q[j] = qs[j] & 15;
    q[j + 16] = qs[j] >> 4;
  }
}

/** The same plus the fifth bits (bit j of the u32 at qh for value j). */
inline void fiveBitLevels(const uint8_t* qh, const uint8_t* qs, uint8_t* q) {
  nibbleLevels(qs, q);
  const uint32_t h = load32(qh);
  for (int j = 0; j < 32; j++) q[j] |= ((h >> j) & 1) << 4;
}

// Offsets of the fields inside a block, and the decode each type's reference (ggml) performs.

struct Q4_0T {
  static constexpr int kBlock = 32, kBytes = 18, kGroup = 32, kQs = 2;
  static constexpr bool kSigned256 = false;
  static void blockLevels(const uint8_t* b, uint8_t* q) { nibbleLevels(b + kQs, q); }
  static void blockDecode(const uint8_t* b, const uint8_t* q, float* y) {
    const float d = halfToFloat(load16(b));
    for (int j = 0; j < 32; j++) y[j] = static_cast<float>(q[j] - 8) * d;  // exact products
  }
  static void blockScales(const uint8_t* b, float* a, float* off) {
    *a = halfToFloat(load16(b));
    *off = -8 * *a;
  }
};

struct Q4_1T {
  static constexpr int kBlock = 32, kBytes = 20, kGroup = 32, kQs = 4;
  static constexpr bool kSigned256 = false;
  static void blockLevels(const uint8_t* b, uint8_t* q) { nibbleLevels(b + kQs, q); }
  static void blockDecode(const uint8_t* b, const uint8_t* q, float* y) {
    const float d = halfToFloat(load16(b)), m = halfToFloat(load16(b + 2));
    // d·q is exact, so the one rounding is the sum's, as in ggml (fused or not).
    for (int j = 0; j < 32; j++) y[j] = static_cast<float>(q[j]) * d + m;
  }
  static void blockScales(const uint8_t* b, float* a, float* off) {
    *a = halfToFloat(load16(b));
    *off = halfToFloat(load16(b + 2));
  }
};

struct Q5_0T {
  static constexpr int kBlock = 32, kBytes = 22, kGroup = 32, kQh = 2, kQs = 6;
  static constexpr bool kSigned256 = false;
  static void blockLevels(const uint8_t* b, uint8_t* q) { fiveBitLevels(b + kQh, b + kQs, q); }
  static void blockDecode(const uint8_t* b, const uint8_t* q, float* y) {
    const float d = halfToFloat(load16(b));
    for (int j = 0; j < 32; j++) y[j] = static_cast<float>(q[j] - 16) * d;
  }
  static void blockScales(const uint8_t* b, float* a, float* off) {
    *a = halfToFloat(load16(b));
    *off = -16 * *a;
  }
};

struct Q5_1T {
  static constexpr int kBlock = 32, kBytes = 24, kGroup = 32, kQh = 4, kQs = 8;
  static constexpr bool kSigned256 = false;
  static void blockLevels(const uint8_t* b, uint8_t* q) { fiveBitLevels(b + kQh, b + kQs, q); }
  static void blockDecode(const uint8_t* b, const uint8_t* q, float* y) {
    const float d = halfToFloat(load16(b)), m = halfToFloat(load16(b + 2));
    for (int j = 0; j < 32; j++) y[j] = static_cast<float>(q[j]) * d + m;
  }
  static void blockScales(const uint8_t* b, float* a, float* off) {
    *a = halfToFloat(load16(b));
    *off = halfToFloat(load16(b + 2));
  }
};

struct Q8_0T {
  static constexpr int kBlock = 32, kBytes = 34, kGroup = 32, kQs = 2;
  // AVX2 takes the signed bytes as they are (levels256), as it takes every type with a fixed level offset.
  static constexpr bool kSigned256 = true;
  static void blockLevels(const uint8_t* b, uint8_t* q) {
    for (int j = 0; j < 32; j++) q[j] = b[kQs + j] ^ 0x80;
  }
  static void blockDecode(const uint8_t* b, const uint8_t* q, float* y) {
    const float d = halfToFloat(load16(b));
    for (int j = 0; j < 32; j++) y[j] = static_cast<float>(static_cast<int>(q[j]) - 128) * d;
  }
  static void blockScales(const uint8_t* b, float* a, float* off) {
    *a = halfToFloat(load16(b));
    *off = -128 * *a;
  }
};

/** The traits dot.h wants, from a block description B. */
template <class B>
struct Legacy : B {
  using B::kBytes;
  static constexpr bool kSwap = false;
  /** b / a where the offset is a fixed number of levels; 0 for the _1 types, whose b is the stored min. */
  static constexpr int kOffset = B::kQs == 4 || B::kQs == 8 ? 0 : B::kBytes == 18 ? -8 : B::kBytes == 22 ? -16 : -128;
  static void scales(const uint8_t* row, int k, float* a, float* b) {
    for (int g = 0; g < k / 32; g++) B::blockScales(row + g * kBytes, a + g, b + g);
  }
  static void levels(const uint8_t* row, int g, uint8_t* q) { B::blockLevels(row + g * kBytes, q); }

#if NS_X86
  /**
   * The levels of the block at p (bytes 0..31 of the result) and, when `both`, of the next one (bytes
   * 32..63; else whatever the first block's bytes give, which the zero activations padding the row
   * cancel).
   */
  NS_TARGET_AVX512 static __m512i pairLevels512(const uint8_t* p, bool both) {
    if constexpr (B::kBytes == 34) {
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + B::kQs));
      const __m512i z = both ? _mm512_inserti64x4(_mm512_castsi256_si512(lo), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kBytes + B::kQs)), 1)
                             : _mm512_zextsi256_si512(lo);
      return _mm512_xor_si512(z, _mm512_set1_epi8(char(0x80)));
    } else {
      // 128-bit lanes [qs0, qs0, qs1, qs1], then lanes 1 and 3 shifted down a nibble.
      __m512i z = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + B::kQs)));
      if (both) z = _mm512_mask_broadcast_i32x4(z, 0xff00, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + kBytes + B::kQs)));
      z = _mm512_and_si512(_mm512_mask_srli_epi16(z, 0xff00ff00u, z, 4), _mm512_set1_epi8(15));
      if constexpr (B::kQs >= 6) {
        // The fifth bits, bit j of each block's u32 for its value j, as a byte mask in value order.
        const uint64_t fifth = load32(p + B::kQh) | (both ? static_cast<uint64_t>(load32(p + kBytes + B::kQh)) << 32 : 0);
        z = _mm512_mask_add_epi8(z, fifth, z, _mm512_set1_epi8(16));
      }
      return z;
    }
  }

  NS_TARGET_AVX512 static __m512i levels512(const uint8_t* row, int v) { return pairLevels512(row + 2 * v * kBytes, true); }
  NS_TARGET_AVX512 static __m512i levels512Half(const uint8_t* row, int v) { return pairLevels512(row + 2 * v * kBytes, false); }

  /**
   * The two blocks' headers as 16-bit words: the d of the block at p in word 0, its min (the _1
   * types) in word 1, those of the next block in words kBytes/2 and kBytes/2 + 1 (block sizes are
   * even). A masked load, so nothing past the headers is touched: no read beyond the row's end.
   */
  NS_TARGET_AVX512 static __m512i headers512(const uint8_t* p, bool both) {
    constexpr uint32_t first = 3u, second = 3u << (kBytes / 2);
    return _mm512_maskz_loadu_epi16(both ? first | second : first, p);
  }

  /** The lane scales of the block at p (lanes 0-7) and the next (8-15; 0 unless `both`): their d. */
  NS_TARGET_AVX512 static __m512 blockScales512(const uint8_t* p, bool both) {
    constexpr short d1 = kBytes / 2;
    const __m256i idx = _mm256_set_epi16(d1, d1, d1, d1, d1, d1, d1, d1, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(_mm512_castsi256_si512(idx), headers512(p, both))));
  }

  /** The _1 types: the lane scales as blockScales512, and the mins [m0, m1] (float) to b. */
  NS_TARGET_AVX512 static __m512 blockPair512(const uint8_t* p, bool both, float* b) {
    const __m128 h = _mm_cvtph_ps(_mm_set_epi32(0, 0, both ? static_cast<int>(load32(p + kBytes)) : 0, static_cast<int>(load32(p))));  // [d0, m0, d1, m1]
    _mm_storel_pi(reinterpret_cast<__m64*>(b), _mm_shuffle_ps(h, h, _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_permutexvar_ps(_mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0), _mm512_castps128_ps512(h));
  }

  /** All block scales of a row at once: one gather of the blocks' first 4 bytes per 16 blocks. */
  NS_TARGET_AVX512 static void scales512(const uint8_t* row, int k, float* a, float* b) {
    const int nb = k / 32;
    const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(kBytes));
    for (int g = 0; g < nb; g += 16) {
      const __mmask16 live = nb - g >= 16 ? 0xffff : static_cast<__mmask16>((1u << (nb - g)) - 1);
      const __m512i head = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, idx, row + g * kBytes, 1);
      const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(head));
      __m512 off;
      if constexpr (B::kQs == 4 || B::kQs == 8) {
        off = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(head, 16)));  // the min m
      } else {
        off = _mm512_mul_ps(d, _mm512_set1_ps(static_cast<float>(kOffset)));
      }
      _mm512_mask_storeu_ps(a + g, live, d);
      _mm512_mask_storeu_ps(b + g, live, off);
    }
  }

  /** Block h's 32 levels in value order (AVX2); Q8_0 gives its signed bytes. */
  NS_TARGET_AVX2 static __m256i levels256(const uint8_t* row, int h) {
    const uint8_t* p = row + h * kBytes + B::kQs;
    if constexpr (B::kBytes == 34) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    } else {
      const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i m = _mm_set1_epi8(15);
      __m256i z = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(qs, 4), m), _mm_and_si128(qs, m));
      if constexpr (B::kQs >= 6) {
        // Spread the 32 fifth bits over the 32 bytes: byte j gets bit j, moved to bit 4.
        const uint32_t qh = load32(row + h * kBytes + B::kQh);
        const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)),
                                                  _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
        const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
        z = _mm256_or_si256(z, _mm256_and_si256(set, _mm256_set1_epi8(16)));
      }
      return z;
    }
  }
#endif
};

}  // namespace

void registerLegacy(Kernels* table) {
  fillInt<Legacy<Q4_0T>>(table[Q4_0], dequantizeBlocks<Q4_0T>);
  fillInt<Legacy<Q4_1T>>(table[Q4_1], dequantizeBlocks<Q4_1T>);
  fillInt<Legacy<Q5_0T>>(table[Q5_0], dequantizeBlocks<Q5_0T>);
  fillInt<Legacy<Q5_1T>>(table[Q5_1], dequantizeBlocks<Q5_1T>);
  fillInt<Legacy<Q8_0T>>(table[Q8_0], dequantizeBlocks<Q8_0T>);
}

}  // namespace ns::quant
