// The native quantized products (packedMatmul) at the R1-Distill-Qwen-1.5B shapes, against
// llama.cpp's own ggml_mul_mat on the same weight bytes, activations and thread count: GB/s of
// weights streamed, GFLOP/s, and the ratio of llama.cpp's time to ours (> 1: we are faster).
// Ours and the peer alternate round by round and each reports the median of all its runs, so load
// from other processes on this shared machine hits both alike. Runs cycle through copies of the
// weights making up at least 256 MB, so decode (small m) streams them from memory as a model's
// forward pass does instead of finding them in the cache. The machine's read bandwidth is measured
// in the same run. The peer (bench/ggml-matmul.c) is compiled here against the libggml that
// node-llama-cpp ships; without it (no C compiler, not linux-x64) only our figures are reported.
//   nanoseek bench quant [--json] [--types Q4_K,Q8_0] [--shapes 1536x1536,…] [--m 1,8,32,512] [--threads 1,2] [--no-peer]
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadNativeAddon, nativeUnavailableReason, type NativeAddon } from '../src/kernels/native.js';
import { GGML_TYPES, type GgmlType, quantize, rowBytes } from '../src/kernels/quant/index.js';

/** [rows, cols] of the 1.5B model's products: q/o projections, k/v, gate/up, down, the head. */
export const QUANT_SHAPES: readonly (readonly [number, number])[] = [[1536, 1536], [256, 1536], [8960, 1536], [1536, 8960], [151936, 1536]];
export const QUANT_TYPES: readonly GgmlType[] = ['BF16', 'F16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'];

export interface QuantBenchOptions {
  types?: readonly GgmlType[];
  shapes?: readonly (readonly [number, number])[];
  ms?: readonly number[];
  threads?: readonly number[];
  peer?: boolean;
  /** Alternating rounds of ours and the peer (default 3). */
  rounds?: number;
  /** Seconds each side runs per round (at least one run; default 0.05). */
  seconds?: number;
  /** Bytes of weight copies cycled through. */
  workingSet?: number;
  /** Called with each row as it is measured. */
  onRow?: (row: QuantBenchRow) => void;
}

export interface QuantBenchRow {
  type: GgmlType;
  rows: number;
  cols: number;
  m: number;
  threads: number;
  ours_s: number;
  ours_gbps: number;
  ours_gflops: number;
  peer_s?: number;
  peer_gbps?: number;
  peer_gflops?: number;
  /** peer_s / ours_s */
  ratio?: number;
  /** Where llama.cpp keeps the weights (CPU_REPACK: interleaved rows for its GEMM kernels). */
  peer_buffer?: string;
  /** max |ours − peer| / max |peer|: both round the activations, so a few 1e-3 is agreement. */
  peer_diff?: number;
}

export interface QuantBenchResult {
  machine: string;
  date: string;
  simd: string;
  /** Read bandwidth (GB/s) by thread count, measured in this run. */
  bandwidth?: Record<string, number>;
  peer?: string;
  rows: QuantBenchRow[];
}

function random(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = (s + 0.5) / 4294967296;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos((2 * Math.PI * s) / 4294967296); // N(0, 1)
  }
  return x;
}

/**
 * A [rows, cols] weight in `type`: 64 distinct rows encoded by the reference encoder, repeated (the
 * kernels' speed does not depend on the values; encoding 233M values of the head would take minutes).
 */
function weights(type: GgmlType, rows: number, cols: number): Uint8Array {
  const rb = rowBytes(type, cols);
  const distinct = Math.min(rows, 64);
  const out = new Uint8Array(rb * rows);
  const w = random(distinct * cols, 17).map((v) => v * 0.05);
  out.set(quantize(type, w), 0);
  for (let r = distinct; r < rows; r += distinct) out.copyWithin(r * rb, 0, Math.min(distinct, rows - r) * rb);
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** llama.cpp's ggml_mul_mat, in a child process that loads node-llama-cpp's libggml. */
class GgmlPeer {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    private readonly stderr: () => string,
    readonly dir: string,
  ) {}

  static libDir(): string {
    return fileURLToPath(new URL(existsSync(fileURLToPath(new URL('../node_modules', import.meta.url))) ? '../node_modules/@node-llama-cpp/linux-x64/bins/linux-x64' : '../../node_modules/@node-llama-cpp/linux-x64/bins/linux-x64', import.meta.url));
  }

  /** Why the peer cannot run here, or undefined. */
  static unavailable(): string | undefined {
    if (process.platform !== 'linux' || process.arch !== 'x64') return `no prebuilt linux-x64 llama.cpp for ${process.platform}-${process.arch}`;
    if (!existsSync(join(GgmlPeer.libDir(), 'libggml-base.so'))) return `${GgmlPeer.libDir()}/libggml-base.so is not installed (node-llama-cpp)`;
    if (spawnSync(process.env.CC ?? 'cc', ['--version'], { stdio: 'ignore' }).status !== 0) return 'no C compiler';
    return undefined;
  }

  static async start(): Promise<GgmlPeer> {
    const dir = mkdtempSync(join(os.tmpdir(), 'nanoseek-bench-quant-'));
    const lib = GgmlPeer.libDir();
    const source = fileURLToPath(new URL(existsSync(fileURLToPath(new URL('./ggml-matmul.c', import.meta.url))) ? './ggml-matmul.c' : '../../bench/ggml-matmul.c', import.meta.url));
    const exe = join(dir, 'ggml-matmul');
    execFileSync(process.env.CC ?? 'cc', ['-O2', '-o', exe, source, `-L${lib}`, '-l:libggml-base.so', '-l:libggml.v0.5.0.so', `-Wl,-rpath,${lib}`, '-lpthread'], { stdio: 'pipe' });
    const child = spawn(exe, [lib]);
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    return new GgmlPeer(child, lines, () => err, dir);
  }

  async ask(command: string): Promise<string> {
    this.child.stdin.write(`${command}\n`);
    const line = await this.lines.next();
    if (line.done) throw new Error(`bench quant: the llama.cpp peer exited: ${this.stderr().trim().split('\n').slice(-3).join(' ')}`);
    return line.value;
  }

  close(): void {
    this.child.stdin.end();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function benchQuantNative(opts: QuantBenchOptions = {}): Promise<QuantBenchResult> {
  const lib = loadNativeAddon();
  if (lib === null || !lib.packedMatmul) throw new Error(`bench quant: the native backend is not available: ${nativeUnavailableReason() ?? 'no packedMatmul'}`);
  const addon: NativeAddon & { packedMatmul: NonNullable<NativeAddon['packedMatmul']> } = lib as never;
  const types = opts.types ?? QUANT_TYPES;
  const shapes = opts.shapes ?? QUANT_SHAPES;
  const ms = opts.ms ?? [1, 8, 32, 512];
  const threads = opts.threads ?? [...new Set([1, os.availableParallelism()])];
  const rounds = opts.rounds ?? 3;
  const seconds = opts.seconds ?? 0.05;
  const workingSet = opts.workingSet ?? 256 << 20;
  const why = opts.peer === false ? 'not asked for' : GgmlPeer.unavailable();
  const peer = why === undefined ? await GgmlPeer.start() : null;
  const result: QuantBenchResult = {
    machine: `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} threads, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    date: new Date().toISOString().slice(0, 10),
    simd: addon.info().simd,
    peer: peer ? 'llama.cpp ggml_mul_mat (the libggml node-llama-cpp ships)' : `none: ${why}`,
    rows: [],
  };
  try {
    if (peer) {
      result.bandwidth = {};
      for (const t of threads) result.bandwidth[String(t)] = Number(await peer.ask(`bw 512 ${t}`));
    }
    for (const type of types) {
      const id = GGML_TYPES[type].id;
      for (const [rows, cols] of shapes) {
        const w = weights(type, rows, cols);
        const copies = Math.max(1, Math.ceil(workingSet / w.length));
        const ws: Uint8Array[] = [w];
        for (let c = 1; c < copies; c++) ws.push(w.slice());
        let peerBuffer: string | undefined;
        if (peer) {
          const wpath = join(peer.dir, 'w.bin');
          writeFileSync(wpath, w);
          peerBuffer = (await peer.ask(`load ${id} ${rows} ${cols} ${copies} ${wpath}`)).replace(/^ok /, '');
          rmSync(wpath);
        }
        for (const m of ms) {
          const x = random(m * cols, 1000 + m);
          const y = new Float32Array(m * rows);
          let xpath = '';
          if (peer) {
            xpath = join(peer.dir, 'x.bin');
            writeFileSync(xpath, x);
          }
          for (const t of threads) {
            addon.setThreads(t);
            // Warm up (and size the runs so a round lasts `seconds`).
            let next = 0;
            const once = (): number => {
              const t0 = performance.now();
              addon.packedMatmul(id, ws[next], rows, cols, x, 0, m, y, 0, rows);
              next = (next + 1) % copies;
              return (performance.now() - t0) / 1000;
            };
            const first = Math.min(once(), once());
            const reps = Math.max(1, Math.min(1000, Math.round(seconds / Math.max(first, 1e-6))));
            const ours: number[] = [];
            const theirs: number[] = [];
            let diff: number | undefined;
            for (let r = 0; r < rounds; r++) {
              // ggml's worker threads keep polling for work about 50 ms after a job (1024·128·poll
              // rounds, poll 50): let them fall asleep so they do not take a core from our run.
              if (peer && t > 1) await new Promise((done) => setTimeout(done, 150));
              for (let i = 0; i < reps; i++) ours.push(once());
              if (peer) {
                const ypath = join(peer.dir, 'y.bin');
                const answer = await peer.ask(`run ${m} ${t} ${r === 0 ? reps + 1 : reps} ${xpath} ${ypath}`);
                const times = answer.trim().split(/\s+/).map(Number);
                theirs.push(...(r === 0 ? times.slice(1) : times)); // the first run of all warms up
                if (diff === undefined) {
                  addon.packedMatmul(id, ws[0], rows, cols, x, 0, m, y, 0, rows);
                  const py = new Float32Array(new Uint8Array(readFileSync(ypath)).buffer);
                  let maxDiff = 0, maxAbs = 0;
                  for (let i = 0; i < y.length; i++) {
                    maxDiff = Math.max(maxDiff, Math.abs(y[i] - py[i]));
                    maxAbs = Math.max(maxAbs, Math.abs(py[i]));
                  }
                  diff = maxDiff / maxAbs;
                }
              }
            }
            const s = median(ours);
            const flops = 2 * rows * cols * m;
            const row: QuantBenchRow = {
              type, rows, cols, m, threads: t,
              ours_s: s, ours_gbps: round(w.length / s / 1e9), ours_gflops: round(flops / s / 1e9),
            };
            if (peer) {
              const p = median(theirs);
              Object.assign(row, {
                peer_s: p, peer_gbps: round(w.length / p / 1e9), peer_gflops: round(flops / p / 1e9),
                ratio: round(p / s, 2), peer_buffer: peerBuffer, peer_diff: Number(diff?.toPrecision(2)),
              });
            }
            result.rows.push(row);
            opts.onRow?.(row);
          }
        }
      }
    }
    return result;
  } finally {
    peer?.close();
  }
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The result as an aligned text table. */
export function formatQuantBench(r: QuantBenchResult): string {
  const head = [`${r.machine}, ${r.date}, ${r.simd}; peer: ${r.peer}`];
  if (r.bandwidth) head.push(`read bandwidth: ${Object.entries(r.bandwidth).map(([t, g]) => `${g.toFixed(1)} GB/s on ${t} thread${t === '1' ? '' : 's'}`).join(', ')}`);
  const cols = ['type', 'shape', 'm', 'thr', 'ours GB/s', 'ours GFLOP/s', 'peer GB/s', 'peer GFLOP/s', 'ratio', 'peer buffer'];
  const lines = r.rows.map((x) => [x.type, `${x.rows}x${x.cols}`, String(x.m), String(x.threads), x.ours_gbps.toFixed(1), x.ours_gflops.toFixed(1),
    x.peer_gbps?.toFixed(1) ?? '', x.peer_gflops?.toFixed(1) ?? '', x.ratio?.toFixed(2) ?? '', x.peer_buffer ?? '']);
  const width = cols.map((c, i) => Math.max(c.length, ...lines.map((l) => l[i].length)));
  const fmt = (l: string[]): string => l.map((v, i) => (i < 2 ? v.padEnd(width[i]) : v.padStart(width[i]))).join('  ');
  return [...head, fmt(cols), ...lines.map(fmt)].join('\n');
}
