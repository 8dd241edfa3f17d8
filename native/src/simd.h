// Vector types for the dense kernels: one struct per instruction set with the same static functions
// (loads, arithmetic, exp, reductions, a transposing copy), so that a kernel written once over `V`
// compiles to AVX-512, AVX2 or portable code. Each family's kernel body (an .inc file) is included once
// per instruction set inside NS_TARGET_* ... NS_TARGET_END, which compiles everything defined there,
// templates included, for that set; the family's .cc then picks a variant from cpu() at run time.
//
// The x86 variants need GCC's target pragmas: other compilers (and other CPUs) build the portable
// path alone, written with vector extensions that the compiler maps to SSE, NEON or plain scalars.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__)
// GCC 12's intrinsic headers initialise their undefined vectors from themselves, which its own
// -Wuninitialized reports at every use (fixed in GCC 13): silenced for those headers alone.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#define NS_SIMD_X86 1
#define NS_TARGET_AVX512 _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512vl,avx512dq,fma,f16c\")")
#define NS_TARGET_AVX2 _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,f16c\")")
#define NS_TARGET_END _Pragma("GCC pop_options")
#endif

namespace ns::simd {

// exp(x) = 2^n · e^r with n = round(x·log2 e) and |r| ≤ ln2/2; e^r from Cephes' expf polynomial
// (about 1 ulp), with ln 2 split in two so that r keeps its low bits.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

#ifdef NS_SIMD_X86

NS_TARGET_AVX512
struct Avx512 {
  using R = __m512;
  static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R set1(float x) { return _mm512_set1_ps(x); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1); }
  /** The first n < W lanes from p (masked: nothing past them is touched), the rest `fill`. */
  static R loadPart(const float* p, int n, float fill = 0) { return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), mask(n), p); }
  static void storePart(float* p, R v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R div(R a, R b) { return _mm512_div_ps(a, b); }
  static R sqrt(R a) { return _mm512_sqrt_ps(a); }
  /** a·b + c */
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  /** c − a·b */
  static R fnma(R a, R b, R c) { return _mm512_fnmadd_ps(a, b, c); }
  /** a·b − c */
  static R fms(R a, R b, R c) { return _mm512_fmsub_ps(a, b, c); }
  // (max and min return the second operand where one is NaN: callers put the data there)
  static R max(R a, R b) { return _mm512_max_ps(a, b); }
  static R min(R a, R b) { return _mm512_min_ps(a, b); }
  static float sum(R v) { return _mm512_reduce_add_ps(v); }
  static float hmax(R v) { return _mm512_reduce_max_ps(v); }

  static R exp(R x) {
    // Beyond ±100 the result is 0 or inf anyway; clamping keeps r finite. scalef rounds into the
    // subnormals and saturates to inf, so no range checks are needed after.
    x = _mm512_min_ps(_mm512_set1_ps(100.0f), _mm512_max_ps(_mm512_set1_ps(-110.0f), x));
    R n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    R r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
    R p = _mm512_set1_ps(kExpPoly[0]);
    for (int i = 1; i < 6; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpPoly[i]));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
  }

  /** W rows of W floats in r[] become W columns, in place. */
  static void transpose(R* r) {
    R t[16], u[16];
    for (int i = 0; i < 8; i++) {
      t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4j + q], 128-bit lane L: column 4L + q of rows 4j .. 4j + 3
    for (int j = 0; j < 4; j++) {
      u[4 * j + 0] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0x44);
      u[4 * j + 1] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0xEE);
      u[4 * j + 2] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0x44);
      u[4 * j + 3] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0xEE);
    }
    for (int q = 0; q < 4; q++) {
      R v0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88), v1 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xDD);
      R v2 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88), v3 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xDD);
      r[q] = _mm512_shuffle_f32x4(v0, v2, 0x88);
      r[8 + q] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
      r[4 + q] = _mm512_shuffle_f32x4(v1, v3, 0x88);
      r[12 + q] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
  }

  static double sumSquares(const float* x, int64_t n) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __m512d a = _mm512_cvtps_pd(_mm256_loadu_ps(x + i)), b = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
      s0 = _mm512_fmadd_pd(a, a, s0);
      s1 = _mm512_fmadd_pd(b, b, s1);
    }
    double s = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    for (; i < n; i++) s += static_cast<double>(x[i]) * x[i];
    return s;
  }
};
NS_TARGET_END

NS_TARGET_AVX2
struct Avx2 {
  using R = __m256;
  static constexpr int W = 8;
  static R zero() { return _mm256_setzero_ps(); }
  static R set1(float x) { return _mm256_set1_ps(x); }
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static __m256i mask(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  static R loadPart(const float* p, int n, float fill = 0) {
    __m256i m = mask(n);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  static void storePart(float* p, R v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R div(R a, R b) { return _mm256_div_ps(a, b); }
  static R sqrt(R a) { return _mm256_sqrt_ps(a); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R fnma(R a, R b, R c) { return _mm256_fnmadd_ps(a, b, c); }
  static R fms(R a, R b, R c) { return _mm256_fmsub_ps(a, b, c); }
  static R max(R a, R b) { return _mm256_max_ps(a, b); }
  static R min(R a, R b) { return _mm256_min_ps(a, b); }
  static float sum(R v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  static float hmax(R v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
  }

  static R exp(R x) {
    // 2^n is built in the exponent bits, which hold n from −126 to 127: inside that range the
    // arithmetic runs, outside it the result is set to 0 or inf (and NaN passes through).
    const R lo = _mm256_set1_ps(-87.33654f), hi = _mm256_set1_ps(88.37626f);
    R xc = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
    R n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    R r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
    R p = _mm256_set1_ps(kExpPoly[0]);
    for (int i = 1; i < 6; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpPoly[i]));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    R y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(88.72284f), _CMP_GT_OQ));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  }

  /** W rows of W floats in r[] become W columns, in place. */
  static void transpose(R* r) {
    R t[8], u[8];
    for (int i = 0; i < 4; i++) {
      t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int j = 0; j < 2; j++) {
      u[4 * j + 0] = _mm256_shuffle_ps(t[4 * j], t[4 * j + 2], 0x44);
      u[4 * j + 1] = _mm256_shuffle_ps(t[4 * j], t[4 * j + 2], 0xEE);
      u[4 * j + 2] = _mm256_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0x44);
      u[4 * j + 3] = _mm256_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0xEE);
    }
    for (int q = 0; q < 4; q++) {
      r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
      r[4 + q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
    }
  }

  static double sumSquares(const float* x, int64_t n) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
      s0 = _mm256_fmadd_pd(a, a, s0);
      s1 = _mm256_fmadd_pd(b, b, s1);
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
    double s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; i < n; i++) s += static_cast<double>(x[i]) * x[i];
    return s;
  }
};
NS_TARGET_END

#endif  // NS_SIMD_X86

/** Four lanes in the compiler's vector extension: SSE2 on any x86-64, NEON on ARM, scalars elsewhere. */
struct Portable {
  typedef float R __attribute__((vector_size(16)));
  static constexpr int W = 4;
  static R zero() { return R{0, 0, 0, 0}; }
  static R set1(float x) { return R{x, x, x, x}; }
  static R load(const float* p) {
    R v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(float* p, R v) { std::memcpy(p, &v, sizeof v); }
  static R loadPart(const float* p, int n, float fill = 0) {
    R v = set1(fill);
    for (int i = 0; i < n; i++) v[i] = p[i];
    return v;
  }
  static void storePart(float* p, R v, int n) {
    for (int i = 0; i < n; i++) p[i] = v[i];
  }
  static R add(R a, R b) { return a + b; }
  static R sub(R a, R b) { return a - b; }
  static R mul(R a, R b) { return a * b; }
  static R div(R a, R b) { return a / b; }
  static R sqrt(R a) { return R{std::sqrt(a[0]), std::sqrt(a[1]), std::sqrt(a[2]), std::sqrt(a[3])}; }
  static R fma(R a, R b, R c) { return a * b + c; }
  static R fnma(R a, R b, R c) { return c - a * b; }
  static R fms(R a, R b, R c) { return a * b - c; }
  // Same NaN rule as the x86 instructions: where either is NaN, the second operand.
  static R max(R a, R b) { return R{a[0] > b[0] ? a[0] : b[0], a[1] > b[1] ? a[1] : b[1], a[2] > b[2] ? a[2] : b[2], a[3] > b[3] ? a[3] : b[3]}; }
  static R min(R a, R b) { return R{a[0] < b[0] ? a[0] : b[0], a[1] < b[1] ? a[1] : b[1], a[2] < b[2] ? a[2] : b[2], a[3] < b[3] ? a[3] : b[3]}; }
  static float sum(R v) { return (v[0] + v[1]) + (v[2] + v[3]); }
  static float hmax(R v) {
    float m = v[0];
    for (int i = 1; i < 4; i++) m = v[i] > m ? v[i] : m;
    return m;
  }
  static R exp(R x) { return R{std::exp(x[0]), std::exp(x[1]), std::exp(x[2]), std::exp(x[3])}; }
  /** W rows of W floats in r[] become W columns, in place. */
  static void transpose(R* r) {
    for (int i = 0; i < 4; i++) {
      for (int j = i + 1; j < 4; j++) {
        float t = r[i][j];
        r[i][j] = r[j][i];
        r[j][i] = t;
      }
    }
  }
  static double sumSquares(const float* x, int64_t n) {
    double s0 = 0, s1 = 0;
    int64_t i = 0;
    for (; i + 2 <= n; i += 2) {
      s0 += static_cast<double>(x[i]) * x[i];
      s1 += static_cast<double>(x[i + 1]) * x[i + 1];
    }
    if (i < n) s0 += static_cast<double>(x[i]) * x[i];
    return s0 + s1;
  }
};

}  // namespace ns::simd
