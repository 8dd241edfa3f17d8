// `nanoseek bench <what>`: benchmarks. Each subcommand parses flags and prints; the timing lives in
// bench/. Other modules add their subcommands to the same `bench` with benchCommand(program).
import type { Command } from 'commander';
import { benchGemm, formatGemmRows, type GemmBenchBackend, parseGemmShapes } from '../../../bench/gemm.js';
import { formatTrainBench, runTrainBench } from '../../../bench/train.js';
import { intFlag } from './generate.js';

/** The `bench` command of this program, created by whichever module asks first. */
export function benchCommand(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'bench') ??
    program.command('bench').description('measure kernels and models (see the subcommands)')
  );
}

function parseBackends(value: string): GemmBenchBackend[] {
  const kinds = value.split(',').map((s) => s.trim());
  for (const k of kinds) if (k !== 'native' && k !== 'wasm') throw new Error(`--backend: expected native, wasm or native,wasm, got '${value}'`);
  return kinds as GemmBenchBackend[];
}

function parseThreads(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--threads must be a positive integer, got '${value}'`);
  return n;
}

export function register(program: Command): void {
  benchCommand(program)
    .command('gemm')
    .description('GEMM GFLOP/s of the native and WASM kernels on model shapes, on 1 thread and on all of them')
    .option('--json', 'one JSON document: a list of {backend, m, k, n[, transB], threads, gflops[, peer, peer_gflops, ratio]}')
    .option('--peer', 'also time numpy on OpenBLAS (bench/peer_gemm.py under /usr/bin/python3) with the same threads')
    .option('--threads <n>', 'the "all threads" count (default: all cores)')
    .option('--shapes <list>', 'shapes to time instead of the model shapes, as MxKxN[t],… (t: B stored transposed, n×k)')
    .option('--backend <list>', 'native, wasm or native,wasm (default: both where the native addon is built)')
    .action(async (o: { json?: boolean; peer?: boolean; threads?: string; shapes?: string; backend?: string }) => {
      const rows = await benchGemm({
        backends: o.backend === undefined ? undefined : parseBackends(o.backend),
        peer: o.peer,
        threads: o.threads === undefined ? undefined : parseThreads(o.threads),
        shapes: o.shapes === undefined ? undefined : parseGemmShapes(o.shapes),
      });
      process.stdout.write(o.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatGemmRows(rows)}\n`);
    });

  benchCommand(program)
    .command('train')
    .description('training tokens/s (trainStep) of the micro DeepSeek-V3 preset and its dense twin micro-dense')
    .option('--json', 'one JSON document: {steps, batch, seq, threads, backend, rows: [{model, ours_tokens_per_s, peer_tokens_per_s, ratio, losses_ours, losses_peer, ...}]}')
    .option('--peer', 'also train the PyTorch reference (bench/torch_reference.py under /usr/bin/python3) from the same weights on the same batches')
    .option('--steps <n>', 'optimizer steps per model', intFlag('--steps'), 12)
    .option('--batch <n>', 'sequences per step', intFlag('--batch'), 4)
    .option('--seq <n>', 'tokens per sequence', intFlag('--seq'), 128)
    .option('--threads <n>', 'threads for our kernels and for PyTorch (default: all cores)', intFlag('--threads'))
    .option('--backend <kind>', 'native or wasm (default: NANOSEEK_BACKEND, else native where the addon is built)')
    .action(async (o: { json?: boolean; peer?: boolean; steps: number; batch: number; seq: number; threads?: number; backend?: string }) => {
      if (o.backend !== undefined && o.backend !== 'native' && o.backend !== 'wasm') throw new Error(`--backend: expected native or wasm, got '${o.backend}'`);
      const result = await runTrainBench({ peer: o.peer, steps: o.steps, batch: o.batch, seq: o.seq, threads: o.threads, backend: o.backend });
      process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : formatTrainBench(result));
    });
}
