// The row-wise and element-wise kernels (rows-kernels.inc), one table per instruction set, and how
// their work is cut across the pool's threads. rows.cc and adamw.cc call them.
#pragma once
#include <cstdint>
#include <functional>

namespace ns {

/** One AdamW step's constants, from the hyperparameters and the step number. */
struct AdamWStep {
  float gradScale, beta1, beta2, eps;
  /** 1 − lr·weightDecay */
  float decay;
  /** lr / (1 − beta1^step) */
  float stepSize;
  /** 1 / (1 − beta2^step) */
  float invBc2;
};

struct RowKernels {
  void (*swiglu)(const float* gate, const float* up, float* out, int64_t n);
  void (*swigluBackward)(const float* gate, const float* up, const float* g, float* gGate, float* gUp, int64_t n, bool overwrite);
  void (*rmsnorm)(const float* x, const float* w, float* out, float* rstd, int64_t rows, int64_t dim, float eps);
  void (*rmsnormBackwardX)(const float* x, const float* w, const float* rstd, const float* g, float* gx, int64_t rows, int64_t dim, bool overwrite);
  void (*rmsnormBackwardW)(const float* x, const float* rstd, const float* g, float* gw, int64_t rows, int64_t dim, int64_t c0, int64_t c1);
  void (*logSumExpRows)(const float* x, float* lse, int64_t rows, int64_t n);
  void (*softmaxXentBackward)(const float* x, const float* lse, const int32_t* target, const float* weight, float* gx, int64_t rows, int64_t n);
  void (*softmaxRows)(float* p, int64_t r0, int64_t rows, int64_t n, int64_t period, int64_t offset);
  void (*softmaxBackwardRows)(const float* p, float* d, int64_t r0, int64_t rows, int64_t n, int64_t period, int64_t offset);
  void (*copyRows)(const float* src, int64_t srcStride, float* dst, int64_t dstStride, int64_t rows, int64_t width, bool accumulate);
  double (*sumSquares)(const float* x, int64_t n);
  void (*gatherRows)(const float* src, const int32_t* index, const float* weight, float* dst, int64_t rows, int64_t width, bool accumulate);
  void (*scatterAddRows)(const float* src, const int32_t* index, const float* weight, float* dst, int64_t rows, int64_t width);
  void (*scatterAddGrouped)(const float* src, const int32_t* order, const int64_t* starts, const float* weight, float* dst, int64_t d0, int64_t d1, int64_t width);
  void (*rowDots)(const float* a, const int32_t* index, const float* b, float* out, int64_t rows, int64_t width);
  void (*adamw)(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWStep& step);
};

/** The kernels for this CPU's best instruction set. */
const RowKernels& rowKernels();

/**
 * fn(begin, end) over [0, units) in ranges aligned to `align` units: on the calling thread alone
 * where units × cost (about one float operation each) is too little to wake the pool for, else in a
 * few ranges per thread.
 */
void splitWork(int64_t units, double cost, int64_t align, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace ns
