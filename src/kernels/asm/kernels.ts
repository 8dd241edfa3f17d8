// AssemblyScript source of the WASM compute kernels (built by scripts/build-kernels.mjs, twice: with
// relaxed SIMD, where a multiply-add is one fused instruction, and with plain SIMD as the fallback).
// All pointers are byte offsets into the one shared memory; the module owns no data of its own, so
// every thread instantiates it on the same memory without touching anything but the buffers it is given.
//
// This file is the module's entry: its exports are the module's. The kernels live by family:
//   gemm.ts   C = alpha·op(A)·op(B) + beta·C (packed, matrix-vector and small-m paths)
//   rows.ts   row-wise and element-wise kernels (SwiGLU, RMSNorm, softmax / cross-entropy, copies, gathers)
//   adamw.ts  the AdamW update
//   jobs.ts   the job block, plan() and work(): every call is cut into chunks that threads claim
//   simd.ts   lane helpers they share
// A new family (quantized matmuls, say) gets its own file, a job kind in jobs.ts and its exports here.
export { scratchBytes, sgemm } from './gemm';
export { adamw } from './adamw';
export {
  swigluRange, swigluBackwardRange, rmsnormRange, rmsnormBackwardXRange, rmsnormBackwardWRange, logSumExpRange,
  softmaxXentBackwardRange, softmaxRange, softmaxBackwardRange, copyRowsRange, sumSquaresRange, gatherRowsRange,
  scatterRowsRange, rowDotsRange,
} from './rows';
export { close, plan, maxThreads, work } from './jobs';
