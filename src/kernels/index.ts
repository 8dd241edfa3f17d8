// What the rest of nanoseek imports for compute. Nothing needs importing for its side effects: the
// backend is built on the first kernel call (from NANOSEEK_BACKEND / NANOSEEK_THREADS, default WASM SIMD
// on all cores) unless initBackend() chose one first.
export * from './backend.js';
export * from './memory.js';
export { adamwReference, gemmReference, referenceBackend } from './reference.js';
export { checkAdamW, checkGemm } from './validate.js';
export { backendFromEnv, createBackend, type BackendChoice, type BackendKind } from './select.js';
export { createWasmBackend, relaxedSimdSupported, type SimdVariant, WasmBackend, type WasmBackendOptions } from './wasm.js';
export { loadNativeAddon, NativeBackend, nativeUnavailableReason, type NativeAddon } from './native.js';
