// Shared test fixtures: deterministic pseudo-random data without depending on Math.random.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Tensor, fromArray, type DType } from '../src/tensor/index.js';
/** Deterministic uniform [0, 1) numbers from a 32-bit seed (mulberry32): test data that is the same on every run. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}


/** A deterministic value in (-1, 1) for index i under a seed (a hash, not a stream). */
export function noise(i: number, seed: number): number {
  let h = (Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(seed + 7, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return (h / 4294967296) * 2 - 1;
}

export function randTensor(shape: number[], seed: number, dtype: DType = 'f64', scaleBy = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = noise(i, seed) * scaleBy;
  return fromArray(v, shape, dtype);
}

/** node arguments that run the nanoseek CLI: the compiled one next to compiled tests, the sources under tsx. */
export function cliArgs(): string[] {
  const ts = import.meta.url.endsWith('.ts');
  const main = fileURLToPath(new URL(`../src/cli/main.${ts ? 'ts' : 'js'}`, import.meta.url));
  return ts ? ['--import', 'tsx', main] : [main];
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `nanoseek args…` to the end (in `cwd`, with `input` on stdin) and returns what it printed. */
export function runCli(args: readonly string[], opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [...cliArgs(), ...args], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(opts.input ?? '');
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
