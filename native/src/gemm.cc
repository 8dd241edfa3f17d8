// Float32 GEMM for the native backend: C = alpha·op(A)·op(B) + beta·C over strided batches.
//
// Large products follow the BLIS scheme: B is packed per cache block (KC rows × NC columns, shared by
// all threads), each thread packs a block of A rows (at most MC, sized for L2) and runs a register
// block of MR × NR over them, with the threads splitting C's rows (and its columns when A is short).
// A few rows of C (decoding) skip packing: dot products along k where B is stored transposed (a
// linear layer's weight), otherwise rows of B streamed through sums kept in L1, the rows split across
// threads; a few columns of C run the same paths on the transposed view. Small products stay on the
// calling thread, and batches of small products go one whole product per thread.
//
// The kernels are written once (gemm-kernels.inc) over the vector types of simd.h and compiled for
// AVX-512, AVX2 and portable code; cpu() picks one at run time.
#include "gemm.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cpu.h"
#include "napi.h"
#include "pool.h"
#include "simd.h"

namespace ns {

namespace {

/** A product as the kernels see it: C's element (i, j) at c[i·rsc + j·csc] (csc ≠ 1 only on the transposed view). */
struct Prob {
  int64_t m, n, k;
  const float* a;
  int64_t lda;
  bool transA;
  const float* b;
  int64_t ldb;
  bool transB;
  float* c;
  int64_t rsc, csc;
  float alpha, beta;
};

// Below this many floating-point operations a product stays on the calling thread: waking the pool
// costs a few microseconds, what the kernels do in about 2^20 operations.
constexpr double kParallelMinFlops = 1 << 21;
// Batches whose products are each smaller than this run one product per thread.
constexpr double kBatchItemMaxFlops = 1 << 24;
// Up to this many rows (or columns) of C, the unpacked paths.
constexpr int64_t kSmallRows = 8;

template <class F>
void forTasks(bool parallel, int tasks, const F& fn) {
  if (parallel && tasks > 1) {
    Pool::get().run(tasks, fn);
  } else {
    for (int t = 0; t < tasks; t++) fn(t, 0);
  }
}

enum { kScratchA, kScratchB, kScratchSlots };

/**
 * Per-thread packing space, kept between calls. Tasks run on pool threads, where an exception has
 * nowhere to go, so running out of memory here ends the process with a message.
 */
float* scratch(int slot, size_t floats) {
  struct Buffer {
    float* p = nullptr;
    size_t capacity = 0;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer buffers[kScratchSlots];
  Buffer& b = buffers[slot];
  if (floats > b.capacity) {
    std::free(b.p);
    const size_t bytes = (std::max<size_t>(floats, 16) * sizeof(float) + 63) / 64 * 64;
    b.p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (b.p == nullptr) {
      std::fprintf(stderr, "nanoseek native gemm: out of memory for %zu bytes of packing space\n", bytes);
      std::abort();
    }
    b.capacity = bytes / sizeof(float);
  }
  return b.p;
}

}  // namespace

#ifdef NS_SIMD_X86
NS_TARGET_AVX512
namespace avx512 {
namespace {
// 32 zmm registers: 24 accumulators (12 rows × 32 columns), 2 of B, 1 broadcast of A. A 256-deep
// sliver of B (32 KiB) stays in L1 while slivers of A (up to 252 rows, 252 KiB) come from L2.
using V = simd::Avx512;
constexpr int MR = 12, NV = 2, ACC = 16;
constexpr int64_t KC = 256, MC = 256, NC = 4096;
#include "gemm-kernels.inc"
}  // namespace
}  // namespace avx512
NS_TARGET_END

NS_TARGET_AVX2
namespace avx2 {
namespace {
// 16 ymm registers: 12 accumulators (6 rows × 16 columns), 2 of B, 1 broadcast.
using V = simd::Avx2;
constexpr int MR = 6, NV = 2, ACC = 8;
constexpr int64_t KC = 256, MC = 192, NC = 4096;
#include "gemm-kernels.inc"
}  // namespace
}  // namespace avx2
NS_TARGET_END
#endif

namespace portable {
namespace {
using V = simd::Portable;
constexpr int MR = 6, NV = 2, ACC = 8;
constexpr int64_t KC = 256, MC = 192, NC = 4096;
#include "gemm-kernels.inc"
}  // namespace
}  // namespace portable

namespace {

void product(const Prob& g, bool parallel) {
#ifdef NS_SIMD_X86
  if (cpu().avx512) return avx512::gemmOne(g, parallel);
  if (cpu().avx2) return avx2::gemmOne(g, parallel);
#endif
  portable::gemmOne(g, parallel);
}

/** C = beta·C, where there is nothing to multiply (k = 0 or alpha = 0); beta = 0 writes zeros. */
void scaleC(const Prob& g) {
  for (int64_t i = 0; i < g.m; i++) {
    float* c = g.c + i * g.rsc;
    if (g.beta == 0) std::fill(c, c + g.n, 0.0f);
    else if (g.beta != 1)
      for (int64_t j = 0; j < g.n; j++) c[j] *= g.beta;
  }
}

double flops(const Prob& g) { return 2.0 * g.m * g.n * g.k; }

void one(const Prob& g, bool parallel) {
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0 || g.alpha == 0) return scaleC(g);
  product(g, parallel && flops(g) >= kParallelMinFlops);
}

Prob fromSgemm(const Sgemm& s) {
  return Prob{s.m, s.n, s.k, s.a, s.lda, s.transA, s.b, s.ldb, s.transB, s.c, s.ldc, 1, s.alpha, s.beta};
}

/** Elements an operand of rows × cols with leading dimension ld spans over `batch` copies at `stride`: false on overflow. */
bool extent(int64_t off, int64_t stride, int64_t batch, int64_t rows, int64_t ld, int64_t cols, int64_t* out) {
  int64_t a, b, s;
  if (__builtin_mul_overflow(batch - 1, stride, &a) || __builtin_mul_overflow(rows - 1, ld, &b)) return false;
  if (__builtin_add_overflow(off, a, &s) || __builtin_add_overflow(s, b, &s) || __builtin_add_overflow(s, cols, &s)) return false;
  *out = s;
  return true;
}

void checkOperand(const char* name, size_t length, int64_t off, int64_t ld, int64_t stride, int64_t rows, int64_t cols, int64_t batch) {
  const std::string shape = std::string(name) + " (" + std::to_string(rows) + "x" + std::to_string(cols) + " stored, ld=" + std::to_string(ld) +
                            ", offset=" + std::to_string(off) + ", stride=" + std::to_string(stride) + ")";
  if (off < 0 || ld < 0 || stride < 0) throw ArgError(shape + ": ld, offset and stride must be non-negative");
  if (ld < cols) throw ArgError(shape + ": ld must be at least " + std::to_string(cols));
  if (rows == 0 || cols == 0 || batch == 0) return;
  int64_t need;
  if (!extent(off, stride, batch, rows, ld, cols, &need) || need > static_cast<int64_t>(length)) {
    throw ArgError(shape + " needs more than the " + std::to_string(length) + " elements " + name + " has");
  }
}

// gemm(m, n, k, a, aOff, lda, transA, b, bOff, ldb, transB, c, cOff, ldc, alpha, beta, batch, strideA, strideB, strideC)
napi_value gemm(const Args& args) {
  const int64_t m = args.i64(0), n = args.i64(1), k = args.i64(2), batch = args.i64(16);
  if (m < 0 || n < 0 || k < 0 || batch < 0) throw ArgError("m, n, k and batch must be non-negative");
  size_t aLen, bLen, cLen;
  float* a = args.f32(3, &aLen);
  float* b = args.f32(7, &bLen);
  float* c = args.f32(11, &cLen);
  const int64_t aOff = args.i64(4), lda = args.i64(5), bOff = args.i64(8), ldb = args.i64(9), cOff = args.i64(12), ldc = args.i64(13);
  const bool transA = args.flag(6), transB = args.flag(10);
  const int64_t strideA = args.i64(17), strideB = args.i64(18), strideC = args.i64(19);
  checkOperand("a", aLen, aOff, lda, strideA, transA ? k : m, transA ? m : k, batch);
  checkOperand("b", bLen, bOff, ldb, strideB, transB ? n : k, transB ? k : n, batch);
  checkOperand("c", cLen, cOff, ldc, strideC, m, n, batch);
  Prob g{m, n, k, a + aOff, lda, transA, b + bOff, ldb, transB, c + cOff, ldc, 1, static_cast<float>(args.num(14)), static_cast<float>(args.num(15))};
  if (m == 0 || n == 0 || batch == 0) return undefinedValue(args.env);
  auto item = [&](int64_t t) {
    Prob p = g;
    p.a += t * strideA;
    p.b += t * strideB;
    p.c += t * strideC;
    return p;
  };
  // Products of a batch that write disjoint parts of C can run side by side; a shared or overlapping
  // C (strideC = 0 sums the batch into one C) is written one product after the other.
  const bool disjoint = strideC > 0 && strideC >= (m - 1) * ldc + n;
  const int threads = Pool::get().threads();
  if (batch > 1 && batch <= INT32_MAX && disjoint && batch >= threads && flops(g) < kBatchItemMaxFlops && flops(g) * batch >= kParallelMinFlops) {
    Pool::get().run(static_cast<int>(batch), [&](int t, int) { one(item(t), false); });
  } else {
    for (int64_t t = 0; t < batch; t++) one(item(t), true);
  }
  return undefinedValue(args.env);
}

}  // namespace

void sgemm(const Sgemm& g) { one(fromSgemm(g), true); }

void sgemmSerial(const Sgemm& g) { one(fromSgemm(g), false); }

void registerGemm(napi_env env, napi_value exports) { define(env, exports, "gemm", 20, gemm); }

}  // namespace ns
