// What the rest of nanoseek imports for compute. Importing it installs the default backend: WASM SIMD
// on all cores, unless NANOSEEK_BACKEND=reference|wasm or NANOSEEK_THREADS=N say otherwise.
import { type Backend, registerDefaultBackend } from './backend.js';
import { referenceBackend } from './reference.js';
import { createWasmBackend } from './wasm.js';

export * from './backend.js';
export * from './memory.js';
export { adamwReference, gemmReference, referenceBackend } from './reference.js';
export { checkAdamW, checkGemm } from './validate.js';
export { createWasmBackend, relaxedSimdSupported, type SimdVariant, WasmBackend, type WasmBackendOptions } from './wasm.js';

/** The backend the environment asks for. */
export function backendFromEnv(env: NodeJS.ProcessEnv = process.env): Backend {
  const kind = env.NANOSEEK_BACKEND ?? 'wasm';
  const threadsVar = env.NANOSEEK_THREADS;
  let threads: number | undefined;
  if (threadsVar !== undefined && threadsVar !== '') {
    threads = Number(threadsVar);
    if (!Number.isInteger(threads) || threads < 1) {
      throw new Error(`NANOSEEK_THREADS must be a positive integer, got '${threadsVar}'`);
    }
  }
  if (kind === 'reference') return referenceBackend;
  if (kind === 'wasm') return createWasmBackend({ threads });
  throw new Error(`NANOSEEK_BACKEND must be 'reference' or 'wasm', got '${kind}'`);
}

registerDefaultBackend(() => backendFromEnv());
