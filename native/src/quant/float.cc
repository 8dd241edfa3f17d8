// The float types: F32, F16, BF16. Decoding is exact (a half or a bfloat16 is a float32 with fewer
// bits), so the products convert weights to float32 and multiply-add in float32: no activation is
// rounded (llama.cpp instead rounds the activations to the weights' 16-bit type and uses its 16-bit
// dot products; vdpbf16ps would double the BF16 multiply rate here at that price in accuracy).
#include "dot.h"

namespace ns::quant {

namespace {

struct F32C {
  static float one(const uint8_t* p, int c) {
    float v;
    __builtin_memcpy(&v, p + 4 * c, 4);
    return v;
  }
  static void dequantize(const uint8_t* src, float* dst, size_t n) { __builtin_memcpy(dst, src, 4 * n); }
#if NS_X86
  NS_TARGET_AVX512 static __m512 load512(const uint8_t* p, int c) { return _mm512_loadu_ps(p + 4 * c); }
  NS_TARGET_AVX512 static __m512 load512(const uint8_t* p, int c, __mmask16 live) { return _mm512_maskz_loadu_ps(live, p + 4 * c); }
  NS_TARGET_AVX2 static __m256 load256(const uint8_t* p, int c) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p + 4 * c)); }
#endif
};

struct HalfC {
  static float one(const uint8_t* p, int c) { return halfToFloat(load16(p + 2 * c)); }
  static void dequantize(const uint8_t* src, float* dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = halfToFloat(load16(src + 2 * i));
  }
#if NS_X86
  NS_TARGET_AVX512 static __m512 load512(const uint8_t* p, int c) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * c)));
  }
  NS_TARGET_AVX512 static __m512 load512(const uint8_t* p, int c, __mmask16 live) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(live, p + 2 * c)); }
  NS_TARGET_AVX2 static __m256 load256(const uint8_t* p, int c) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * c)));
  }
#endif
};

struct BF16C {
  static float one(const uint8_t* p, int c) {
    const uint32_t bits = static_cast<uint32_t>(load16(p + 2 * c)) << 16;
    float v;
    __builtin_memcpy(&v, &bits, 4);
    return v;
  }
  static void dequantize(const uint8_t* src, float* dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
      const uint32_t bits = static_cast<uint32_t>(load16(src + 2 * i)) << 16;
      __builtin_memcpy(dst + i, &bits, 4);
    }
  }
#if NS_X86
  NS_TARGET_AVX512 static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  NS_TARGET_AVX512 static __m512 load512(const uint8_t* p, int c) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * c))); }
  NS_TARGET_AVX512 static __m512 load512(const uint8_t* p, int c, __mmask16 live) { return widen(_mm256_maskz_loadu_epi16(live, p + 2 * c)); }
  NS_TARGET_AVX2 static __m256 load256(const uint8_t* p, int c) {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * c)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  }
#endif
};

template <class C>
void floatRowsPortable(const uint8_t* w, size_t rowBytes, int r0, int r1, int k, const float* x, int m, float* y, size_t ldy) {
  for (int r = r0; r < r1; r++) {
    const uint8_t* row = w + r * rowBytes;
    for (int i = 0; i < m; i++) {
      const float* xi = x + static_cast<size_t>(i) * k;
      float acc = 0;
      for (int c = 0; c < k; c++) acc += C::one(row, c) * xi[c];
      y[static_cast<size_t>(i) * ldy + r] = acc;
    }
  }
}

#if NS_X86

/** R weight rows × NX activation rows in registers; each weight vector is converted once per NX rows. */
template <class C, int R, int NX>
NS_TARGET_AVX512 void floatBlock512(const uint8_t* w, size_t rowBytes, int r, int k, const float* x, int i0, float* y, size_t ldy) {
  __m512 acc[R][NX];
  for (int a = 0; a < R; a++)
    for (int i = 0; i < NX; i++) acc[a][i] = _mm512_setzero_ps();
  const uint8_t* rows[R];
  for (int a = 0; a < R; a++) rows[a] = w + (r + a) * rowBytes;
  const float* xs = x + static_cast<size_t>(i0) * k;
  int c = 0;
  for (; c + 16 <= k; c += 16) {
    __m512 wv[R];
    for (int a = 0; a < R; a++) wv[a] = C::load512(rows[a], c);
    for (int i = 0; i < NX; i++) {
      const __m512 xv = _mm512_loadu_ps(xs + static_cast<size_t>(i) * k + c);
      for (int a = 0; a < R; a++) acc[a][i] = _mm512_fmadd_ps(wv[a], xv, acc[a][i]);
    }
  }
  if (c < k) {
    const __mmask16 live = static_cast<__mmask16>((1u << (k - c)) - 1);
    __m512 wv[R];
    for (int a = 0; a < R; a++) wv[a] = C::load512(rows[a], c, live);
    for (int i = 0; i < NX; i++) {
      const __m512 xv = _mm512_maskz_loadu_ps(live, xs + static_cast<size_t>(i) * k + c);
      for (int a = 0; a < R; a++) acc[a][i] = _mm512_fmadd_ps(wv[a], xv, acc[a][i]);
    }
  }
  for (int i = 0; i < NX; i++)
    for (int a = 0; a < R; a++) y[static_cast<size_t>(i0 + i) * ldy + r + a] = _mm512_reduce_add_ps(acc[a][i]);
}

template <class C>
NS_TARGET_AVX512 void floatRows512(const uint8_t* w, size_t rowBytes, int r0, int r1, int k, const float* x, int m, float* y, size_t ldy) {
  int r = r0;
  // Few activation rows: the product streams the weights from memory, and one row at a time is one
  // sequential stream, which the prefetchers follow best (4 rows at once read memory 30% slower).
  if (m > 4) {
    for (; r + 4 <= r1; r += 4) rowGroups<6>(m, [&](auto mi, int i0) { floatBlock512<C, 4, mi>(w, rowBytes, r, k, x, i0, y, ldy); });
  }
  for (; r < r1; r++) rowGroups<6>(m, [&](auto mi, int i0) { floatBlock512<C, 1, mi>(w, rowBytes, r, k, x, i0, y, ldy); });
}

template <class C, int R, int NX>
NS_TARGET_AVX2 void floatBlock256(const uint8_t* w, size_t rowBytes, int r, int k, const float* x, int i0, float* y, size_t ldy) {
  __m256 acc[R][NX];
  for (int a = 0; a < R; a++)
    for (int i = 0; i < NX; i++) acc[a][i] = _mm256_setzero_ps();
  const uint8_t* rows[R];
  for (int a = 0; a < R; a++) rows[a] = w + (r + a) * rowBytes;
  const float* xs = x + static_cast<size_t>(i0) * k;
  int c = 0;
  for (; c + 8 <= k; c += 8) {
    __m256 wv[R];
    for (int a = 0; a < R; a++) wv[a] = C::load256(rows[a], c);
    for (int i = 0; i < NX; i++) {
      const __m256 xv = _mm256_loadu_ps(xs + static_cast<size_t>(i) * k + c);
      for (int a = 0; a < R; a++) acc[a][i] = _mm256_fmadd_ps(wv[a], xv, acc[a][i]);
    }
  }
  for (int i = 0; i < NX; i++) {
    for (int a = 0; a < R; a++) {
      __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc[a][i]), _mm256_extractf128_ps(acc[a][i], 1));
      v = _mm_add_ps(v, _mm_movehl_ps(v, v));
      v = _mm_add_ss(v, _mm_movehdup_ps(v));
      float sum = _mm_cvtss_f32(v);
      for (int t = c; t < k; t++) sum += C::one(rows[a], t) * xs[static_cast<size_t>(i) * k + t];
      y[static_cast<size_t>(i0 + i) * ldy + r + a] = sum;
    }
  }
}

template <class C>
NS_TARGET_AVX2 void floatRows256(const uint8_t* w, size_t rowBytes, int r0, int r1, int k, const float* x, int m, float* y, size_t ldy) {
  int r = r0;
  for (; r + 4 <= r1; r += 4) rowGroups<3>(m, [&](auto mi, int i0) { floatBlock256<C, 4, mi>(w, rowBytes, r, k, x, i0, y, ldy); });
  for (; r < r1; r++) rowGroups<3>(m, [&](auto mi, int i0) { floatBlock256<C, 1, mi>(w, rowBytes, r, k, x, i0, y, ldy); });
}

// Many activation rows (prompts): GEMM blocking. A slab of 32 weight rows × 256 columns is widened
// to float32 once, transposed so that a vector holds one column of 16 rows (32 KB, in L1), and every
// activation row meets it with one broadcast per column: 12 rows × 2 vectors of multiply-adds in
// registers. Column blocks are the outer loop, so the activations' 256-column slice stays in L2
// across a thread's bands while the partial sums accumulate in y.

constexpr int kSlabRows = 32, kSlabCols = 256;

/** Weight rows r0 .. r0 + n − 1 (n ≤ 32; the others zero), columns c0 .. c0 + kc − 1, as slab[c][32 rows]. */
template <class C>
NS_TARGET_AVX512 void packSlab(const uint8_t* w, size_t rowBytes, int r0, int n, int c0, int kc, float* slab) {
  __m512i r[16];
  for (int half = 0; half < 2; half++) {
    for (int c = 0; c < kc; c += 16) {
      const __mmask16 live = kc - c >= 16 ? 0xffff : static_cast<__mmask16>((1u << (kc - c)) - 1);
      for (int j = 0; j < 16; j++) {
        const int rr = 16 * half + j;
        r[j] = rr < n ? _mm512_castps_si512(C::load512(w + (r0 + rr) * rowBytes, c0 + c, live)) : _mm512_setzero_si512();
      }
      transpose16(r);
      for (int j = 0; j < 16 && c + j < kc; j++) _mm512_storeu_si512(slab + (c + j) * kSlabRows + 16 * half, r[j]);
    }
  }
}

/** y[i0 + i, r0 .. r0 + n − 1] (+)= activation rows i0 .. i0 + NX − 1, columns c0 .. c0 + kc − 1, times the slab. */
template <int NX>
NS_TARGET_AVX512 void slabBlock(const float* slab, int kc, const float* x, int k, int c0, int i0, float* y, size_t ldy, int r0, int n, bool first) {
  const __mmask16 m0 = n >= 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1);
  const __mmask16 m1 = n >= 32 ? 0xffff : n <= 16 ? 0 : static_cast<__mmask16>((1u << (n - 16)) - 1);
  __m512 acc[NX][2];
  for (int i = 0; i < NX; i++) {
    float* yi = y + static_cast<size_t>(i0 + i) * ldy + r0;
    acc[i][0] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m0, yi);
    acc[i][1] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m1, yi + 16);
  }
  const float* xs = x + static_cast<size_t>(i0) * k + c0;
  for (int c = 0; c < kc; c++) {
    const __m512 w0 = _mm512_loadu_ps(slab + c * kSlabRows), w1 = _mm512_loadu_ps(slab + c * kSlabRows + 16);
    for (int i = 0; i < NX; i++) {
      const __m512 xb = _mm512_set1_ps(xs[static_cast<size_t>(i) * k + c]);
      acc[i][0] = _mm512_fmadd_ps(w0, xb, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(w1, xb, acc[i][1]);
    }
  }
  for (int i = 0; i < NX; i++) {
    float* yi = y + static_cast<size_t>(i0 + i) * ldy + r0;
    _mm512_mask_storeu_ps(yi, m0, acc[i][0]);
    _mm512_mask_storeu_ps(yi + 16, m1, acc[i][1]);
  }
}

template <class C>
NS_TARGET_AVX512 void floatSlabs512(const uint8_t* w, size_t rowBytes, int r0, int r1, int k, const float* x, int m, float* y, size_t ldy) {
  thread_local std::vector<float> buf;
  buf.resize(kSlabRows * kSlabCols + 16);
  float* slab = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
  for (int c0 = 0; c0 < k; c0 += kSlabCols) {
    const int kc = std::min(kSlabCols, k - c0);
    for (int r = r0; r < r1; r += kSlabRows) {
      const int n = std::min(kSlabRows, r1 - r);
      packSlab<C>(w, rowBytes, r, n, c0, kc, slab);
      rowGroups<12>(m, [&](auto mi, int i0) { slabBlock<mi>(slab, kc, x, k, c0, i0, y, ldy, r, n, c0 == 0); });
    }
  }
}

#endif  // NS_X86

template <class C>
void fillFloat(Kernels& k) {
  k.dequantize = C::dequantize;
  k.floatRows[static_cast<int>(Isa::Portable)] = floatRowsPortable<C>;
#if NS_X86
  k.floatRows[static_cast<int>(Isa::Avx2)] = floatRows256<C>;
  k.floatRows[static_cast<int>(Isa::Avx512)] = floatRows512<C>;
  k.floatSlabs512 = floatSlabs512<C>;
#endif
}

}  // namespace

void registerFloat(Kernels* table) {
  fillFloat<F32C>(table[F32]);
  fillFloat<HalfC>(table[F16]);
  fillFloat<BF16C>(table[BF16]);
}

}  // namespace ns::quant
