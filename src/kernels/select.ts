// Which backend computes: a kind and a thread count, from the caller (initBackend) or from the
// environment (NANOSEEK_BACKEND=native|wasm|reference, NANOSEEK_THREADS=N). The default is the native
// backend where its addon was built and loads, else WASM. A further backend (WebGPU) becomes one more
// kind here; nothing outside src/kernels names one.
import type { Backend } from './backend.js';
import { loadNativeAddon, NativeBackend, nativeUnavailableReason } from './native.js';
import { referenceBackend } from './reference.js';
import { createWasmBackend } from './wasm.js';

export type BackendKind = 'native' | 'wasm' | 'reference';

const KINDS = "'native', 'wasm' or 'reference'";

export interface BackendChoice {
  /** Default: NANOSEEK_BACKEND, else 'native' when the addon loads, else 'wasm'. */
  kind?: BackendKind;
  /** Threads per kernel call, the caller's included. Default: NANOSEEK_THREADS, else all cores. */
  threads?: number;
}

function threadsFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const value = env.NANOSEEK_THREADS;
  if (value === undefined || value === '') return undefined;
  const threads = Number(value);
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`NANOSEEK_THREADS must be a positive integer, got '${value}'`);
  return threads;
}

/** A new backend as `choice` says; what it leaves out, the environment (then the defaults) decides. */
export function createBackend(choice: BackendChoice = {}, env: NodeJS.ProcessEnv = process.env): Backend {
  const requested: string | undefined = choice.kind ?? (env.NANOSEEK_BACKEND || undefined);
  const threads = choice.threads ?? threadsFromEnv(env);
  const kind = requested ?? (loadNativeAddon() !== null ? 'native' : 'wasm');
  if (kind === 'reference') return referenceBackend;
  if (kind === 'wasm') return createWasmBackend({ threads });
  if (kind === 'native') {
    const lib = loadNativeAddon();
    if (lib === null) throw new Error(`the native backend is not available: ${nativeUnavailableReason()}; use NANOSEEK_BACKEND=wasm`);
    return new NativeBackend(lib, () => createWasmBackend({ threads }), threads);
  }
  throw new Error(choice.kind === undefined ? `NANOSEEK_BACKEND must be ${KINDS}, got '${kind}'` : `backend kind must be ${KINDS}, got '${kind}'`);
}

/** The backend the environment asks for (both variables are checked, whichever the kind). */
export function backendFromEnv(env: NodeJS.ProcessEnv = process.env): Backend {
  threadsFromEnv(env);
  return createBackend({}, env);
}
