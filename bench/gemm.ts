// GEMM throughput of the native and WASM backends on the shapes a small DeepSeek model runs (square
// blocks, a 32-token batch through a 1024→4096 projection, and decoding one or a few tokens, with B
// row-major and, as the model's linear layers store their weights, transposed), on one thread and on
// all of them, and (with a peer) of numpy on OpenBLAS with the same thread count, timed the same way
// in the same run: one sample of each in turn, so that none competes for cores with another and all
// see the same background load, then the medians.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { allocF32, createWasmBackend, freeF32, gemmArgs, loadNativeAddon, NativeBackend, type Backend, type GemmArgs, type WasmBackend } from '../src/kernels/index.js';

/** Debian's interpreter, which sees python3-numpy on OpenBLAS (a pyenv python3 earlier on PATH does not). */
const PYTHON = process.env.NANOSEEK_PYTHON ?? '/usr/bin/python3';

export interface GemmShape {
  m: number;
  k: number;
  n: number;
  /** B stored n×k (C = A·Bᵀ, the layout of a linear layer's weight). */
  transB?: boolean;
}

export const GEMM_SHAPES: readonly GemmShape[] = [
  { m: 128, k: 128, n: 128 },
  { m: 256, k: 256, n: 256 },
  { m: 512, k: 512, n: 512 },
  { m: 1024, k: 1024, n: 1024 },
  { m: 32, k: 1024, n: 4096 },
  { m: 1, k: 2048, n: 2048 },
  { m: 1, k: 2048, n: 2048, transB: true },
  { m: 4, k: 2048, n: 2048, transB: true },
];

/** Shapes from "MxKxN[t],…" (t: B transposed), as `bench gemm --shapes` takes them. */
export function parseGemmShapes(spec: string): GemmShape[] {
  return spec.split(',').map((item) => {
    const match = /^(\d+)x(\d+)x(\d+)(t?)$/.exec(item.trim());
    const dims = match === null ? [] : match.slice(1, 4).map(Number);
    if (match === null || dims.some((d) => d < 1)) throw new Error(`--shapes: expected MxKxN or MxKxNt with positive sizes, got '${item}'`);
    const [m, k, n] = dims;
    return match[4] === 't' ? { m, k, n, transB: true } : { m, k, n };
  });
}

export interface GemmBenchRow {
  backend: string;
  m: number;
  k: number;
  n: number;
  /** Present (true) where B is transposed. */
  transB?: boolean;
  threads: number;
  gflops: number;
  peer?: string;
  peer_gflops?: number;
  /** gflops / peer_gflops */
  ratio?: number;
}

export type GemmBenchBackend = 'native' | 'wasm';

export interface GemmBenchOptions {
  /** Default: both where the native addon loads, else WASM alone. */
  backends?: readonly GemmBenchBackend[];
  /** The "all threads" count (default: all cores); every shape also runs on one thread. */
  threads?: number;
  /** Also time numpy (bench/peer_gemm.py) with the same thread count. */
  peer?: boolean;
  shapes?: readonly GemmShape[];
  /** Length of one timing sample. */
  seconds?: number;
  /** Samples per measurement; the median is reported. */
  samples?: number;
}

function fillRandom(a: Float32Array, seed: number): void {
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2147483648 - 1;
  }
}

/** C = A·B (or A·Bᵀ) on heap arrays, timed like the peer: calls per sample found while warming up, then one sample at a time. */
class Timed {
  private readonly g: GemmArgs;
  private calls = 1;

  constructor({ m, k, n, transB = false }: GemmShape) {
    const a = allocF32(m * k), b = allocF32(k * n), c = allocF32(m * n);
    fillRandom(a, 1);
    fillRandom(b, 2);
    this.g = gemmArgs({ m, n, k, a, b, c, transB, ldb: transB ? k : n });
  }

  /** Warms `be` up and finds how many calls fill `seconds` (the largest count any backend needs). */
  calibrate(be: Backend, seconds: number): void {
    let calls = 1;
    for (;;) {
      const start = performance.now();
      for (let i = 0; i < calls; i++) be.gemm(this.g);
      if (performance.now() - start >= (seconds * 1000) / 2) break;
      calls *= 2;
    }
    this.calls = Math.max(this.calls, calls);
  }

  /** GFLOP/s of one sample. */
  sample(be: Backend): number {
    const start = performance.now();
    for (let i = 0; i < this.calls; i++) be.gemm(this.g);
    const seconds = (performance.now() - start) / 1000 / this.calls;
    return (2 * this.g.m * this.g.k * this.g.n) / seconds / 1e9;
  }

  free(): void {
    for (const x of [this.g.a, this.g.b, this.g.c]) freeF32(x as Float32Array);
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[s.length >> 1];
}

function peerScript(): string {
  // bench/ next to this file when run from source (tsx); two levels up from dist/bench when compiled.
  for (const rel of ['./peer_gemm.py', '../../bench/peer_gemm.py']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error('bench/peer_gemm.py not found next to bench/gemm.ts');
}

/** One long-lived peer process per thread count: OpenBLAS fixes its pool size when it loads. */
class Peer {
  readonly name: string;
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    private readonly stderr: () => string,
    hello: { peer: string },
  ) {
    this.name = hello.peer;
  }

  static async start(threads: number): Promise<Peer> {
    const t = String(threads);
    const child = spawn(PYTHON, [peerScript()], {
      env: { ...process.env, OPENBLAS_NUM_THREADS: t, OMP_NUM_THREADS: t, MKL_NUM_THREADS: t },
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const spawnError = new Promise<never>((_, reject) => child.on('error', reject));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await Promise.race([lines.next(), spawnError]).catch((e: Error) => {
      throw new Error(`peer: cannot run ${PYTHON}: ${e.message}`);
    });
    if (first.done) {
      throw new Error(`peer: ${PYTHON} bench/peer_gemm.py exited: ${err.trim().split('\n').slice(-3).join(' ')} (numpy comes from scripts/install-system-deps.sh; NANOSEEK_PYTHON picks another interpreter)`);
    }
    return new Peer(child, lines, () => err, JSON.parse(first.value) as { peer: string });
  }

  /** GFLOP/s of one sample (the peer keeps its operands and calls per sample while the shape stays the same). */
  async sample(shape: GemmShape, seconds: number): Promise<number> {
    this.child.stdin.write(`${JSON.stringify({ ...shape, seconds, samples: 1 })}\n`);
    const line = await this.lines.next();
    if (line.done) throw new Error(`peer: bench/peer_gemm.py exited: ${this.stderr().trim().split('\n').slice(-3).join(' ')}`);
    return (JSON.parse(line.value) as { gflops: number }).gflops;
  }

  close(): void {
    this.child.stdin.end();
  }
}

/** A backend of each kind asked for on `threads` threads, named with its instruction set. */
function makeBackends(kinds: readonly GemmBenchBackend[], threads: number): { name: string; be: Backend; dispose(): Promise<void> }[] {
  return kinds.map((kind) => {
    if (kind === 'wasm') {
      const be: WasmBackend = createWasmBackend({ threads });
      return { name: `wasm-${be.simd}`, be, dispose: () => be.dispose() };
    }
    const lib = loadNativeAddon();
    if (lib === null) throw new Error('bench gemm: the native addon is not built (npm run build:native)');
    const be = new NativeBackend(lib, () => createWasmBackend({ threads }), threads);
    return { name: `native-${be.simd}`, be, dispose: async () => {} };
  });
}

/** Rows for every shape and backend on one thread and on `threads`, with (optionally) the peer's figure from the same samples. */
export async function benchGemm(opts: GemmBenchOptions = {}): Promise<GemmBenchRow[]> {
  const all = opts.threads ?? os.availableParallelism();
  const counts = all === 1 ? [1] : [1, all];
  const seconds = opts.seconds ?? 0.1;
  const samples = opts.samples ?? 7;
  const kinds = opts.backends ?? (loadNativeAddon() !== null ? ['native', 'wasm'] : ['wasm']);
  const backends = counts.map((threads) => makeBackends(kinds, threads));
  const peers: Peer[] = [];
  try {
    if (opts.peer) for (const t of counts) peers.push(await Peer.start(t));
    const rows: GemmBenchRow[] = [];
    for (const shape of opts.shapes ?? GEMM_SHAPES) {
      const timed = new Timed(shape);
      try {
        for (let i = 0; i < counts.length; i++) {
          for (const { be } of backends[i]) timed.calibrate(be, seconds);
          const ours: number[][] = backends[i].map(() => []);
          const theirs: number[] = [];
          for (let s = 0; s < samples; s++) {
            backends[i].forEach(({ be }, j) => ours[j].push(timed.sample(be)));
            if (opts.peer) theirs.push(await peers[i].sample(shape, seconds));
          }
          const { m, k, n, transB } = shape;
          backends[i].forEach(({ name }, j) => {
            const gflops = median(ours[j]);
            const row: GemmBenchRow = { backend: name, m, k, n, ...(transB ? { transB } : {}), threads: counts[i], gflops: round(gflops) };
            if (opts.peer) {
              const peerGflops = median(theirs);
              Object.assign(row, { peer: peers[i].name, peer_gflops: round(peerGflops), ratio: round(gflops / peerGflops, 3) });
            }
            rows.push(row);
          });
        }
      } finally {
        timed.free();
      }
    }
    return rows;
  } finally {
    for (const p of peers) p.close();
    await Promise.all(backends.flat().map((b) => b.dispose()));
  }
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The rows as an aligned text table. */
export function formatGemmRows(rows: readonly GemmBenchRow[]): string {
  const head = ['backend', 'm', 'k', 'n', 'B', 'threads', 'GFLOP/s'];
  const peer = rows.some((r) => r.peer !== undefined);
  if (peer) head.push('peer', 'peer GFLOP/s', 'ratio');
  const body = rows.map((r) => {
    const cells = [r.backend, r.m, r.k, r.n, r.transB ? 'Bᵀ' : 'B', r.threads, r.gflops.toFixed(1)].map(String);
    if (peer) cells.push(r.peer ?? '', r.peer_gflops?.toFixed(1) ?? '', r.ratio?.toFixed(2) ?? '');
    return cells;
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((c) => c[i].length)));
  return [head, ...body].map((cells) => cells.map((c, i) => (i === 0 || (peer && i === 7) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd()).join('\n');
}
