{
  # The native backend: one N-API addon, built at `npm install` by scripts/build-native.mjs. SIMD
  # paths (AVX2, AVX-512, VNNI) are compiled per function with target attributes and chosen at run
  # time from the CPU's features (cpu.cc), so one build runs on any x86-64; other CPUs get the
  # portable C++ paths.
  "targets": [
    {
      "target_name": "nanoseek",
      "sources": [
        "src/addon.cc",
        "src/cpu.cc",
        "src/pool.cc",
        "src/gemm.cc",
        "src/rows.cc",
        "src/adamw.cc",
        "src/quant.cc",
        "src/quant/legacy.cc",
        "src/quant/kquants.cc",
        "src/quant/float.cc",
        "src/mmap.cc"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-O3", "-fno-math-errno", "-fno-trapping-math"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wno-unused-function"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
