#include "cpu.h"

#include <cstdlib>
#include <cstring>

namespace ns {

const Cpu& cpu() {
  static const Cpu c = [] {
    Cpu r;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    r.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    r.avx512 = r.avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq");
    r.vnni = r.avx512 && __builtin_cpu_supports("avx512vnni");
    r.bf16 = r.avx512 && __builtin_cpu_supports("avx512bf16");
    // NANOSEEK_SIMD=avx2|portable caps the instruction sets, so that tests can run the other paths.
    const char* cap = std::getenv("NANOSEEK_SIMD");
    if (cap != nullptr && (std::strcmp(cap, "avx2") == 0 || std::strcmp(cap, "portable") == 0)) {
      r.avx512 = r.vnni = r.bf16 = false;
      if (std::strcmp(cap, "portable") == 0) r.avx2 = false;
    }
    r.name = r.vnni ? "avx512-vnni" : r.avx512 ? "avx512" : r.avx2 ? "avx2" : "portable";
#endif
    return r;
  }();
  return c;
}

}  // namespace ns
