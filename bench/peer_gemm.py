"""GEMM timing peer for `nanoseek bench gemm --peer`: numpy on OpenBLAS, timed like bench/gemm.ts.

The caller sets OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS) before starting it, since OpenBLAS sizes
its pool when it loads. It prints one JSON line describing itself, then answers each request line
{"m", "k", "n", "seconds", "samples"[, "transB"]} with {"gflops"}: C = A @ B in float32 (A @ B.T with
B stored n×k when transB is true), warmed up, then the median of `samples` timings of as many calls
as take about `seconds` each. Requests for the shape of the previous one reuse its operands and its
calls per sample, so that the caller can ask for one sample at a time, alternating with its own.
"""

import json
import os
import statistics
import sys
import time

import numpy as np


def blas_name():
    """Which BLAS numpy actually loaded (Debian switches libblas.so.3 through alternatives)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            libs = {line.split()[-1] for line in maps if ".so" in line}
    except OSError:
        return "unknown BLAS"
    for lib in sorted(libs):
        if "openblas" in lib:
            return "OpenBLAS (pthread)" if "pthread" in lib else "OpenBLAS"
    for lib in sorted(libs):
        if "libblas" in lib or "mkl" in lib or "blis" in lib:
            return os.path.basename(lib)
    return "unknown BLAS"


_prepared = {}


def prepare(m, k, n, seconds, trans_b):
    """Operands, and the calls that fill `seconds` (found while warming up), kept for the next request."""
    key = (m, k, n, seconds, trans_b)
    if key not in _prepared:
        _prepared.clear()
        rng = np.random.default_rng(0)
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((n, k), dtype=np.float32).T if trans_b else rng.standard_normal((k, n), dtype=np.float32)
        c = np.empty((m, n), dtype=np.float32)
        calls = 1
        while True:
            start = time.perf_counter()
            for _ in range(calls):
                np.matmul(a, b, out=c)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / 2:
                break
            calls *= 2
        _prepared[key] = (a, b, c, calls)
    return _prepared[key]


def time_gemm(m, k, n, seconds, samples, trans_b=False):
    a, b, c, calls = prepare(m, k, n, seconds, trans_b)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(calls):
            np.matmul(a, b, out=c)
        times.append((time.perf_counter() - start) / calls)
    return 2.0 * m * k * n / statistics.median(times) / 1e9


def main():
    # Loading numpy is what starts OpenBLAS; matmul once so the library is mapped before we look.
    np.matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32))
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(json.dumps({"peer": f"numpy-{np.__version__} {blas_name()}", "threads": threads}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        gflops = time_gemm(req["m"], req["k"], req["n"], req["seconds"], req["samples"], bool(req.get("transB", False)))
        print(json.dumps({"gflops": gflops}), flush=True)


if __name__ == "__main__":
    main()
