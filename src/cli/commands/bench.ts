// `nanoseek bench <what>`: benchmarks. Each subcommand parses flags and prints; the timing lives in
// bench/. Other modules add their subcommands to the same `bench` with benchCommand(program).
import type { Command } from 'commander';
import { benchGemm, formatGemmRows, parseGemmShapes } from '../../../bench/gemm.js';
import { benchQuantNative, formatQuantBench } from '../../../bench/quant-native.js';
import { formatTrainBench, runTrainBench } from '../../../bench/train.js';
import { GGML_TYPES, type GgmlType } from '../../kernels/quant/index.js';
import { intFlag } from './generate.js';

/** The `bench` command of this program, created by whichever module asks first. */
export function benchCommand(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'bench') ??
    program.command('bench').description('measure kernels and models (see the subcommands)')
  );
}

function parseThreads(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--threads must be a positive integer, got '${value}'`);
  return n;
}

export function register(program: Command): void {
  benchCommand(program)
    .command('gemm')
    .description('GEMM GFLOP/s of the WASM kernels on model shapes, on 1 thread and on all of them')
    .option('--json', 'one JSON document: a list of {backend, m, k, n[, transB], threads, gflops[, peer, peer_gflops, ratio]}')
    .option('--peer', 'also time numpy on OpenBLAS (bench/peer_gemm.py under /usr/bin/python3) with the same threads')
    .option('--threads <n>', 'the "all threads" count (default: all cores)')
    .option('--shapes <list>', 'shapes to time instead of the model shapes, as MxKxN[t],… (t: B stored transposed, n×k)')
    .action(async (o: { json?: boolean; peer?: boolean; threads?: string; shapes?: string }) => {
      const rows = await benchGemm({
        peer: o.peer,
        threads: o.threads === undefined ? undefined : parseThreads(o.threads),
        shapes: o.shapes === undefined ? undefined : parseGemmShapes(o.shapes),
      });
      process.stdout.write(o.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatGemmRows(rows)}\n`);
    });

  benchCommand(program)
    .command('quant')
    .description("native products with packed weights (packedMatmul) at the R1-Distill-Qwen-1.5B shapes, against llama.cpp's ggml_mul_mat on the same bytes and threads: GB/s, GFLOP/s, ratio")
    .option('--json', 'one JSON document: {machine, date, simd, bandwidth, peer, rows: [{type, rows, cols, m, threads, ours_gbps, ours_gflops, peer_gbps, peer_gflops, ratio, ...}]}')
    .option('--types <list>', 'ggml types (default: BF16,F16,Q8_0,Q4_0,Q4_1,Q5_0,Q5_1,Q4_K,Q5_K,Q6_K)')
    .option('--shapes <list>', 'weight shapes as ROWSxCOLS,… (default: 1536x1536,256x1536,8960x1536,1536x8960,151936x1536)')
    .option('--m <list>', 'activation rows (default: 1,8,32,512)')
    .option('--threads <list>', 'thread counts (default: 1 and all cores)')
    .option('--no-peer', 'time ours only')
    .action(async (o: { json?: boolean; types?: string; shapes?: string; m?: string; threads?: string; peer: boolean }) => {
      const list = (v: string | undefined, what: string): number[] | undefined =>
        v?.split(',').map((s) => {
          const n = Number(s);
          if (!Number.isInteger(n) || n < 1) throw new Error(`--${what}: expected positive integers, got '${s}'`);
          return n;
        });
      const types = o.types?.split(',').map((t) => {
        const type = t.trim().toUpperCase();
        if (!(type in GGML_TYPES)) throw new Error(`--types: unknown type '${t}' (${Object.keys(GGML_TYPES).join(', ')})`);
        return type as GgmlType;
      });
      const shapes = o.shapes?.split(',').map((s) => {
        const match = /^(\d+)x(\d+)$/.exec(s.trim());
        if (match === null) throw new Error(`--shapes: expected ROWSxCOLS, got '${s}'`);
        return [Number(match[1]), Number(match[2])] as const;
      });
      const result = await benchQuantNative({
        types, shapes, ms: list(o.m, 'm'), threads: list(o.threads, 'threads'), peer: o.peer,
        onRow: (r) => process.stderr.write(`${r.type} ${r.rows}x${r.cols} m=${r.m} threads=${r.threads}: ${r.ours_gbps} GB/s, ${r.ours_gflops} GFLOP/s${r.ratio === undefined ? '' : `, ratio ${r.ratio}`}\n`),
      });
      process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatQuantBench(result)}\n`);
    });

  benchCommand(program)
    .command('train')
    .description('training tokens/s (trainStep) of the micro DeepSeek-V3 preset and its dense twin micro-dense')
    .option('--json', 'one JSON document: {steps, batch, seq, threads, rows: [{model, ours_tokens_per_s, peer_tokens_per_s, ratio, losses_ours, losses_peer, ...}]}')
    .option('--peer', 'also train the PyTorch reference (bench/torch_reference.py under /usr/bin/python3) from the same weights on the same batches')
    .option('--steps <n>', 'optimizer steps per model', intFlag('--steps'), 12)
    .option('--batch <n>', 'sequences per step', intFlag('--batch'), 4)
    .option('--seq <n>', 'tokens per sequence', intFlag('--seq'), 128)
    .option('--threads <n>', 'threads for our kernels and for PyTorch (default: all cores)', intFlag('--threads'))
    .action(async (o: { json?: boolean; peer?: boolean; steps: number; batch: number; seq: number; threads?: number }) => {
      const result = await runTrainBench({ peer: o.peer, steps: o.steps, batch: o.batch, seq: o.seq, threads: o.threads });
      process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : formatTrainBench(result));
    });
}
