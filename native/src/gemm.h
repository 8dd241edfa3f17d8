// Float32 matrix products for other native kernels (quantized weights decoded into float32 panels,
// for instance, then multiplied here). Row-major, like the JS-facing `gemm`.
#pragma once
#include <cstdint>

namespace ns {

/** C = alpha·op(A)·op(B) + beta·C with op(A) m×k, op(B) k×n; beta = 0 overwrites C, NaN included. */
struct Sgemm {
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;
  int64_t lda = 0;
  /** A is stored k×m (op(A) = Aᵀ). */
  bool transA = false;
  const float* b = nullptr;
  int64_t ldb = 0;
  /** B is stored n×k (op(B) = Bᵀ): a linear layer's weight [out, in]. */
  bool transB = false;
  float* c = nullptr;
  int64_t ldc = 0;
  float alpha = 1;
  float beta = 0;
};

/** On the pool's threads where the product is large enough. Call it from the JS thread, never from inside a Pool task. */
void sgemm(const Sgemm& g);

/** On the calling thread alone: the form to call from inside a Pool task. */
void sgemmSerial(const Sgemm& g);

}  // namespace ns
