// Which backend computes: a kind and a thread count, from the caller (initBackend) or from the
// environment (NANOSEEK_BACKEND=reference|wasm, NANOSEEK_THREADS=N). A further backend (native BLAS,
// WebGPU) becomes one more kind here; nothing outside src/kernels names one.
import type { Backend } from './backend.js';
import { referenceBackend } from './reference.js';
import { createWasmBackend } from './wasm.js';

export type BackendKind = 'wasm' | 'reference';

export interface BackendChoice {
  /** Default: NANOSEEK_BACKEND, else 'wasm'. */
  kind?: BackendKind;
  /** Threads per kernel call, the caller's included (WASM). Default: NANOSEEK_THREADS, else all cores. */
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
  const kind: string = choice.kind ?? env.NANOSEEK_BACKEND ?? 'wasm';
  if (kind === 'reference') return referenceBackend;
  if (kind === 'wasm') return createWasmBackend({ threads: choice.threads ?? threadsFromEnv(env) });
  throw new Error(choice.kind === undefined ? `NANOSEEK_BACKEND must be 'reference' or 'wasm', got '${kind}'` : `backend kind must be 'reference' or 'wasm', got '${kind}'`);
}

/** The backend the environment asks for (both variables are checked, whichever the kind). */
export function backendFromEnv(env: NodeJS.ProcessEnv = process.env): Backend {
  threadsFromEnv(env);
  return createBackend({}, env);
}
