// `nanoseek bench <what>`: benchmarks. Each subcommand parses flags and prints; the timing lives in
// bench/. Other modules add their subcommands to the same `bench` with benchCommand(program).
import type { Command } from 'commander';
import { benchGemm, formatGemmRows, type GemmBenchBackend, parseGemmShapes } from '../../../bench/gemm.js';
import { benchQuantNative, formatQuantBench } from '../../../bench/quant-native.js';
import { formatTrainBench, runTrainBench } from '../../../bench/train.js';
import { formatDecodeBench, runDecodeBench } from '../../../bench/decode.js';
import { OPEN_WEIGHT_SHAPES, type OpenWeightShape } from '../../../bench/open-weights.js';
import { DEFAULT_QUANT_TYPES, formatQuantizationBench, runQuantizationBench } from '../../../bench/quantization.js';
import { GGML_TYPES, type GgmlType } from '../../kernels/quant/index.js';
import { parseFileType } from '../../io/quant-mix.js';
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

  benchCommand(program)
    .command('decode')
    .description('prompt and decode tokens/s of an open-weights model file, nanoseek and (--peer) llama.cpp on the same file and threads, alternated')
    .option('--model <file>', 'a .gguf file (default: a random model of --shape and --type, written once into ~/.cache/nanoseek)')
    .option('--shape <name>', `the default model's shape: ${Object.keys(OPEN_WEIGHT_SHAPES).join(', ')}`, 'r1-distill-qwen-1.5b')
    .option('--type <type>', 'type of the default model file: q4_k_m, q8_0, …', 'q4_k_m')
    .option('--threads <n>', 'threads for both (default: 2)', intFlag('--threads'))
    .option('--prompt <n>', 'prompt tokens, processed as one batch', intFlag('--prompt'), 512)
    .option('--tokens <n>', 'tokens decoded one at a time', intFlag('--tokens'), 128)
    .option('--runs <n>', 'runs of each side (medians are compared)', intFlag('--runs'), 3)
    .option('--peer', 'also time llama.cpp (node-llama-cpp) on the same file')
    .option('--json', 'one JSON document')
    .action(async (o: { model?: string; shape: string; type: string; threads?: number; prompt: number; tokens: number; runs: number; peer?: boolean; json?: boolean }) => {
      if (!(o.shape in OPEN_WEIGHT_SHAPES)) throw new Error(`--shape must be one of ${Object.keys(OPEN_WEIGHT_SHAPES).join(', ')}, got '${o.shape}'`);
      const r = await runDecodeBench({
        model: o.model, shape: o.shape as OpenWeightShape, type: parseFileType(o.type), threads: o.threads, promptTokens: o.prompt, decodeTokens: o.tokens, runs: o.runs, peer: o.peer,
        progress: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : formatDecodeBench(r));
    });

  benchCommand(program)
    .command('quantization')
    .description("what each GGUF type costs the shipped models: KL and top-1 agreement against the original on held-out text, and the reasoning model's greedy pass@1")
    .option('--types <list>', 'comma-separated file types', DEFAULT_QUANT_TYPES.join(','))
    .option('--problems <n>', 'held-out sums of six one-digit numbers', intFlag('--problems'), 200)
    .option('--json', 'one JSON document')
    .action(async (o: { types: string; problems: number; json?: boolean }) => {
      const types = o.types.split(',').map((t) => parseFileType(t.trim(), '--types'));
      const r = await runQuantizationBench({ types, problems: o.problems, progress: (l) => process.stderr.write(`${l}\n`) });
      process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : formatQuantizationBench(r));
    });
}
