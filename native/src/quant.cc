// Products with weights kept in their GGUF encoding, read in place: `dequantize` and `packedMatmul`
// for F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K.
//
// Quantized weights meet quantized activations, as in llama.cpp: the activations of a row become
// int8 levels with one float scale per block, 32 values for the 32-value weight types (llama.cpp's
// Q8_0) and 256 for the K-quants (its Q8_K), and each group of weight levels (32 values, 16 for
// Q6_K) is multiplied with them in exact integer arithmetic (vpdpbusd on AVX-512 VNNI, pmaddubsw
// on AVX2). The float work is a scale multiply per group, or for the K-quants, whose sub-block
// scales are small integers applied in the integer sums, one per super-block. The result differs
// from the exact product by the activations' rounding, at most half a level (max|x| / 254 over the
// block) per value. Float weights (F16, BF16, F32) are widened to float32 and multiplied exactly.
//
// Three kinds of kernel, by the number m of activation rows: per weight row (decoding: each row
// streamed from memory once for all m rows), and for many rows, bands of 32 weight rows (AVX2, the
// K-quants: 8) unpacked once into tiles (integer types) or slabs widened to float32 (float types,
// AVX-512) that every activation row then meets from the cache; TypeInfo::tileFrom and tileFrom256
// say where. The kernels are in quant/: dot.h
// (the integer products, written once for all types), legacy.cc and kquants.cc (each type's levels
// and scales), float.cc. Threads split the weight rows.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cpu.h"
#include "napi.h"
#include "pool.h"
#include "quant/quant.h"

#if NS_X86
#include <immintrin.h>
#endif

namespace ns {
namespace quant {

namespace {

// The tiled kernels pay for unpacking a band of rows once per call and then multiply 3–4× faster
// per activation row; these row counts are where that wins (measured with the cycle counts of both
// on this Zen 4/5 machine, one thread, 256 × 1536 weights): 4 for the 32-value types, whose per-row
// kernel spends a float multiply-add on every 32 values, 8 for Q4_K and Q5_K, 10 for Q6_K (16-value
// groups: twice the float work in the tiles). Float weights: 32.
// The AVX2 tiles of the K-quants (tileFrom256) win later, where their 16-bit sums run longest
// between widenings: from 12 rows for Q4_K, 16 for Q5_K, 32 for Q6_K (measured the same way on a
// 2-core Zen 2, 8960 × 1536 weights, both threads).
const TypeInfo kF32{"F32", 1, 4, 0, 0, false, 32, 0, 0}, kF16{"F16", 1, 2, 0, 0, false, 32, 0, 0}, kBF16{"BF16", 1, 2, 0, 0, false, 32, 0, 0};
const TypeInfo kQ4_0{"Q4_0", 32, 18, 32, 32, false, 4, -8, 0}, kQ4_1{"Q4_1", 32, 20, 32, 32, false, 4, 0, 0};
const TypeInfo kQ5_0{"Q5_0", 32, 22, 32, 32, false, 4, -16, 0}, kQ5_1{"Q5_1", 32, 24, 32, 32, false, 4, 0, 0};
const TypeInfo kQ8_0{"Q8_0", 32, 34, 32, 32, false, 4, -128, 0}, kQ4_K{"Q4_K", 256, 144, 32, 256, true, 8, 0, 12};
const TypeInfo kQ5_K{"Q5_K", 256, 176, 32, 256, true, 8, 0, 16}, kQ6_K{"Q6_K", 256, 210, 16, 256, false, 10, 0, 32};

Isa bestIsaHere() {
  const Cpu& c = cpu();
  if (c.vnni) return Isa::Avx512;
  if (c.avx2) return Isa::Avx2;
  return Isa::Portable;
}

Isa current = bestIsaHere();

// ---- Activations: x ≈ d·q per block of 32 or 256 values (see quant.h).

void quantizeRowPortable(const float* x, int k, int ab, int G, int8_t* q, float* d, float* lanes, float* u) {
  for (int b = 0; b < k / ab; b++) {
    const float* xb = x + ab * b;
    float amax = 0;
    for (int j = 0; j < ab; j++) amax = std::max(amax, std::fabs(xb[j]));
    const float scale = amax / 127.0f, inv = amax != 0 ? 127.0f / amax : 0.0f;
    for (int g = 0; g < ab / G; g++) {
      int sum = 0;
      for (int j = g * G; j < (g + 1) * G; j++) {
        const int v = static_cast<int>(__builtin_rintf(xb[j] * inv));
        q[ab * b + j] = static_cast<int8_t>(v);
        sum += v;
      }
      u[ab / G * b + g] = scale * static_cast<float>(sum);
    }
    d[b] = scale;
    if (lanes) std::fill(lanes + ab / 4 * b, lanes + ab / 4 * (b + 1), scale);
  }
}

#if NS_X86
NS_TARGET_AVX512 void quantizeRow512(const float* x, int k, int ab, int G, int8_t* q, float* d, float* lanes, float* u, int offset, int32_t* init) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (int b = 0; b < k / ab; b++) {
    const float* xb = x + ab * b;
    __m512 mx = _mm512_setzero_ps();
    for (int j = 0; j < ab; j += 16) mx = _mm512_max_ps(mx, _mm512_andnot_ps(sign, _mm512_loadu_ps(xb + j)));
    const float amax = _mm512_reduce_max_ps(mx);
    const float scale = amax / 127.0f, inv = amax != 0 ? 127.0f / amax : 0.0f;
    const __m512 m = _mm512_set1_ps(inv);
    for (int j = 0; j < ab; j += 32) {
      const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + j), m));
      const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + j + 16), m));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + ab * b + j), _mm512_cvtsepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + ab * b + j + 16), _mm512_cvtsepi32_epi8(q1));
      float* ub = u + (ab * b + j) / G;
      if (G == 32) {
        const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        ub[0] = scale * static_cast<float>(sum);
        if (init) _mm256_storeu_si256(reinterpret_cast<__m256i*>(init + (ab * b + j) / 4), _mm256_setr_epi32(offset * sum, 0, 0, 0, 0, 0, 0, 0));
      } else {
        ub[0] = scale * static_cast<float>(_mm512_reduce_add_epi32(q0));
        ub[1] = scale * static_cast<float>(_mm512_reduce_add_epi32(q1));
      }
    }
    d[b] = scale;
    if (lanes) {
      for (int j = 0; j < ab / 4; j += 8) _mm256_storeu_ps(lanes + ab / 4 * b + j, _mm256_set1_ps(scale));
    }
  }
}
#endif

// ---- Scratch: the quantized activations of the call in progress (calls come from the one JS thread).

struct Arena {
  std::vector<uint8_t> bytes;
  size_t used = 0;
  void reset(size_t need) {
    if (bytes.size() < need) bytes.assign(need, 0);
    used = 0;
  }
  template <class V>
  V* take(size_t n) {
    uint8_t* base = bytes.data() + used;
    uint8_t* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + 63) & ~uintptr_t(63));
    used = static_cast<size_t>(aligned - bytes.data()) + n * sizeof(V);
    return reinterpret_cast<V*>(aligned);
  }
};

Arena& arena() {
  static Arena* a = new Arena();
  return *a;
}

/** Rows per task so that every thread gets a few tasks (the pool balances them), in multiples of 4. */
int rowsPerTask(int rows, double work) {
  const int threads = Pool::get().threads();
  if (threads == 1 || work < (1 << 18)) return rows;
  const int tasks = threads * 4;
  int per = (rows + tasks - 1) / tasks;
  per = (per + 3) & ~3;
  return std::max(per, 4);
}

}  // namespace

const TypeInfo* typeInfo(int id) {
  switch (id) {
    case F32: return &kF32;
    case F16: return &kF16;
    case BF16: return &kBF16;
    case Q4_0: return &kQ4_0;
    case Q4_1: return &kQ4_1;
    case Q5_0: return &kQ5_0;
    case Q5_1: return &kQ5_1;
    case Q8_0: return &kQ8_0;
    case Q4_K: return &kQ4_K;
    case Q5_K: return &kQ5_K;
    case Q6_K: return &kQ6_K;
    default: return nullptr;
  }
}

const char* isaName(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512-vnni";
    case Isa::Avx2: return "avx2";
    default: return "portable";
  }
}

Isa activeIsa() { return current; }

bool setIsa(Isa isa) {
  const Cpu& c = cpu();
  if ((isa == Isa::Avx512 && !c.vnni) || (isa == Isa::Avx2 && !c.avx2)) return false;
  current = isa;
  return true;
}

void quantizeActs(Isa isa, const float* x, int i0, int i1, Act& a) {
  thread_local std::vector<float> swapped;
  if (a.swap) swapped.resize(a.k);
  for (int i = i0; i < i1; i++) {
    const float* xi = x + static_cast<size_t>(i) * a.k;
    if (a.swap) {
      for (int c = 0; c < a.k; c += 128) {
        std::memcpy(&swapped[c], xi + c, 32 * sizeof(float));
        std::memcpy(&swapped[c + 32], xi + c + 64, 32 * sizeof(float));
        std::memcpy(&swapped[c + 64], xi + c + 32, 32 * sizeof(float));
        std::memcpy(&swapped[c + 96], xi + c + 96, 32 * sizeof(float));
      }
      xi = swapped.data();
    }
    int8_t* q = a.q + static_cast<size_t>(i) * a.kp;
    float* d = a.d + static_cast<size_t>(i) * a.ds;
    float* lanes = a.lanes ? a.lanes + static_cast<size_t>(i) * (a.kp / 4) : nullptr;
    float* u = a.u + static_cast<size_t>(i) * a.nu;
#if NS_X86
    int32_t* init = a.init ? a.init + static_cast<size_t>(i) * (a.kp / 4) : nullptr;
    if (isa == Isa::Avx512) {
      quantizeRow512(xi, a.k, a.ablock, a.group, q, d, lanes, u, a.levelOffset, init);
    } else {
      quantizeRowPortable(xi, a.k, a.ablock, a.group, q, d, lanes, u);
    }
#else
    (void)isa;
    quantizeRowPortable(xi, a.k, a.ablock, a.group, q, d, lanes, u);
#endif
    // The padding reads as zeros: levels times zero activations, offsets times zero sums.
    std::memset(q + a.k, 0, a.kp - a.k);
    std::fill(d + a.k / a.ablock, d + a.ds, 0.0f);
    if (lanes) std::fill(lanes + a.k / 4, lanes + a.kp / 4, 0.0f);
    std::fill(u + a.k / a.group, u + a.nu, 0.0f);
#if NS_X86
    if (init) std::fill(init + a.k / 4, init + a.kp / 4, 0);
#endif
  }
}

const Kernels& kernels(int id) {
  static const Kernels* table = [] {
    Kernels* t = new Kernels[64];
    registerLegacy(t);
    registerKQuants(t);
    registerFloat(t);
    return t;
  }();
  return table[id];
}

}  // namespace quant

namespace {

using namespace quant;

const TypeInfo& typeArg(const Args& a, size_t i) {
  const int64_t id = a.i64(i);
  const TypeInfo* t = id >= 0 && id < 64 ? typeInfo(static_cast<int>(id)) : nullptr;
  if (!t) a.fail(i, "ggml type " + std::to_string(id) + " is not supported (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K are)");
  return *t;
}

int64_t countArg(const Args& a, size_t i, const char* what) {
  const int64_t v = a.i64(i);
  if (v < 0 || v > INT32_MAX) a.fail(i, std::string(what) + " must be in [0, 2^31), got " + std::to_string(v));
  return v;
}

// dequantize(typeId, src, dst, n)
napi_value dequantize(const Args& a) {
  const TypeInfo& t = typeArg(a, 0);
  size_t srcLen, dstLen;
  const uint8_t* src = a.u8(1, &srcLen);
  float* dst = a.f32(2, &dstLen);
  const int64_t n = a.i64(3);
  if (n < 0) a.fail(3, "negative count");
  if (n % t.block) a.fail(3, std::to_string(n) + " values are not a whole number of " + t.name + " blocks of " + std::to_string(t.block));
  const size_t blocks = static_cast<size_t>(n) / t.block, bytes = blocks * t.bytes;
  if (srcLen < bytes) a.fail(1, std::to_string(n) + " " + t.name + " values take " + std::to_string(bytes) + " bytes, src has " + std::to_string(srcLen));
  if (dstLen < static_cast<size_t>(n)) a.fail(2, "dst holds " + std::to_string(dstLen) + " floats, " + std::to_string(n) + " needed");
  const DequantFn fn = kernels(static_cast<int>(a.i64(0))).dequantize;
  // Split into whole blocks, about 64K values a task.
  const size_t per = std::max<size_t>(1, (size_t(1) << 16) / t.block);
  const int tasks = static_cast<int>((blocks + per - 1) / per);
  Pool::get().run(tasks, [&](int task, int) {
    const size_t b0 = task * per, b1 = std::min(blocks, b0 + per);
    fn(src + b0 * t.bytes, dst + b0 * t.block, (b1 - b0) * t.block);
  });
  return undefinedValue(a.env);
}

// packedMatmul(typeId, w, rows, cols, x, xOff, m, y, yOff, ldy): y[i, r] = Σ_c x[i, c]·W[r, c]
napi_value packedMatmul(const Args& a) {
  const TypeInfo& t = typeArg(a, 0);
  const int id = static_cast<int>(a.i64(0));
  size_t wLen, xLen, yLen;
  const uint8_t* w = a.u8(1, &wLen);
  const int rows = static_cast<int>(countArg(a, 2, "rows"));
  const int cols = static_cast<int>(countArg(a, 3, "cols"));
  const float* x = a.f32(4, &xLen);
  const int64_t xOff = a.i64(5);
  const int m = static_cast<int>(countArg(a, 6, "m"));
  float* y = a.f32(7, &yLen);
  const int64_t yOff = a.i64(8), ldy = a.i64(9);
  if (cols % t.block) a.fail(3, std::to_string(cols) + " columns are not a whole number of " + t.name + " blocks of " + std::to_string(t.block));
  const size_t rowBytes = static_cast<size_t>(cols / t.block) * t.bytes;
  if (wLen < rowBytes * rows) a.fail(1, std::to_string(rows) + " rows of " + std::to_string(cols) + " " + t.name + " values take " + std::to_string(rowBytes * rows) + " bytes, w has " + std::to_string(wLen));
  if (xOff < 0 || static_cast<uint64_t>(xOff) + static_cast<uint64_t>(m) * cols > xLen) a.fail(5, "x (" + std::to_string(xLen) + " floats) does not hold " + std::to_string(m) + " rows of " + std::to_string(cols) + " from offset " + std::to_string(xOff));
  if (m > 1 && ldy < rows) a.fail(9, "ldy " + std::to_string(ldy) + " is less than the row length " + std::to_string(rows));
  if (yOff < 0 || ldy < 0 || (m > 0 && rows > 0 && static_cast<uint64_t>(yOff) + static_cast<uint64_t>(m - 1) * ldy + rows > yLen)) {
    a.fail(8, "y (" + std::to_string(yLen) + " floats) does not hold " + std::to_string(m) + " rows of " + std::to_string(rows) + " with stride " + std::to_string(ldy) + " from offset " + std::to_string(yOff));
  }
  if (m == 0 || rows == 0) return undefinedValue(a.env);
  float* yo = y + yOff;
  const float* xo = x + xOff;
  if (cols == 0) {
    for (int i = 0; i < m; i++) std::fill(yo + i * ldy, yo + i * ldy + rows, 0.0f);
    return undefinedValue(a.env);
  }
  const Isa isa = activeIsa();
  const Kernels& k = kernels(id);
  const int per = rowsPerTask(rows, static_cast<double>(rows) * cols * m);
  const int tasks = (rows + per - 1) / per;
  if (t.group == 0) {
    if (isa == Isa::Avx512 && m >= t.tileFrom) {
      const int bands = (rows + 31) / 32, perBand = std::max(1, (bands + Pool::get().threads() * 4 - 1) / (Pool::get().threads() * 4));
      const int perRows = perBand * 32;
      Pool::get().run((rows + perRows - 1) / perRows, [&](int task, int) { k.floatSlabs512(w, rowBytes, task * perRows, std::min(rows, (task + 1) * perRows), cols, xo, m, yo, ldy); });
      return undefinedValue(a.env);
    }
    const FloatRowsFn fn = k.floatRows[static_cast<int>(isa)];
    Pool::get().run(tasks, [&](int task, int) { fn(w, rowBytes, task * per, std::min(rows, (task + 1) * per), cols, xo, m, yo, ldy); });
    return undefinedValue(a.env);
  }
  Act act;
  act.m = m;
  act.k = cols;
  act.kp = (cols + 63) & ~63;
  act.ablock = t.ablock;
  act.swap = t.swap;
  act.ds = act.kp / t.ablock;
  act.group = t.group;
  act.nu = ((act.kp / t.group) + 15) & ~15;
  const bool lanes = t.ablock == 32, init = isa == Isa::Avx512 && t.levelOffset != 0;
  act.levelOffset = t.levelOffset;
  Arena& ar = arena();
  ar.reset(static_cast<size_t>(m) * (act.kp + 4 * act.ds + (lanes ? act.kp : 0) + (init ? act.kp : 0) + 4 * act.nu) + 5 * 64);
  act.q = ar.take<int8_t>(static_cast<size_t>(m) * act.kp);
  act.d = ar.take<float>(static_cast<size_t>(m) * act.ds);
  act.lanes = lanes ? ar.take<float>(static_cast<size_t>(m) * act.kp / 4) : nullptr;
  act.u = ar.take<float>(static_cast<size_t>(m) * act.nu);
  act.init = init ? ar.take<int32_t>(static_cast<size_t>(m) * act.kp / 4) : nullptr;
  const int qper = m * cols >= (1 << 16) ? std::max(1, (1 << 15) / cols) : m;
  Pool::get().run((m + qper - 1) / qper, [&](int task, int) { quantizeActs(isa, xo, task * qper, std::min(m, (task + 1) * qper), act); });
  if (isa == Isa::Avx512 && m >= t.tileFrom) {
    // Whole bands of 32 rows per task.
    const int bands = (rows + 31) / 32, perBand = std::max(1, (bands + Pool::get().threads() * 4 - 1) / (Pool::get().threads() * 4));
    const int perRows = perBand * 32;
    Pool::get().run((rows + perRows - 1) / perRows, [&](int task, int) { k.intTiles512(w, rowBytes, task * perRows, std::min(rows, (task + 1) * perRows), act, yo, ldy); });
    return undefinedValue(a.env);
  }
  if (isa == Isa::Avx2 && t.tileFrom256 > 0 && m >= t.tileFrom256) {
    // Whole bands of 8 rows per task.
    const int bands = (rows + 7) / 8, perBand = std::max(1, (bands + Pool::get().threads() * 4 - 1) / (Pool::get().threads() * 4));
    const int perRows = perBand * 8;
    Pool::get().run((rows + perRows - 1) / perRows, [&](int task, int) { k.intTiles256(w, rowBytes, task * perRows, std::min(rows, (task + 1) * perRows), act, yo, ldy); });
    return undefinedValue(a.env);
  }
  const IntRowsFn fn = k.intRows[static_cast<int>(isa)];
  Pool::get().run(tasks, [&](int task, int) { fn(w, rowBytes, task * per, std::min(rows, (task + 1) * per), act, yo, ldy); });
  return undefinedValue(a.env);
}

// quantIsa(name | null): the instruction-set path of the quantized kernels ('avx512-vnni', 'avx2',
// 'portable'); a name chooses one (tests run every path the CPU has). Returns the active one.
napi_value quantIsa(const Args& a) {
  if (!a.isNull(0)) {
    size_t len = 0;
    napi_get_value_string_utf8(a.env, a.argv[0], nullptr, 0, &len);
    std::string name(len, '\0');
    napi_get_value_string_utf8(a.env, a.argv[0], name.data(), len + 1, &len);
    Isa isa;
    if (name == "avx512-vnni") isa = Isa::Avx512;
    else if (name == "avx2") isa = Isa::Avx2;
    else if (name == "portable") isa = Isa::Portable;
    else a.fail(0, "unknown path '" + name + "' (avx512-vnni, avx2, portable)");
    if (!setIsa(isa)) a.fail(0, "this CPU cannot run the " + name + " path");
  }
  napi_value out;
  napi_create_string_utf8(a.env, isaName(activeIsa()), NAPI_AUTO_LENGTH, &out);
  return out;
}

}  // namespace

void registerQuant(napi_env env, napi_value exports) {
  define(env, exports, "dequantize", 4, dequantize);
  define(env, exports, "packedMatmul", 10, packedMatmul);
  define(env, exports, "quantIsa", 1, quantIsa);
}

}  // namespace ns
