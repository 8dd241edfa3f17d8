// AdamW for the native backend: one pass over param, grad and both moments (the loop is the
// element-wise kernel `adamw` of rows-kernels.inc), cut across threads for large tensors.
#include <cmath>
#include <string>

#include "napi.h"
#include "rows.h"

namespace ns {

namespace {

// adamw(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step, gradScale)
napi_value adamw(const Args& a) {
  const int64_t n = a.i64(4), step = a.i64(10);
  if (n < 0) a.fail(4, "n must be a non-negative integer");
  if (step < 1) a.fail(10, "step must be an integer >= 1");
  const char* names[] = {"param", "grad", "m", "v"};
  float* arrays[4];
  for (size_t i = 0; i < 4; i++) {
    size_t len;
    arrays[i] = a.f32(i, &len);
    if (static_cast<int64_t>(len) < n) throw ArgError(std::string(names[i]) + " has " + std::to_string(len) + " elements, needs " + std::to_string(n));
  }
  const double lr = a.num(5), beta1 = a.num(6), beta2 = a.num(7), eps = a.num(8), weightDecay = a.num(9), gradScale = a.num(11);
  // The step's constants in float64, as the reference computes them, then rounded once.
  const AdamWStep s{static_cast<float>(gradScale),
                    static_cast<float>(beta1),
                    static_cast<float>(beta2),
                    static_cast<float>(eps),
                    static_cast<float>(1 - lr * weightDecay),
                    static_cast<float>(lr / (1 - std::pow(beta1, static_cast<double>(step)))),
                    static_cast<float>(1 / (1 - std::pow(beta2, static_cast<double>(step))))};
  float *param = arrays[0], *grad = arrays[1], *m = arrays[2], *v = arrays[3];
  // About 16 float operations per parameter.
  splitWork(n, 16, 16, [&](int64_t i0, int64_t i1) { rowKernels().adamw(param + i0, grad + i0, m + i0, v + i0, i1 - i0, s); });
  return undefinedValue(a.env);
}

}  // namespace

void registerAdamw(napi_env env, napi_value exports) { define(env, exports, "adamw", 12, adamw); }

}  // namespace ns
