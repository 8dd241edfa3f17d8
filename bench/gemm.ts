// GEMM throughput of the WASM backend on the shapes a small DeepSeek model runs (square blocks, a
// 32-token batch through a 1024→4096 projection, and decoding one or a few tokens, with B row-major
// and, as the model's linear layers store their weights, transposed), on one thread and on
// all of them, and (with a peer) of numpy on OpenBLAS with the same thread count, timed the same way
// in the same run, one after the other so that neither competes for cores.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { allocF32, createWasmBackend, freeF32, gemmArgs, type Backend } from '../src/kernels/index.js';

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

export interface GemmBenchOptions {
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

/** C = A·B timed like the peer: warm up while finding how many calls fill a sample, then the median. */
function timeGemm(be: Backend, { m, k, n, transB = false }: GemmShape, seconds: number, samples: number): number {
  const a = allocF32(m * k);
  const b = allocF32(k * n);
  const c = allocF32(m * n);
  fillRandom(a, 1);
  fillRandom(b, 2);
  const g = gemmArgs({ m, n, k, a, b, c, transB, ldb: transB ? k : n });
  try {
    let calls = 1;
    for (;;) {
      const start = performance.now();
      for (let i = 0; i < calls; i++) be.gemm(g);
      if (performance.now() - start >= (seconds * 1000) / 2) break;
      calls *= 2;
    }
    const times: number[] = [];
    for (let s = 0; s < samples; s++) {
      const start = performance.now();
      for (let i = 0; i < calls; i++) be.gemm(g);
      times.push((performance.now() - start) / 1000 / calls);
    }
    times.sort((x, y) => x - y);
    return (2 * m * k * n) / times[times.length >> 1] / 1e9;
  } finally {
    freeF32(a);
    freeF32(b);
    freeF32(c);
  }
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

  async time(shape: GemmShape, seconds: number, samples: number): Promise<number> {
    this.child.stdin.write(`${JSON.stringify({ ...shape, seconds, samples })}\n`);
    const line = await this.lines.next();
    if (line.done) throw new Error(`peer: bench/peer_gemm.py exited: ${this.stderr().trim().split('\n').slice(-3).join(' ')}`);
    return (JSON.parse(line.value) as { gflops: number }).gflops;
  }

  close(): void {
    this.child.stdin.end();
  }
}

/** Rows for every shape on one thread and on `threads`, ours and (optionally) the peer's, interleaved. */
export async function benchGemm(opts: GemmBenchOptions = {}): Promise<GemmBenchRow[]> {
  const all = opts.threads ?? os.availableParallelism();
  const counts = all === 1 ? [1] : [1, all];
  const seconds = opts.seconds ?? 0.1;
  const samples = opts.samples ?? 7;
  const backends = counts.map((threads) => createWasmBackend({ threads }));
  const peers: Peer[] = [];
  try {
    if (opts.peer) for (const t of counts) peers.push(await Peer.start(t));
    const rows: GemmBenchRow[] = [];
    for (const shape of opts.shapes ?? GEMM_SHAPES) {
      for (let i = 0; i < counts.length; i++) {
        const be = backends[i];
        const gflops = timeGemm(be, shape, seconds, samples);
        const { m, k, n, transB } = shape;
        const row: GemmBenchRow = { backend: `${be.name}-${be.simd}`, m, k, n, ...(transB ? { transB } : {}), threads: counts[i], gflops: round(gflops) };
        if (opts.peer) {
          const peerGflops = await peers[i].time(shape, seconds, samples);
          Object.assign(row, { peer: peers[i].name, peer_gflops: round(peerGflops), ratio: round(gflops / peerGflops, 3) });
        }
        rows.push(row);
      }
    }
    return rows;
  } finally {
    for (const p of peers) p.close();
    await Promise.all(backends.map((b) => b.dispose()));
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
