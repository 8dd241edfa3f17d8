// What the quantized kernels share: the ggml types they read, the activations quantized for the
// integer dot products, the per-type kernel entry points and the instruction-set paths.
//
// The arithmetic every path computes (see quant.cc for the whole design): a weight row is split into
// groups of G values (G = 32, or 16 for Q6_K), each stored as small unsigned integer levels q with a
// float scale a and offset b, so that the weight is w = a·q + b (Q4_0: a = d, b = −8d; Q4_K:
// a = d·sc, b = −dmin·m; …). Activations are quantized per block, x ≈ dx·qx (qx int8). Then
//   Σ w·x ≈ Σ_groups a·dx·(Σ q·qx) + b·dx·(Σ qx),
// the first sum an exact integer dot (vpdpbusd, pmaddubsw), the second a short float dot of the
// weights' offsets with the activations' group sums.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ns::quant {

// ggml type ids (as GGUF stores them).
enum TypeId : int { F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30 };

struct TypeInfo {
  const char* name;
  int block;  // values per block
  int bytes;  // bytes per block
  int group;  // values per scale group in the integer dot (0: a float type)
  int ablock;  // values per activation scale (Act::ablock)
  bool swap;   // the kernels take the values of every 128 in the order of quarters 0, 2, 1, 3 (Q4_K, Q5_K)
  int tileFrom;  // activation rows from which the tiled AVX-512 kernel beats the per-row one (measured)
  int levelOffset;  // b / a where that is a constant number of levels (Q4_0 −8, Q5_0 −16, Q8_0 −128), else 0
  int tileFrom256;  // the same for the AVX2 tiles (the K-quants; 0: none)
};

/** The type with ggml id `id`, or nullptr where nanoseek does not read it. */
const TypeInfo* typeInfo(int id);

/** Instruction-set paths. Avx512 needs AVX-512 F/BW/VL/DQ with VNNI; Avx2 needs AVX2, FMA and F16C. */
enum class Isa { Portable, Avx2, Avx512 };
const char* isaName(Isa isa);
/** The path the quantized kernels take (the best this CPU runs, unless a test chose another). */
Isa activeIsa();
/** Chooses the path; false when the CPU cannot run it. */
bool setIsa(Isa isa);

/**
 * m rows of k activations quantized in blocks of `ablock` values (32 for the 32-value weight types,
 * as llama.cpp's Q8_0; 256 for the K-quants, as its Q8_K, so their integer sub-block scales can be
 * applied before any float work): d = max|x| / 127, q = x·(127 / max|x|) rounded to nearest even,
 * so x ≈ d·q with q in [−127, 127] and the error at most d/2 per value. Rows are zero-padded to kp
 * (k rounded up to 64) so kernels read whole 64-byte vectors; a block of zeros has d = 0.
 */
struct Act {
  int m = 0, k = 0, kp = 0;
  int ablock = 32;    // values per activation scale
  int ds = 0;         // row stride of d: kp / ablock
  int group = 32;     // values per entry of u (the weight type's group)
  int nu = 0;         // row stride of u: kp / group rounded up to 16 (zero padded)
  bool swap = false;  // stored with the middle quarters of every 128 values swapped (TypeInfo::swap)
  int8_t* q = nullptr;      // m × kp
  float* d = nullptr;       // m × ds: the block scales
  float* lanes = nullptr;   // m × kp/4 when ablock = 32: the scale of each 4-value lane (AVX-512 kernels)
  float* u = nullptr;       // m × nu: d·Σq over each group
  // With a constant level offset o (TypeInfo::levelOffset) and the AVX-512 path: m × kp/4 lanes, o·Σq
  // of block j in lane 8j of its 64-value vector, zeros elsewhere. A vpdpbusd started from these
  // subtracts the offset in the integer sum itself.
  int levelOffset = 0;
  int32_t* init = nullptr;
};

/** Quantizes rows [i0, i1) of x (row stride k) into `a` (allocated by the caller with the sizes above). */
void quantizeActs(Isa isa, const float* x, int i0, int i1, Act& a);

/**
 * y[i·ldy + r] = Σ_c x[i, c]·W[r, c] for r in [r0, r1), i < x.m: W's rows are rowBytes apart from w.
 * The integer kernels take the quantized activations; the float ones (F16, BF16, F32) take x as is.
 */
using IntRowsFn = void (*)(const uint8_t* w, size_t rowBytes, int r0, int r1, const Act& x, float* y, size_t ldy);
using FloatRowsFn = void (*)(const uint8_t* w, size_t rowBytes, int r0, int r1, int k, const float* x, int m, float* y, size_t ldy);

/** Decodes n values (whole blocks) of type `id` from src into dst, bit-exact with ggml. */
using DequantFn = void (*)(const uint8_t* src, float* dst, size_t n);

struct Kernels {
  DequantFn dequantize = nullptr;
  IntRowsFn intRows[3] = {nullptr, nullptr, nullptr};      // by Isa
  FloatRowsFn floatRows[3] = {nullptr, nullptr, nullptr};  // by Isa
  IntRowsFn intTiles512 = nullptr;  // AVX-512 VNNI, many activation rows: bands of 32 weight rows unpacked once
  IntRowsFn intTiles256 = nullptr;  // AVX2, many activation rows: bands of 8 weight rows unpacked once (K-quants only)
  FloatRowsFn floatSlabs512 = nullptr;  // AVX-512, many activation rows: slabs of weights widened once
};

/** The kernels of type `id` (every field set for every supported type, int or float as it computes). */
const Kernels& kernels(int id);

// Each family file fills its types' entries.
void registerLegacy(Kernels* table);  // legacy.cc: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
void registerKQuants(Kernels* table);  // kquants.cc: Q4_K, Q5_K, Q6_K
void registerFloat(Kernels* table);   // float.cc: F32, F16, BF16

/** The IEEE half with bits h as a float, exactly (NaN payloads kept). */
inline float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // A subnormal half: normalise into float32's wider exponent range.
    uint32_t e = 113;
    while ((mant & 0x400) == 0) {
      mant <<= 1;
      e--;
    }
    bits = sign | (e << 23) | ((mant & 0x3ff) << 13);
  }
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t load16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

inline uint32_t load32(const uint8_t* p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

}  // namespace ns::quant

// Per-function instruction sets (one build runs on every x86-64; cpu() decides at run time).
#if defined(__x86_64__) || defined(__i386__)
#define NS_X86 1
// GCC 12 warns that its own AVX-512 intrinsics read their `_mm512_undefined_*()` placeholders.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define NS_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c,bmi2")))
#define NS_TARGET_AVX2 __attribute__((target("avx2,fma,f16c,bmi2")))
#else
#define NS_X86 0
#endif
