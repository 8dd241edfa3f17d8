// Row-wise and element-wise kernels of the native backend (SwiGLU, RMSNorm, softmax, cross-entropy,
// strided copies, gathers and scatters, row dot products, the sum of squares): argument checks, then
// the work cut into ranges of rows or elements across the pool's threads. The loops themselves are
// in rows-kernels.inc, compiled per instruction set.
#include "rows.h"

#include <algorithm>
#include <string>
#include <vector>

#include "cpu.h"
#include "napi.h"
#include "pool.h"
#include "simd.h"

namespace ns {

#ifdef NS_SIMD_X86
NS_TARGET_AVX512
namespace avx512 {
namespace {
using V = simd::Avx512;
#include "rows-kernels.inc"
}  // namespace
const RowKernels& table() { return kernels; }
}  // namespace avx512
NS_TARGET_END

NS_TARGET_AVX2
namespace avx2 {
namespace {
using V = simd::Avx2;
#include "rows-kernels.inc"
}  // namespace
const RowKernels& table() { return kernels; }
}  // namespace avx2
NS_TARGET_END
#endif

namespace portable {
namespace {
using V = simd::Portable;
#include "rows-kernels.inc"
}  // namespace
const RowKernels& table() { return kernels; }
}  // namespace portable

const RowKernels& rowKernels() {
#ifdef NS_SIMD_X86
  if (cpu().avx512) return avx512::table();
  if (cpu().avx2) return avx2::table();
#endif
  return portable::table();
}

// Below this much work (about one float operation per unit) a call stays on the calling thread:
// waking the pool costs a few microseconds.
constexpr double kParallelMinWork = 1 << 15;
// Ranges per thread: a few, so that a thread slowed by another process does not hold up the rest.
constexpr int kRangesPerThread = 4;

void splitWork(int64_t units, double cost, int64_t align, const std::function<void(int64_t, int64_t)>& fn) {
  if (units <= 0) return;
  const int threads = Pool::get().threads();
  const int64_t blocks = (units + align - 1) / align;
  const int64_t ranges = std::min<int64_t>(blocks, threads * kRangesPerThread);
  if (threads == 1 || ranges <= 1 || units * cost < kParallelMinWork) return fn(0, units);
  Pool::get().run(static_cast<int>(ranges), [&](int t, int) {
    const int64_t b0 = blocks * t / ranges, b1 = blocks * (t + 1) / ranges;
    fn(b0 * align, std::min(units, b1 * align));
  });
}

namespace {

constexpr int64_t kAlign = 16;  // elements per range boundary: whole vectors, whole cache lines

int64_t count(const Args& a, size_t i) {
  const int64_t v = a.i64(i);
  if (v < 0) a.fail(i, "must be a non-negative integer, got " + std::to_string(v));
  return v;
}

int64_t times(int64_t x, int64_t y) {
  int64_t out;
  if (__builtin_mul_overflow(x, y, &out)) throw ArgError("sizes overflow");
  return out;
}

/** Argument i as a Float32Array of at least `need` elements. */
float* floats(const Args& a, size_t i, const char* name, int64_t need) {
  size_t len;
  float* p = a.f32(i, &len);
  if (static_cast<int64_t>(len) < need) throw ArgError(std::string(name) + " has " + std::to_string(len) + " elements, needs " + std::to_string(need));
  return p;
}

float* floatsOrNull(const Args& a, size_t i, const char* name, int64_t need) { return a.isNull(i) ? nullptr : floats(a, i, name, need); }

int32_t* ints(const Args& a, size_t i, const char* name, int64_t need) {
  size_t len;
  int32_t* p = a.i32(i, &len);
  if (static_cast<int64_t>(len) < need) throw ArgError(std::string(name) + " has " + std::to_string(len) + " elements, needs " + std::to_string(need));
  return p;
}

/** The kernels read rows at these indices: every one must be a row that exists. */
void checkIndex(const int32_t* index, int64_t n, int64_t limit) {
  for (int64_t i = 0; i < n; i++) {
    if (index[i] < 0 || index[i] >= limit) {
      throw ArgError("index " + std::to_string(index[i]) + " at position " + std::to_string(i) + " is outside [0, " + std::to_string(limit) + ")");
    }
  }
}

/** A RowMask as (period, offset): period 0 means no mask. */
void checkMask(const Args& a, size_t i) {
  if (a.i64(i) < 0 || a.i64(i + 1) < 0) throw ArgError("mask period and offset must be non-negative integers");
}

const RowKernels& K() { return rowKernels(); }

// swiglu(gate, up, out, n)
napi_value swiglu(const Args& a) {
  const int64_t n = count(a, 3);
  const float *gate = floats(a, 0, "gate", n), *up = floats(a, 1, "up", n);
  float* out = floats(a, 2, "out", n);
  splitWork(n, 1, kAlign, [&](int64_t i0, int64_t i1) { K().swiglu(gate + i0, up + i0, out + i0, i1 - i0); });
  return undefinedValue(a.env);
}

// swigluBackward(gate, up, g, gGate | null, gUp | null, n, overwrite)
napi_value swigluBackward(const Args& a) {
  const int64_t n = count(a, 5);
  const float *gate = floats(a, 0, "gate", n), *up = floats(a, 1, "up", n), *g = floats(a, 2, "g", n);
  float *gGate = floatsOrNull(a, 3, "gGate", n), *gUp = floatsOrNull(a, 4, "gUp", n);
  const bool overwrite = a.flag(6);
  splitWork(n, 2, kAlign, [&](int64_t i0, int64_t i1) {
    K().swigluBackward(gate + i0, up + i0, g + i0, gGate ? gGate + i0 : nullptr, gUp ? gUp + i0 : nullptr, i1 - i0, overwrite);
  });
  return undefinedValue(a.env);
}

// rmsnorm(x, w, out, rstd, rows, dim, eps)
napi_value rmsnorm(const Args& a) {
  const int64_t rows = count(a, 4), dim = count(a, 5), size = times(rows, dim);
  const float *x = floats(a, 0, "x", size), *w = floats(a, 1, "w", dim);
  float *out = floats(a, 2, "out", size), *rstd = floats(a, 3, "rstd", rows);
  const float eps = static_cast<float>(a.num(6));
  splitWork(rows, dim, 1, [&](int64_t r0, int64_t r1) { K().rmsnorm(x + r0 * dim, w, out + r0 * dim, rstd + r0, r1 - r0, dim, eps); });
  return undefinedValue(a.env);
}

// rmsnormBackward(x, w, rstd, g, gx | null, gw | null, rows, dim, overwrite)
napi_value rmsnormBackward(const Args& a) {
  const int64_t rows = count(a, 6), dim = count(a, 7), size = times(rows, dim);
  const float *x = floats(a, 0, "x", size), *w = floats(a, 1, "w", dim), *rstd = floats(a, 2, "rstd", rows), *g = floats(a, 3, "g", size);
  float *gx = floatsOrNull(a, 4, "gx", size), *gw = floatsOrNull(a, 5, "gw", dim);
  const bool overwrite = a.flag(8);
  // Rows for the input gradient; bands of columns for the weight's, which sums over all rows.
  if (gx != nullptr) {
    splitWork(rows, 2 * dim, 1, [&](int64_t r0, int64_t r1) { K().rmsnormBackwardX(x + r0 * dim, w, rstd + r0, g + r0 * dim, gx + r0 * dim, r1 - r0, dim, overwrite); });
  }
  if (gw != nullptr) splitWork(dim, rows, kAlign, [&](int64_t c0, int64_t c1) { K().rmsnormBackwardW(x, rstd, g, gw, rows, dim, c0, c1); });
  return undefinedValue(a.env);
}

// logSumExpRows(x, lse, rows, n)
napi_value logSumExpRows(const Args& a) {
  const int64_t rows = count(a, 2), n = count(a, 3);
  const float* x = floats(a, 0, "x", times(rows, n));
  float* lse = floats(a, 1, "lse", rows);
  splitWork(rows, n, 1, [&](int64_t r0, int64_t r1) { K().logSumExpRows(x + r0 * n, lse + r0, r1 - r0, n); });
  return undefinedValue(a.env);
}

// softmaxXentBackward(x, lse, target, weight, gx, rows, n)
napi_value softmaxXentBackward(const Args& a) {
  const int64_t rows = count(a, 5), n = count(a, 6), size = times(rows, n);
  const float *x = floats(a, 0, "x", size), *lse = floats(a, 1, "lse", rows), *weight = floats(a, 3, "weight", rows);
  const int32_t* target = ints(a, 2, "target", rows);
  float* gx = floats(a, 4, "gx", size);
  for (int64_t r = 0; r < rows; r++) {
    if (weight[r] != 0 && (target[r] < 0 || target[r] >= n)) {
      throw ArgError("target " + std::to_string(target[r]) + " at row " + std::to_string(r) + " is outside [0, " + std::to_string(n) + ")");
    }
  }
  splitWork(rows, n, 1, [&](int64_t r0, int64_t r1) { K().softmaxXentBackward(x + r0 * n, lse + r0, target + r0, weight + r0, gx + r0 * n, r1 - r0, n); });
  return undefinedValue(a.env);
}

// softmaxRows(p, rows, n, maskPeriod, maskOffset)
napi_value softmaxRows(const Args& a) {
  const int64_t rows = count(a, 1), n = count(a, 2);
  float* p = floats(a, 0, "p", times(rows, n));
  checkMask(a, 3);
  const int64_t period = a.i64(3), offset = a.i64(4);
  splitWork(rows, n, 1, [&](int64_t r0, int64_t r1) { K().softmaxRows(p, r0, r1 - r0, n, period, offset); });
  return undefinedValue(a.env);
}

// softmaxBackwardRows(p, d, rows, n, maskPeriod, maskOffset)
napi_value softmaxBackwardRows(const Args& a) {
  const int64_t rows = count(a, 2), n = count(a, 3), size = times(rows, n);
  const float* p = floats(a, 0, "p", size);
  float* d = floats(a, 1, "d", size);
  checkMask(a, 4);
  const int64_t period = a.i64(4), offset = a.i64(5);
  splitWork(rows, n, 1, [&](int64_t r0, int64_t r1) { K().softmaxBackwardRows(p, d, r0, r1 - r0, n, period, offset); });
  return undefinedValue(a.env);
}

// copyRows(src, srcOff, srcStride, dst, dstOff, dstStride, rows, width, accumulate)
napi_value copyRows(const Args& a) {
  const int64_t srcOff = count(a, 1), srcStride = count(a, 2), dstOff = count(a, 4), dstStride = count(a, 5), rows = count(a, 6), width = count(a, 7);
  const bool accumulate = a.flag(8);
  const int64_t srcNeed = rows == 0 || width == 0 ? 0 : srcOff + times(rows - 1, srcStride) + width;
  const int64_t dstNeed = rows == 0 || width == 0 ? 0 : dstOff + times(rows - 1, dstStride) + width;
  const float* src = floats(a, 0, "src", srcNeed) + srcOff;
  float* dst = floats(a, 3, "dst", dstNeed) + dstOff;
  if (srcNeed == 0) return undefinedValue(a.env);
  if (rows == 1 || (srcStride == width && dstStride == width)) {
    // One contiguous run: cut it by elements, whatever its rows.
    splitWork(rows * width, 1, kAlign, [&](int64_t e0, int64_t e1) { K().copyRows(src + e0, 0, dst + e0, 0, 1, e1 - e0, accumulate); });
  } else {
    splitWork(rows, width, 1, [&](int64_t r0, int64_t r1) { K().copyRows(src + r0 * srcStride, srcStride, dst + r0 * dstStride, dstStride, r1 - r0, width, accumulate); });
  }
  return undefinedValue(a.env);
}

// sumSquares(x, n): float64, summed in chunks of a fixed size so that the result does not depend on the thread count.
napi_value sumSquares(const Args& a) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t n = count(a, 1);
  const float* x = floats(a, 0, "x", n);
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(std::max<int64_t>(chunks, 1), 0.0);
  splitWork(chunks, kChunk, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) partial[c] = K().sumSquares(x + c * kChunk, std::min(kChunk, n - c * kChunk));
  });
  double s = 0;
  for (double p : partial) s += p;
  return number(a.env, s);
}

// gatherRows(src, srcRows, index, weight | null, dst, rows, width, accumulate)
napi_value gatherRows(const Args& a) {
  const int64_t srcRows = count(a, 1), rows = count(a, 5), width = count(a, 6);
  const float* src = floats(a, 0, "src", times(srcRows, width));
  const int32_t* index = ints(a, 2, "index", rows);
  const float* weight = floatsOrNull(a, 3, "weight", rows);
  float* dst = floats(a, 4, "dst", times(rows, width));
  const bool accumulate = a.flag(7);
  checkIndex(index, rows, srcRows);
  splitWork(rows, width, 1, [&](int64_t r0, int64_t r1) {
    K().gatherRows(src, index + r0, weight ? weight + r0 : nullptr, dst + r0 * width, r1 - r0, width, accumulate);
  });
  return undefinedValue(a.env);
}

// scatterAddRows(src, index, weight | null, dst, dstRows, rows, width)
napi_value scatterAddRows(const Args& a) {
  const int64_t dstRows = count(a, 4), rows = count(a, 5), width = count(a, 6);
  const float* src = floats(a, 0, "src", times(rows, width));
  const int32_t* index = ints(a, 1, "index", rows);
  const float* weight = floatsOrNull(a, 2, "weight", rows);
  float* dst = floats(a, 3, "dst", times(dstRows, width));
  checkIndex(index, rows, dstRows);
  if (Pool::get().threads() == 1 || rows * width < kParallelMinWork) {
    K().scatterAddRows(src, index, weight, dst, rows, width);
    return undefinedValue(a.env);
  }
  // Group the sources by destination (a counting sort that keeps source order), so that each
  // destination row is summed by one thread, in the same order as on one thread.
  std::vector<int64_t> starts(dstRows + 1, 0);
  std::vector<int32_t> order(rows);
  for (int64_t m = 0; m < rows; m++) starts[index[m] + 1]++;
  for (int64_t d = 0; d < dstRows; d++) starts[d + 1] += starts[d];
  std::vector<int64_t> fill(starts.begin(), starts.end() - 1);
  for (int64_t m = 0; m < rows; m++) order[fill[index[m]]++] = static_cast<int32_t>(m);
  splitWork(dstRows, static_cast<double>(rows) * width / std::max<int64_t>(1, dstRows), 1, [&](int64_t d0, int64_t d1) {
    K().scatterAddGrouped(src, order.data(), starts.data(), weight, dst, d0, d1, width);
  });
  return undefinedValue(a.env);
}

// rowDots(a, aRows, index, b, out, rows, width)
napi_value rowDots(const Args& a) {
  const int64_t aRows = count(a, 1), rows = count(a, 5), width = count(a, 6);
  const float* x = floats(a, 0, "a", times(aRows, width));
  const int32_t* index = ints(a, 2, "index", rows);
  const float* y = floats(a, 3, "b", times(rows, width));
  float* out = floats(a, 4, "out", rows);
  checkIndex(index, rows, aRows);
  splitWork(rows, width, 1, [&](int64_t r0, int64_t r1) { K().rowDots(x, index + r0, y + r0 * width, out + r0, r1 - r0, width); });
  return undefinedValue(a.env);
}

}  // namespace

void registerRows(napi_env env, napi_value exports) {
  define(env, exports, "swiglu", 4, swiglu);
  define(env, exports, "swigluBackward", 7, swigluBackward);
  define(env, exports, "rmsnorm", 7, rmsnorm);
  define(env, exports, "rmsnormBackward", 9, rmsnormBackward);
  define(env, exports, "logSumExpRows", 4, logSumExpRows);
  define(env, exports, "softmaxXentBackward", 7, softmaxXentBackward);
  define(env, exports, "softmaxRows", 5, softmaxRows);
  define(env, exports, "softmaxBackwardRows", 6, softmaxBackwardRows);
  define(env, exports, "copyRows", 9, copyRows);
  define(env, exports, "sumSquares", 2, sumSquares);
  define(env, exports, "gatherRows", 8, gatherRows);
  define(env, exports, "scatterAddRows", 7, scatterAddRows);
  define(env, exports, "rowDots", 7, rowDots);
}

}  // namespace ns
