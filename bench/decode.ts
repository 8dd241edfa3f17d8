// Prompt processing and decoding speed of an open-weights model file, nanoseek against llama.cpp
// (node-llama-cpp's prebuilt CPU build) on the same file with the same threads, in one run: the two
// alternate (ours, llama.cpp, ours, …) so both see the same background load, and medians are
// compared. By default the model is an R1-Distill-Qwen-1.5B-shaped file with random weights, written
// once into a cache folder (bench/open-weights.ts), in the type asked for.
//
//   nanoseek bench decode [--model file.gguf] [--type q4_k_m] [--threads 2] [--prompt 512] [--tokens 128] [--runs 3] [--peer] [--json]
import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { initBackend, backend } from '../src/kernels/index.js';
import { loadModel } from '../src/io/model-file.js';
import type { FileType } from '../src/io/quant-mix.js';
import type { CausalLM } from '../src/model/model.js';
import { kvCacheBytesPerToken } from '../src/model/config.js';
import * as T from '../src/tensor/index.js';
import { Rng } from '../src/util/rng.js';
import { OPEN_WEIGHT_SHAPES, shapeTokenizerFiles, writeRandomGguf, type OpenWeightShape } from './open-weights.js';

export interface DecodeBenchOptions {
  /** A GGUF file; default: a random model of `shape` in `type`, cached. */
  model?: string;
  shape?: OpenWeightShape;
  type?: FileType;
  threads?: number;
  promptTokens?: number;
  decodeTokens?: number;
  runs?: number;
  peer?: boolean;
  progress?: (line: string) => void;
}

export interface SideResult {
  /** Prompt tokens per second (the whole prompt in one batch), median over runs. */
  promptTokensPerSec: number;
  /** Decoded tokens per second, one token per step, median over runs. */
  decodeTokensPerSec: number;
  runs: Array<{ promptTokensPerSec: number; decodeTokensPerSec: number }>;
  /** Seconds from opening the file to a model ready to run (first run). */
  loadSeconds: number;
}

export interface DecodeBenchResult {
  model: string;
  fileBytes: number;
  threads: number;
  backend: string;
  promptTokens: number;
  decodeTokens: number;
  ours: SideResult;
  peer: SideResult | null;
  /** ours / peer. */
  promptRatio: number | null;
  decodeRatio: number | null;
  /** Decode tok/s if every step read the whole file once at the machine's measured 65 GB/s (2 threads). */
  bandwidthBoundTokensPerSec: number;
  /**
   * Resident memory of this process after our runs (weights mapped and touched, KV cache,
   * activations; llama.cpp's too when the peer ran in the same process).
   */
  residentBytes: number;
  /** The KV cache of one sequence of promptTokens + decodeTokens. */
  kvCacheBytes: number;
  /** The target for residentBytes without the peer: the file's size × 1.15 plus the KV cache. */
  residentBoundBytes: number;
  date: string;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The cache folder for benchmark models (written once, reused). */
export function benchCacheDir(): string {
  return process.env.NANOSEEK_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(os.homedir(), '.cache'), 'nanoseek');
}

/** A random GGUF of an open model's shape and `type`, written into the cache on first use. */
export async function defaultDecodeModel(shape: OpenWeightShape, type: FileType, progress: (line: string) => void = () => {}): Promise<string> {
  const dir = join(benchCacheDir(), 'bench');
  const path = join(dir, `${shape}-shape-random-${type}.gguf`);
  if (!existsSync(path)) {
    await mkdir(dir, { recursive: true });
    progress(`writing ${path} (${shape} shape, random weights, ${type}) once`);
    await writeRandomGguf(path, type, { config: OPEN_WEIGHT_SHAPES[shape](), tokenizer: await shapeTokenizerFiles(shape), seed: 1 });
  }
  return path;
}

function promptIds(n: number, vocab: number): number[] {
  const rng = new Rng(7);
  // Ordinary tokens only (the top of the vocabulary holds special tokens).
  return Array.from({ length: n }, () => rng.int(1000, Math.min(vocab, 150000) - 1));
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

function oursOnce(model: CausalLM, prompt: number[], decode: number): { promptTokensPerSec: number; decodeTokensPerSec: number } {
  return T.noGrad(() => {
    const cache = model.newCache(prompt.length + decode);
    try {
      const t0 = performance.now();
      let next = T.tidy(() => argmax(model.forwardCached([{ ids: prompt, cache }]).data));
      const t1 = performance.now();
      for (let i = 0; i < decode; i++) {
        const id = next;
        next = T.tidy(() => argmax(model.forwardCached([{ ids: [id], cache }]).data));
      }
      const t2 = performance.now();
      return { promptTokensPerSec: prompt.length / ((t1 - t0) / 1000), decodeTokensPerSec: decode / ((t2 - t1) / 1000) };
    } finally {
      cache.dispose();
    }
  });
}

interface Peer {
  once(prompt: number[], decode: number): Promise<{ promptTokensPerSec: number; decodeTokensPerSec: number }>;
  dispose(): Promise<void>;
}

async function llamaPeer(path: string, threads: number, contextSize: number, batchSize: number): Promise<Peer> {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: path });
  return {
    async once(prompt, decode) {
      const ctx = await model.createContext({ contextSize, batchSize, threads });
      try {
        const seq = ctx.getSequence();
        type Tok = Parameters<typeof seq.evaluateWithoutGeneratingNewTokens>[0][number];
        const t0 = performance.now();
        await seq.evaluateWithoutGeneratingNewTokens(prompt as Tok[]);
        const t1 = performance.now();
        // Greedy decoding from the prompt's state: one token per step, as ours.
        let n = 0;
        let t2 = t1;
        for await (const _ of seq.evaluate([prompt.at(-1)!] as Tok[], { temperature: 0 })) {
          if (++n >= decode) break;
        }
        t2 = performance.now();
        return { promptTokensPerSec: prompt.length / ((t1 - t0) / 1000), decodeTokensPerSec: n / ((t2 - t1) / 1000) };
      } finally {
        await ctx.dispose();
      }
    },
    async dispose() {
      await model.dispose();
      await llama.dispose();
    },
  };
}

export async function runDecodeBench(opts: DecodeBenchOptions = {}): Promise<DecodeBenchResult> {
  const progress = opts.progress ?? (() => {});
  const type = opts.type ?? 'q4_k_m';
  const path = opts.model ?? (await defaultDecodeModel(opts.shape ?? 'r1-distill-qwen-1.5b', type, progress));
  const threads = opts.threads ?? Math.min(os.availableParallelism(), 2);
  const promptTokens = opts.promptTokens ?? 512;
  const decodeTokens = opts.decodeTokens ?? 128;
  const runs = opts.runs ?? 3;
  initBackend({ threads });

  const t0 = performance.now();
  const { model } = await loadModel(path, { weights: 'packed' });
  const loadSeconds = (performance.now() - t0) / 1000;
  const prompt = promptIds(promptTokens, model.config.vocab_size);
  const peer = opts.peer ? await llamaPeer(path, threads, promptTokens + decodeTokens + 16, promptTokens) : null;
  const ours: SideResult['runs'] = [];
  const theirs: SideResult['runs'] = [];
  try {
    for (let r = 0; r < runs; r++) {
      const o = oursOnce(model, prompt, decodeTokens);
      ours.push(o);
      progress(`run ${r + 1}/${runs}: nanoseek (${backend().name}) prompt ${o.promptTokensPerSec.toFixed(1)} tok/s, decode ${o.decodeTokensPerSec.toFixed(2)} tok/s`);
      if (peer !== null) {
        const p = await peer.once(prompt, decodeTokens);
        theirs.push(p);
        progress(`run ${r + 1}/${runs}: llama.cpp prompt ${p.promptTokensPerSec.toFixed(1)} tok/s, decode ${p.decodeTokensPerSec.toFixed(2)} tok/s`);
      }
    }
  } finally {
    await peer?.dispose();
  }
  const side = (rows: SideResult['runs'], load: number): SideResult => ({
    promptTokensPerSec: median(rows.map((r) => r.promptTokensPerSec)),
    decodeTokensPerSec: median(rows.map((r) => r.decodeTokensPerSec)),
    runs: rows,
    loadSeconds: load,
  });
  const oursSide = side(ours, loadSeconds);
  const peerSide = peer === null ? null : side(theirs, NaN);
  const fileBytes = (await stat(path)).size;
  const kvCacheBytes = kvCacheBytesPerToken(model.config) * (promptTokens + decodeTokens);
  return {
    model: path,
    fileBytes,
    threads,
    backend: backend().name,
    promptTokens,
    decodeTokens,
    ours: oursSide,
    peer: peerSide,
    promptRatio: peerSide ? oursSide.promptTokensPerSec / peerSide.promptTokensPerSec : null,
    decodeRatio: peerSide ? oursSide.decodeTokensPerSec / peerSide.decodeTokensPerSec : null,
    bandwidthBoundTokensPerSec: 65e9 / fileBytes,
    residentBytes: process.memoryUsage().rss,
    kvCacheBytes,
    residentBoundBytes: fileBytes * 1.15 + kvCacheBytes,
    date: new Date().toISOString().slice(0, 10),
  };
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

export function formatDecodeBench(r: DecodeBenchResult): string {
  const gb = (r.fileBytes / 1e9).toFixed(2);
  const lines = [
    `${r.model} (${gb} GB), ${r.threads} threads, nanoseek on the ${r.backend} backend; prompt ${r.promptTokens} tokens, decode ${r.decodeTokens}`,
    `  nanoseek : prompt ${r.ours.promptTokensPerSec.toFixed(1)} tok/s, decode ${r.ours.decodeTokensPerSec.toFixed(2)} tok/s (load ${r.ours.loadSeconds.toFixed(2)} s)`,
    `  resident : ${mib(r.residentBytes)}${r.peer ? ' with llama.cpp in the same process' : `; bound (file × 1.15 + KV cache ${mib(r.kvCacheBytes)}) ${mib(r.residentBoundBytes)}`}`,
  ];
  if (r.peer) {
    lines.push(`  llama.cpp: prompt ${r.peer.promptTokensPerSec.toFixed(1)} tok/s, decode ${r.peer.decodeTokensPerSec.toFixed(2)} tok/s`);
    lines.push(`  ratio    : prompt ${r.promptRatio!.toFixed(2)}×, decode ${r.decodeRatio!.toFixed(2)}×`);
  }
  lines.push(`  decode bound at 65 GB/s: ${r.bandwidthBoundTokensPerSec.toFixed(1)} tok/s`);
  return `${lines.join('\n')}\n`;
}
