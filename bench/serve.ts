// Load test of `nanoseek serve`: the server runs in its own process (as in production, and so the
// clients' work does not share its event loop); first one streaming client, then N, each for a
// bounded time, every client sending chat requests back to back. EOS is ignored so that every
// request decodes exactly max_tokens tokens whatever the weights. Reported per phase: aggregate
// tokens/s, per-stream decode tokens/s, time to first token and inter-token latency percentiles,
// errors; and the server's resident memory over the run.
//
//   nanoseek bench serve [--json] [--clients 32] [--seconds 20] [--max-tokens 128] [--model dir | --preset micro]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { presetConfig, type PresetName } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import { saveModel } from '../src/io/model-file.js';
import { trainTokenizer } from '../src/tokenizer/index.js';
import { Rng } from '../src/util/rng.js';

export interface ServeBenchOptions {
  /** Checkpoint to serve; default: a random-weight `preset` model with a freshly trained tokenizer. */
  model?: string;
  preset?: PresetName;
  clients?: number;
  seconds?: number;
  maxTokens?: number;
  progress?: (line: string) => void;
}

export interface Percentiles {
  p50: number;
  p99: number;
}

export interface PhaseResult {
  clients: number;
  /** Wall time of the phase. */
  seconds: number;
  /** Requests that completed. */
  requests: number;
  /** Requests still streaming at the deadline, cut off (their tokens so far are counted). */
  cutOff: number;
  errors: number;
  errorSamples: string[];
  /** Tokens received by all clients together. */
  tokens: number;
  /** tokens / seconds. */
  aggregateTokensPerSec: number;
  /** CPU time the server process used during the phase (all its threads). */
  serverCpuSeconds: number;
  /** tokens / serverCpuSeconds: throughput per unit of compute, much less sensitive to other load on the machine. */
  tokensPerCpuSec: number;
  /** Mean over completed requests of (tokens − 1) / (last token − first token): decoding speed seen by one client. */
  perStreamDecodeTokensPerSec: number;
  ttftMs: Percentiles;
  interTokenMs: Percentiles;
}

export interface ServeBenchResult {
  model: string;
  machine: { cpus: number; loadavgBefore: number[]; loadavgAfter: number[]; node: string };
  maxTokens: number;
  single: PhaseResult;
  concurrent: PhaseResult;
  /** concurrent.aggregateTokensPerSec / single.aggregateTokensPerSec */
  speedup: number;
  /** concurrent.tokensPerCpuSec / single.tokensPerCpuSec */
  cpuEfficiencyGain: number;
  memory: {
    /** Server RSS with the model loaded, before any request. */
    rssIdleBytes: number;
    peakRssAfterSingleBytes: number;
    peakRssBytes: number;
    /** RSS at the end of the first and of the second half of the concurrent phase: flat means bounded. */
    rssConcurrentHalvesBytes: [number, number];
    wasmHeapReservedBytes: number;
  };
}

const PROMPTS = [
  'What is 17 + 25?',
  'Explain in one sentence why the sky is blue.',
  'Write a haiku about caches.',
  'A train leaves at 3 pm and travels 120 km at 60 km/h. When does it arrive?',
  'List three prime numbers greater than 50.',
  'Summarise the idea of mixture-of-experts models for a beginner, briefly.',
  'If x + 3 = 10, what is x? Show your reasoning.',
  'Name a word that rhymes with "token".',
];

/** Pseudo-words from syllables plus common words: enough distinct pairs for a 4096-token vocabulary. */
function corpus(rng: Rng, lines: number): string[] {
  const syllables = 'ka to ri mu se na lo pe vi du ga zo bre sta qui lan mor tek pha ser ion ent ous ing'.split(' ');
  const words = 'the of and to in is that for it as with model token reason answer think step number add sum'.split(' ');
  const out: string[] = [];
  for (let l = 0; l < lines; l++) {
    const parts: string[] = [];
    for (let w = 0; w < 16; w++) {
      if (rng.next() < 0.4) parts.push(rng.pick(words));
      else parts.push(Array.from({ length: rng.int(1, 4) }, () => rng.pick(syllables)).join(''));
      if (rng.next() < 0.1) parts.push(String(rng.int(0, 999)));
    }
    out.push(`${parts.join(' ')}.`);
  }
  return out;
}

async function randomCheckpoint(preset: PresetName, dir: string): Promise<void> {
  const tokenizer = await trainTokenizer(corpus(new Rng(1), 20000), { vocabSize: 4096 });
  const model = new CausalLM(presetConfig(preset, { vocabSize: tokenizer.vocabSize }), { seed: 1 });
  await saveModel(model, dir);
  await tokenizer.save(dir);
}

/** How to run this package's CLI from here, from sources (under tsx) or from dist/ alike. */
export function cliCommand(): { command: string; args: string[] } {
  const ts = import.meta.url.endsWith('.ts');
  return { command: process.execPath, args: [...process.execArgv, fileURLToPath(new URL(`../src/cli/main.${ts ? 'ts' : 'js'}`, import.meta.url))] };
}

async function startServer(dir: string, clients: number): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const { command, args } = cliCommand();
  const child = spawn(command, [...args, 'serve', '--model', dir, '--port', '0', '--max-concurrent', String(clients), '--max-queue', String(clients), '--quiet'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the server did not start within 120 s:\n${err}`)), 120_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /http:\/\/\S+:\d+/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (code ${code}) before listening:\n${err}`));
    });
  });
  return { child, url, stderr: () => err };
}

async function* sse(body: ReadableStream<Uint8Array>): AsyncGenerator<Record<string, unknown>> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const bytes of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(bytes, { stream: true });
    let cut: number;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      for (const line of block.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6);
        if (data === '[DONE]') return;
        yield JSON.parse(data) as Record<string, unknown>;
      }
    }
  }
}

interface RequestRecord {
  ttftMs: number | null;
  gapsMs: number[];
  tokens: number;
  decodeRate: number | null;
  completed: boolean;
  error: string | null;
}

/** One streaming chat request; `stop` aborts it at the phase deadline (not an error). */
async function streamOnce(url: string, maxTokens: number, n: number, stop: AbortSignal): Promise<RequestRecord> {
  const rec: RequestRecord = { ttftMs: null, gapsMs: [], tokens: 0, decodeRate: null, completed: false, error: null };
  const t0 = performance.now();
  let first = 0;
  let last = 0;
  let chunks = 0;
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        messages: [{ role: 'user', content: PROMPTS[n % PROMPTS.length] }],
        stream: true,
        max_tokens: maxTokens,
        ignore_eos: true,
        temperature: 0.8,
        top_p: 0.95,
        seed: n,
      }),
      signal: stop,
    });
    if (!res.ok || res.body === null) {
      rec.error = `HTTP ${res.status}: ${await res.text()}`;
      return rec;
    }
    for await (const chunk of sse(res.body)) {
      if (chunk.error) {
        rec.error = JSON.stringify(chunk.error);
        return rec;
      }
      const choice = (chunk.choices as { delta: { content?: string | null; reasoning_content?: string | null } }[])[0];
      const usage = chunk.usage as { completion_tokens: number } | undefined;
      if (usage) rec.tokens = usage.completion_tokens;
      if (choice === undefined || !(choice.delta.content || choice.delta.reasoning_content)) continue;
      const now = performance.now();
      if (chunks === 0) {
        first = now;
        rec.ttftMs = now - t0;
      } else {
        rec.gapsMs.push(now - last);
      }
      last = now;
      chunks++;
    }
    rec.completed = true;
    if (rec.tokens > 1 && last > first) rec.decodeRate = (rec.tokens - 1) / ((last - first) / 1000);
  } catch (err) {
    if (!stop.aborted) rec.error = (err as Error).message;
    rec.tokens = Math.max(rec.tokens, chunks); // cut off: its text chunks are (nearly) its tokens
  }
  return rec;
}

function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: NaN, p99: NaN };
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return { p50: at(0.5), p99: at(0.99) };
}

async function phase(url: string, clients: number, seconds: number, maxTokens: number, firstSeed: number): Promise<PhaseResult> {
  const cpu0 = (await health(url)).cpu_seconds;
  const stop = new AbortController();
  const records: RequestRecord[] = [];
  let n = firstSeed;
  const t0 = performance.now();
  const deadline = setTimeout(() => stop.abort(), seconds * 1000);
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (!stop.signal.aborted) records.push(await streamOnce(url, maxTokens, n++, stop.signal));
    }),
  );
  clearTimeout(deadline);
  const wall = (performance.now() - t0) / 1000;
  const cpu = (await health(url)).cpu_seconds - cpu0;
  const completed = records.filter((r) => r.completed && r.error === null);
  const errors = records.filter((r) => r.error !== null);
  const tokens = records.reduce((s, r) => s + (r.error === null ? r.tokens : 0), 0);
  const rates = completed.map((r) => r.decodeRate).filter((x): x is number => x !== null);
  return {
    clients,
    seconds: wall,
    requests: completed.length,
    cutOff: records.filter((r) => !r.completed && r.error === null).length,
    errors: errors.length,
    errorSamples: [...new Set(errors.map((r) => r.error!))].slice(0, 5),
    tokens,
    aggregateTokensPerSec: tokens / wall,
    serverCpuSeconds: cpu,
    tokensPerCpuSec: tokens / cpu,
    perStreamDecodeTokensPerSec: rates.length === 0 ? NaN : rates.reduce((a, b) => a + b, 0) / rates.length,
    ttftMs: percentiles(records.map((r) => r.ttftMs).filter((x): x is number => x !== null)),
    interTokenMs: percentiles(records.flatMap((r) => r.gapsMs)),
  };
}

interface Health {
  cpu_seconds: number;
  rss_bytes: number;
  peak_rss_bytes: number;
  wasm_heap: { reservedBytes: number };
}

async function health(url: string): Promise<Health> {
  return (await (await fetch(`${url}/health`)).json()) as Health;
}

export async function runServeBench(options: ServeBenchOptions = {}): Promise<ServeBenchResult> {
  const { clients = 32, seconds = 20, maxTokens = 128, preset = 'micro' } = options;
  const progress = options.progress ?? (() => {});
  let tmp: string | null = null;
  let dir = options.model;
  if (dir === undefined) {
    tmp = await mkdtemp(join(os.tmpdir(), 'nanoseek-bench-serve-'));
    dir = join(tmp, preset);
    progress(`building a random-weight ${preset} checkpoint with a 4096-token tokenizer…`);
    await randomCheckpoint(preset, dir);
  }
  const modelName = options.model ?? `random ${preset}`;
  progress(`starting the server on ${modelName}…`);
  const server = await startServer(dir, clients);
  try {
    const loadavgBefore = os.loadavg();
    await Promise.all([0, 1].map((i) => streamOnce(server.url, 8, i, new AbortController().signal))); // warm-up
    const idle = await health(server.url);
    progress(`1 client for ${seconds} s…`);
    const single = await phase(server.url, 1, seconds, maxTokens, 100);
    const afterSingle = await health(server.url);
    progress(`${clients} clients for ${seconds} s…`);
    let halfRss = 0;
    const half = setTimeout(() => void health(server.url).then((h) => (halfRss = h.rss_bytes)), (seconds * 1000) / 2);
    const concurrent = await phase(server.url, clients, seconds, maxTokens, 10_000);
    clearTimeout(half);
    const after = await health(server.url);
    const info = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] };
    const details = (await (await fetch(`${server.url}/v1/models/${encodeURIComponent(info.data[0].id)}`)).json()) as { description: string };
    return {
      model: `${modelName}: ${details.description.split('\n').slice(0, 2).join(';').replace(/\s+/g, ' ')}`,
      machine: { cpus: os.availableParallelism(), loadavgBefore, loadavgAfter: os.loadavg(), node: process.version },
      maxTokens,
      single,
      concurrent,
      speedup: concurrent.aggregateTokensPerSec / single.aggregateTokensPerSec,
      cpuEfficiencyGain: concurrent.tokensPerCpuSec / single.tokensPerCpuSec,
      memory: {
        rssIdleBytes: idle.rss_bytes,
        peakRssAfterSingleBytes: afterSingle.peak_rss_bytes,
        peakRssBytes: after.peak_rss_bytes,
        rssConcurrentHalvesBytes: [halfRss, after.rss_bytes],
        wasmHeapReservedBytes: after.wasm_heap.reservedBytes,
      },
    };
  } finally {
    server.child.kill('SIGTERM');
    await new Promise((resolve) => (server.child.exitCode !== null ? resolve(null) : server.child.once('exit', resolve)));
    if (tmp !== null) await rm(tmp, { recursive: true, force: true });
  }
}

const mb = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;

export function formatServeBench(r: ServeBenchResult): string {
  const f = (x: number, digits: number, width: number): string => (Number.isNaN(x) ? '-' : x.toFixed(digits)).padStart(width);
  const row = (name: string, p: PhaseResult): string =>
    `${name.padEnd(12)} ${f(p.aggregateTokensPerSec, 1, 9)} ${f(p.perStreamDecodeTokensPerSec, 1, 10)} ` +
    `${f(p.ttftMs.p50, 0, 7)} ${f(p.ttftMs.p99, 0, 7)} ${f(p.interTokenMs.p50, 1, 7)} ${f(p.interTokenMs.p99, 1, 7)} ` +
    `${String(p.requests).padStart(5)} ${String(p.errors).padStart(6)} ${f(p.tokensPerCpuSec, 1, 9)}`;
  return [
    `model: ${r.model}`,
    `machine: ${r.machine.cpus} cpus, load average ${r.machine.loadavgBefore[0].toFixed(2)} before / ${r.machine.loadavgAfter[0].toFixed(2)} after, node ${r.machine.node}`,
    `${r.maxTokens} tokens per request, EOS ignored`,
    '',
    `${''.padEnd(12)} ${'agg tok/s'.padStart(9)} ${'stream t/s'.padStart(10)} ${'ttft p50'.padStart(7)} ${'p99'.padStart(7)} ${'itl p50'.padStart(7)} ${'p99'.padStart(7)} ${'reqs'.padStart(5)} ${'errors'.padStart(6)} ${'tok/cpu-s'.padStart(9)}`,
    row('1 client', r.single),
    row(`${r.concurrent.clients} clients`, r.concurrent),
    '',
    `aggregate speedup: ${r.speedup.toFixed(2)}x; tokens per server CPU-second: ${r.cpuEfficiencyGain.toFixed(2)}x (times in ms)`,
    `server memory: idle ${mb(r.memory.rssIdleBytes)}, peak ${mb(r.memory.peakRssAfterSingleBytes)} after 1 client, ${mb(r.memory.peakRssBytes)} after ${r.concurrent.clients}; ` +
      `RSS at mid / end of the concurrent phase ${mb(r.memory.rssConcurrentHalvesBytes[0])} / ${mb(r.memory.rssConcurrentHalvesBytes[1])}; WASM heap reserved ${mb(r.memory.wasmHeapReservedBytes)}`,
    ...[...r.single.errorSamples, ...r.concurrent.errorSamples].map((e) => `error: ${e}`),
  ].join('\n');
}
