// Training throughput of nanoseek, and (with --peer) of an independent PyTorch implementation of the
// same models (bench/torch_reference.py) in the same invocation: same architecture, initial weights,
// batches, hyperparameters and thread count. Steps alternate, ours then PyTorch's, so neither competes
// for cores and both see the same background load. The two loss curves come back side by side, so the
// comparison is of equal work, not just equal shapes. The parity test drives the reference from here too.
//
//   nanoseek bench train [--json] [--peer] [--steps N] [--batch B] [--seq T] [--threads N]
//   npx tsx bench/train.ts [same flags]
import { execFile, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { backend, createBackend, setBackend, WasmBackend } from '../src/kernels/index.js';
import { countParameters, presetConfig, type ModelConfig, type PresetName } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import { saveModel } from '../src/io/model-file.js';
import * as T from '../src/tensor/index.js';
import { AdamW, cosineSchedule, defaultAdamW, type AdamWConfig } from '../src/train/optim.js';
import { trainStep, type Batch, type StepStats } from '../src/train/step.js';
import { Rng } from '../src/util/rng.js';

const run = promisify(execFile);

/** Debian's interpreter, which sees python3-torch (a pyenv python3 earlier on PATH does not). */
export const PYTHON = process.env.NANOSEEK_PYTHON ?? '/usr/bin/python3';

/** Everything besides weights and data that decides a training run; both implementations get it. */
export interface Recipe {
  peakLr: number;
  warmup: number;
  /** The cosine schedule's length (usually the number of steps). */
  total: number;
  minRatio: number;
  adamw: AdamWConfig;
  mtpWeight: number;
  balanceAlpha: number;
  biasUpdateSpeed: number;
}

export function defaultRecipe(steps: number): Recipe {
  // DeepSeek-V3's balancing knobs: bias speed 0.001, a tiny sequence-wise balance loss.
  return { peakLr: 1e-3, warmup: Math.min(5, steps), total: steps, minRatio: 0.1, adamw: { ...defaultAdamW }, mtpWeight: 0.3, balanceAlpha: 1e-4, biasUpdateSpeed: 1e-3 };
}

/**
 * Learnable synthetic token streams, `steps` × `micro` batches of [B, T]: a fixed random successor
 * map followed 70% of the time, otherwise a token drawn log-uniformly (a Zipf-like skew), so the
 * loss falls within a few steps (unigram statistics) and keeps falling (bigrams).
 */
export function syntheticBatches(steps: number, micro: number, B: number, Tn: number, vocab: number, seed: number): Batch[][] {
  const rng = new Rng(seed);
  const successor = Array.from({ length: vocab }, () => rng.int(0, vocab - 1));
  const draw = (): number => Math.min(vocab - 1, Math.floor(Math.pow(vocab, rng.next())) - 1);
  const out: Batch[][] = [];
  for (let s = 0; s < steps; s++) {
    const step: Batch[] = [];
    for (let m = 0; m < micro; m++) {
      const ids = new Int32Array(B * Tn);
      const targets = new Int32Array(B * Tn);
      for (let b = 0; b < B; b++) {
        let tok = draw();
        for (let t = 0; t < Tn; t++) {
          const next = rng.next() < 0.7 ? successor[tok] : draw();
          ids[b * Tn + t] = tok;
          targets[b * Tn + t] = next;
          tok = next;
        }
      }
      step.push({ ids, targets, B, T: Tn });
    }
    out.push(step);
  }
  return out;
}

/** The batch file torch_reference.py reads: "NSBT", int32 steps, micro, B, T, then ids and targets per micro-batch. */
export async function writeBatchFile(path: string, batches: readonly (readonly Batch[])[]): Promise<void> {
  const { B, T: Tn } = batches[0][0];
  const micro = batches[0].length;
  const words = new Int32Array(4 + batches.length * micro * 2 * B * Tn);
  words.set([batches.length, micro, B, Tn]);
  let at = 4;
  for (const step of batches) {
    if (step.length !== micro) throw new Error('writeBatchFile: every step needs the same number of micro-batches');
    for (const b of step) {
      if (b.B !== B || b.T !== Tn) throw new Error('writeBatchFile: every micro-batch needs the same [B, T]');
      words.set(b.ids, at);
      words.set(b.targets, at + B * Tn);
      at += 2 * B * Tn;
    }
  }
  await writeFile(path, Buffer.concat([Buffer.from('NSBT', 'latin1'), Buffer.from(words.buffer)]));
}

export interface StepRow extends StepStats {
  lr: number;
  seconds: number;
}

/** One trainStep at the recipe's learning rate for step number `step`, timed. */
export function ourStep(model: CausalLM, opt: AdamW, micro: readonly Batch[], r: Recipe, step: number): StepRow {
  const lr = cosineSchedule(step, r.peakLr, r.warmup, r.total, r.minRatio);
  const t0 = performance.now();
  const s = trainStep(model, opt, micro, { lr, mtpWeight: r.mtpWeight, balanceAlpha: r.balanceAlpha, biasUpdateSpeed: r.biasUpdateSpeed });
  return { ...s, lr, seconds: (performance.now() - t0) / 1000 };
}

/** Our side of a whole run: trainStep over the batches with the recipe's schedule. */
export function trainOurs(model: CausalLM, batches: readonly (readonly Batch[])[], r: Recipe): StepRow[] {
  const opt = new AdamW(model.trainableParams(), r.adamw);
  return batches.map((micro, step) => ourStep(model, opt, micro, r, step));
}

/** Milliseconds per forward pass (no tape) and per forward+backward, averaged over `repeats`, on one batch. */
export function timePasses(model: CausalLM, b: Batch, r: Recipe, repeats: number): { forwardMs: number; forwardBackwardMs: number } {
  const opts = { mtpWeight: r.mtpWeight, balanceAlpha: r.balanceAlpha };
  const forward = (): void => T.noGrad(() => T.tidy(() => void model.loss(b.ids, b.targets, b.B, b.T, opts)));
  const both = (): void => T.tidy(() => T.backward(model.loss(b.ids, b.targets, b.B, b.T, opts).loss));
  const time = (fn: () => void): number => {
    fn();
    const t0 = performance.now();
    for (let i = 0; i < repeats; i++) fn();
    return (performance.now() - t0) / repeats;
  };
  const result = { forwardMs: time(forward), forwardBackwardMs: time(both) };
  // Leave the model as training left it: no stray gradients or router load counts.
  for (const p of model.params.trainable()) p.grad?.data.fill(0);
  for (const m of model.moeLayers()) m.pendingLoad.fill(0);
  return result;
}

// ---------------------------------------------------------------------------------------------
// The PyTorch peer

function referenceScript(): string {
  // bench/ next to this file when run from source (tsx); two levels up from dist/bench when compiled.
  for (const rel of ['./torch_reference.py', '../../bench/torch_reference.py']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error('bench/torch_reference.py not found next to bench/train.ts');
}

/** Null when the peer can run; otherwise why not, with the fix. */
export function torchUnavailable(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (r.status === 0) return null;
  const why = r.error ? r.error.message : (r.stderr.trim().split('\n').pop() ?? `exit status ${r.status}`);
  return `PyTorch is not importable by ${PYTHON} (${why}); install it with scripts/install-system-deps.sh (Debian python3-torch, python3-numpy)`;
}

export interface PeerStep {
  loss: number;
  ce: number;
  mtp_ce: number | null;
  balance: number | null;
  grad_norm: number;
  lr: number;
  seconds: number;
}

export interface PeerInfo {
  torch: string;
  threads: number;
}

export interface PeerPasses {
  forward_seconds: number;
  forward_backward_seconds: number;
}

export interface PeerOptions {
  /** torch.set_num_threads, and the OpenMP / OpenBLAS pool sizes (default 1). */
  threads?: number;
  /** float64 compares against nanoseek's float64 tensors (default float32). */
  dtype?: 'float32' | 'float64';
}

interface PeerSpec extends PeerOptions {
  mode: 'train' | 'logits' | 'serve';
  /** Checkpoint directory (config.json + model.safetensors). */
  model: string;
  batches: readonly (readonly Batch[])[];
  recipe?: Recipe;
}

/** Writes the spec and batch files into `work`; returns the interpreter's arguments and environment. */
async function preparePeer(spec: PeerSpec, work: string): Promise<{ args: string[]; env: NodeJS.ProcessEnv; logitsPath: string }> {
  const batchesPath = join(work, 'batches.bin');
  const specPath = join(work, 'spec.json');
  const logitsPath = join(work, 'logits.bin');
  await writeBatchFile(batchesPath, spec.batches);
  const r = spec.recipe;
  const json = {
    mode: spec.mode,
    model: spec.model,
    batches: batchesPath,
    threads: spec.threads ?? 1,
    dtype: spec.dtype ?? 'float32',
    logits_out: logitsPath,
    ...(r && {
      optimizer: { beta1: r.adamw.beta1, beta2: r.adamw.beta2, eps: r.adamw.eps, weight_decay: r.adamw.weightDecay, grad_clip: r.adamw.gradClip },
      schedule: { peak: r.peakLr, warmup: r.warmup, total: r.total, min_ratio: r.minRatio },
      mtp_weight: r.mtpWeight,
      balance_alpha: r.balanceAlpha,
      bias_update_speed: r.biasUpdateSpeed,
    }),
  };
  await writeFile(specPath, JSON.stringify(json));
  const threads = String(spec.threads ?? 1);
  // OpenBLAS and OpenMP pools would otherwise size themselves to the machine, not to the comparison.
  // PyTorch's OpenMP pool and OpenBLAS's pool are separate; with both spinning between calls they
  // steal each other's cores (4-6x slower steps on 2 cores), so idle OpenMP threads sleep instead.
  const env = { OMP_WAIT_POLICY: 'PASSIVE', ...process.env, OMP_NUM_THREADS: threads, OPENBLAS_NUM_THREADS: threads, MKL_NUM_THREADS: threads };
  return { args: [referenceScript(), specPath], env, logitsPath };
}

function failure(stderr: string, fallback: string): Error {
  return new Error(`torch_reference.py failed: ${stderr.trim().split('\n').slice(-8).join('\n') || fallback}`);
}

async function runPeer(spec: PeerSpec, work: string): Promise<{ stdout: string; logitsPath: string }> {
  const { args, env, logitsPath } = await preparePeer(spec, work);
  try {
    const { stdout } = await run(PYTHON, args, { env, maxBuffer: 64 << 20 });
    return { stdout, logitsPath };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw failure(e.stderr ?? '', e.message);
  }
}

async function withWork<R>(fn: (work: string) => Promise<R>): Promise<R> {
  const work = await mkdtemp(join(os.tmpdir(), 'nanoseek-peer-'));
  try {
    return await fn(work);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The reference's training run from checkpoint `modelDir` (the initial weights) over the same batches. */
export async function peerTrain(modelDir: string, batches: readonly (readonly Batch[])[], recipe: Recipe, opts: PeerOptions = {}): Promise<PeerStep[]> {
  return withWork(async (work) => {
    const { stdout } = await runPeer({ ...opts, mode: 'train', model: modelDir, batches, recipe }, work);
    return (JSON.parse(stdout) as { steps: PeerStep[] }).steps;
  });
}

/** The reference's logits [B·T, V] for one batch (and its MTP logits when the model has an MTP module; its input is `targets`). */
export async function peerLogits(modelDir: string, b: Batch, threads = 1): Promise<{ logits: Float32Array; mtpLogits: Float32Array | null }> {
  return withWork(async (work) => {
    const { logitsPath } = await runPeer({ mode: 'logits', model: modelDir, batches: [[b]], threads }, work);
    const bytes = await readFile(logitsPath);
    const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    const one = JSON.parse(await readFile(join(modelDir, 'config.json'), 'utf8')).vocab_size * b.B * b.T;
    return { logits: all.slice(0, one), mtpLogits: all.length > one ? all.slice(one) : null };
  });
}

/**
 * The reference as a child process that trains one step per request, so that a benchmark can
 * alternate our steps with its steps: on a shared machine both then see the same background load.
 */
export class PeerSession {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    private readonly work: string,
    private readonly log: { stderr: string },
    readonly info: PeerInfo,
  ) {}

  static async start(modelDir: string, batches: readonly (readonly Batch[])[], recipe: Recipe, opts: PeerOptions = {}): Promise<PeerSession> {
    const work = await mkdtemp(join(os.tmpdir(), 'nanoseek-peer-'));
    const { args, env } = await preparePeer({ ...opts, mode: 'serve', model: modelDir, batches, recipe }, work);
    const child = spawn(PYTHON, args, { env });
    const log = { stderr: '' };
    child.stderr.on('data', (d: Buffer) => {
      log.stderr += d.toString();
    });
    // A peer that fails to start or dies closes its stdout; the next read reports it with its stderr.
    child.on('error', (err) => {
      log.stderr += err.message;
    });
    child.stdin.on('error', () => {});
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) {
      await rm(work, { recursive: true, force: true });
      throw failure(log.stderr, 'it exited before answering');
    }
    return new PeerSession(child, lines, work, log, JSON.parse(first.value) as PeerInfo);
  }

  private async request<R>(req: object): Promise<R> {
    this.child.stdin.write(`${JSON.stringify(req)}\n`);
    const line = await this.lines.next();
    if (line.done) throw failure(this.log.stderr, 'it exited before answering');
    return JSON.parse(line.value) as R;
  }

  step(): Promise<PeerStep> {
    return this.request({ cmd: 'step' });
  }

  passes(repeats: number): Promise<PeerPasses> {
    return this.request({ cmd: 'passes', repeats });
  }

  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('close', resolve));
    this.child.stdin.end();
    if (this.child.exitCode === null) await exited;
    await rm(this.work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The benchmark

export interface TrainBenchOptions {
  steps?: number;
  batch?: number;
  seq?: number;
  /** Threads for our kernels and for PyTorch (default: all cores). */
  threads?: number;
  peer?: boolean;
  models?: PresetName[];
  /** Leading steps left out of the throughput (JIT and allocator warm-up on both sides). */
  warmupSteps?: number;
  seed?: number;
  /** Default: NANOSEEK_BACKEND, else native where the addon loads, else WASM. */
  backend?: 'native' | 'wasm';
}

export interface TrainBenchRow {
  model: PresetName;
  architecture: string;
  params_total: number;
  params_active: number;
  ours_tokens_per_s: number;
  ours_ms_per_step: number;
  ours_forward_ms: number;
  ours_forward_backward_ms: number;
  losses_ours: number[];
  peer_tokens_per_s?: number;
  peer_ms_per_step?: number;
  peer_forward_ms?: number;
  peer_forward_backward_ms?: number;
  /** ours_tokens_per_s / peer_tokens_per_s */
  ratio?: number;
  losses_peer?: number[];
  /** max over steps of |ours − peer| / |peer|. */
  max_rel_loss_diff?: number;
}

export interface TrainBenchResult {
  steps: number;
  batch: number;
  seq: number;
  threads: number;
  /** Our backend and its instruction set, e.g. native-avx512-vnni or wasm-relaxed. */
  backend: string;
  warmup_steps: number;
  torch?: string;
  rows: TrainBenchRow[];
}

/** From the median step time: a step slowed by another process on a shared machine does not count. */
function throughput(seconds: readonly number[], skip: number, tokensPerStep: number): { tokensPerS: number; msPerStep: number } {
  const timed = seconds.slice(Math.min(skip, seconds.length - 1)).sort((a, b) => a - b);
  const mid = timed.length >> 1;
  const median = timed.length % 2 === 1 ? timed[mid] : (timed[mid - 1] + timed[mid]) / 2;
  return { tokensPerS: tokensPerStep / median, msPerStep: 1000 * median };
}

async function benchModel(name: PresetName, o: Required<Omit<TrainBenchOptions, 'models' | 'backend'>>, work: string): Promise<{ row: TrainBenchRow; torch?: string }> {
  const cfg: ModelConfig = presetConfig(name);
  const model = new CausalLM(cfg, { seed: o.seed });
  const dir = join(work, name);
  if (o.peer) await saveModel(model, dir); // the initial weights, before our side trains them
  const batches = syntheticBatches(o.steps, 1, o.batch, o.seq, cfg.vocab_size, o.seed + 1);
  const recipe = defaultRecipe(o.steps);
  const peer = o.peer ? await PeerSession.start(dir, batches, recipe, { threads: o.threads }) : null;
  try {
    const opt = new AdamW(model.trainableParams(), recipe.adamw);
    const ours: StepRow[] = [];
    const theirs: PeerStep[] = [];
    for (let step = 0; step < o.steps; step++) {
      ours.push(ourStep(model, opt, batches[step], recipe, step));
      if (peer !== null) theirs.push(await peer.step());
    }
    const tokens = o.batch * o.seq;
    const speed = throughput(ours.map((r) => r.seconds), o.warmupSteps, tokens);
    const passes = timePasses(model, batches[0][0], recipe, 3);
    const params = countParameters(cfg);
    const row: TrainBenchRow = {
      model: name,
      architecture: cfg.architectures[0],
      params_total: params.total,
      params_active: params.active,
      ours_tokens_per_s: speed.tokensPerS,
      ours_ms_per_step: speed.msPerStep,
      ours_forward_ms: passes.forwardMs,
      ours_forward_backward_ms: passes.forwardBackwardMs,
      losses_ours: ours.map((r) => r.loss),
    };
    if (peer === null) return { row };
    const peerSpeed = throughput(theirs.map((s) => s.seconds), o.warmupSteps, tokens);
    const peerPasses = await peer.passes(3);
    row.peer_tokens_per_s = peerSpeed.tokensPerS;
    row.peer_ms_per_step = peerSpeed.msPerStep;
    row.peer_forward_ms = 1000 * peerPasses.forward_seconds;
    row.peer_forward_backward_ms = 1000 * peerPasses.forward_backward_seconds;
    row.ratio = speed.tokensPerS / peerSpeed.tokensPerS;
    row.losses_peer = theirs.map((s) => s.loss);
    row.max_rel_loss_diff = Math.max(...ours.map((r, i) => Math.abs(r.loss - theirs[i].loss) / Math.abs(theirs[i].loss)));
    return { row, torch: peer.info.torch };
  } finally {
    await peer?.close();
  }
}

export async function runTrainBench(options: TrainBenchOptions = {}): Promise<TrainBenchResult> {
  const o = {
    steps: options.steps ?? 12,
    batch: options.batch ?? 4,
    seq: options.seq ?? 128,
    threads: options.threads ?? os.availableParallelism(),
    peer: options.peer ?? false,
    warmupSteps: options.warmupSteps ?? 2,
    seed: options.seed ?? 1,
  };
  for (const [k, v] of Object.entries({ steps: o.steps, batch: o.batch, seq: o.seq, threads: o.threads })) {
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`bench train: ${k} must be a positive integer, got ${v}`);
  }
  if (o.peer) {
    const why = torchUnavailable();
    if (why !== null) throw new Error(`bench train --peer: ${why}`);
  }
  const previous = backend();
  const ours = createBackend({ kind: options.backend, threads: o.threads });
  setBackend(ours);
  const work = await mkdtemp(join(os.tmpdir(), 'nanoseek-bench-train-'));
  try {
    const simd = 'simd' in ours ? `-${String(ours.simd)}` : '';
    const result: TrainBenchResult = {
      steps: o.steps, batch: o.batch, seq: o.seq, threads: o.threads, backend: `${ours.name}${simd}`, warmup_steps: Math.min(o.warmupSteps, o.steps - 1), rows: [],
    };
    for (const name of options.models ?? (['micro', 'micro-dense'] as PresetName[])) {
      const { row, torch } = await benchModel(name, o, work);
      result.rows.push(row);
      if (torch !== undefined) result.torch = torch;
    }
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
    setBackend(previous);
    if (ours instanceof WasmBackend) await ours.dispose();
  }
}

function fmtCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}K`;
}

export function formatTrainBench(r: TrainBenchResult): string {
  const lines = [
    `training throughput: batch ${r.batch} × ${r.seq} tokens, ${r.steps} steps (first ${r.warmup_steps} not timed), ${r.threads} thread(s), ${r.backend}` +
      (r.torch ? `, PyTorch ${r.torch}` : ''),
  ];
  for (const row of r.rows) {
    lines.push('', `${row.model} (${row.architecture}, ${fmtCount(row.params_total)} params, ${fmtCount(row.params_active)} active)`);
    const passes = (fwd: number, both: number): string => `forward ${fwd.toFixed(0)} ms, forward+backward ${both.toFixed(0)} ms`;
    lines.push(`  nanoseek ${row.ours_tokens_per_s.toFixed(0).padStart(7)} tokens/s  ${row.ours_ms_per_step.toFixed(0)} ms/step (${passes(row.ours_forward_ms, row.ours_forward_backward_ms)})`);
    if (row.peer_tokens_per_s === undefined) continue;
    lines.push(`  PyTorch  ${row.peer_tokens_per_s.toFixed(0).padStart(7)} tokens/s  ${row.peer_ms_per_step!.toFixed(0)} ms/step (${passes(row.peer_forward_ms!, row.peer_forward_backward_ms!)})`);
    lines.push(`  nanoseek / PyTorch: ${row.ratio!.toFixed(2)}x; losses agree to ${row.max_rel_loss_diff!.toExponential(1)} (max relative difference)`);
    lines.push('  step   nanoseek    PyTorch');
    row.losses_ours.forEach((l, i) => lines.push(`  ${String(i + 1).padStart(4)}  ${l.toFixed(5).padStart(9)}  ${row.losses_peer![i].toFixed(5).padStart(9)}`));
  }
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const num = (flag: string): number | undefined => {
    const at = args.indexOf(flag);
    return at >= 0 ? Number(args[at + 1]) : undefined;
  };
  const kind = args.includes('--backend') ? args[args.indexOf('--backend') + 1] : undefined;
  const result = await runTrainBench({
    steps: num('--steps'), batch: num('--batch'), seq: num('--seq'), threads: num('--threads'), peer: args.includes('--peer'), backend: kind as TrainBenchOptions['backend'],
  });
  process.stdout.write(args.includes('--json') ? `${JSON.stringify(result, null, 2)}\n` : formatTrainBench(result));
}
