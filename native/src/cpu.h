// Which SIMD instruction sets this CPU has, detected once. Kernels are compiled in several variants
// (target attributes) and pick the best one the CPU runs.
#pragma once

namespace ns {

struct Cpu {
  bool avx2 = false;  // with FMA and F16C
  bool avx512 = false;  // F, BW, VL, DQ
  bool vnni = false;  // AVX512_VNNI
  bool bf16 = false;  // AVX512_BF16
  /** The best path, for `info()`: "avx512-vnni", "avx512", "avx2" or "portable". */
  const char* name = "portable";
};

const Cpu& cpu();

}  // namespace ns
