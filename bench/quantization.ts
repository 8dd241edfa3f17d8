// What quantization costs the shipped models: each is converted to every GGUF type nanoseek writes,
// then (1) its next-token distributions are compared with the original's on held-out text from the
// corpus the models were trained on (mean KL, top-1 agreement, perplexity: llama.cpp's perplexity
// --kl-divergence), and (2) the reasoning model answers the held-out sums of six numbers greedily
// (pass@1, as the README reports for the original).
//
//   nanoseek bench quantization [--types q8_0,q6_k,q5_k_m,q4_k_m,q4_0] [--problems 200] [--json]
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { evaluateModel } from '../src/eval/evaluate.js';
import { measurePerplexity, type PerplexityReport } from '../src/eval/perplexity.js';
import { convertModel } from '../src/io/convert.js';
import type { FileType } from '../src/io/quant-mix.js';
import { loadForInference, packageRoot } from '../src/infer/index.js';
import { heldOutSet, heldOutText, type CorpusOptions } from '../src/tasks/index.js';

export interface QuantizationRow {
  type: FileType | 'original';
  /** Tensors per stored type in the file (the shipped models' 128-wide rows make K-quants fall back). */
  tensorTypes: Record<string, number>;
  bytes: number;
  /** nano-base against its original. */
  base: PerplexityReport;
  /** nano-r1zero: greedy pass@1 on held-out sums of six one-digit numbers. */
  passAt1: number;
}

export interface QuantizationBenchResult {
  problems: number;
  window: number;
  rows: QuantizationRow[];
  date: string;
}

export const DEFAULT_QUANT_TYPES: FileType[] = ['q8_0', 'q6_k', 'q5_k_m', 'q4_k_m', 'q4_0'];

export async function runQuantizationBench(opts: { types?: FileType[]; problems?: number; progress?: (l: string) => void } = {}): Promise<QuantizationBenchResult> {
  const progress = opts.progress ?? (() => {});
  const root = await packageRoot();
  const types = opts.types ?? DEFAULT_QUANT_TYPES;
  const problems = heldOutSet({ task: 'arithmetic', digits: [1, 1, 1, 1, 1, 1], ops: ['+'] }, opts.problems ?? 200);
  // Held-out text from the corpus recipe the shipped models were pretrained on.
  const recipe = JSON.parse(await readFile(join(root, 'configs', 'r1zero.json'), 'utf8')) as { corpus: CorpusOptions & { bytes?: number } };
  const { seed: _seed, bytes: _bytes, ...corpus } = recipe.corpus;
  const text = heldOutText(60_000, corpus);
  const window = 256;
  const dir = await mkdtemp(join(os.tmpdir(), 'nanoseek-quant-bench-'));
  const baseRef = await loadForInference(join(root, 'models', 'nano-base'));
  const tokens = baseRef.tokenizer.encode(text);
  const rows: QuantizationRow[] = [];
  try {
    for (const type of ['original' as const, ...types]) {
      let basePath = join(root, 'models', 'nano-base');
      let r1Path = join(root, 'models', 'nano-r1zero');
      let tensorTypes: Record<string, number> = { BF16: 190, F32: 3 };
      let bytes = 0;
      if (type !== 'original') {
        basePath = join(dir, `nano-base-${type}.gguf`);
        r1Path = join(dir, `nano-r1zero-${type}.gguf`);
        await convertModel(join(root, 'models', 'nano-base'), basePath, { type });
        const c = await convertModel(join(root, 'models', 'nano-r1zero'), r1Path, { type });
        tensorTypes = c.types as Record<string, number>;
        bytes = c.bytes;
      }
      const base = await loadForInference(basePath);
      const ppl = measurePerplexity(base.model, tokens, { window, maxWindows: Math.floor(tokens.length / window) }, baseRef.model);
      const r1 = await loadForInference(r1Path);
      const report = await evaluateModel(r1.model, r1.tokenizer, problems, { template: 'r1-zero', openThink: true, n: 0, maxNewTokens: 128, temperature: 0, seed: 0 });
      rows.push({ type, tensorTypes, bytes, base: ppl, passAt1: report['pass@1'] });
      progress(`${type}: KL ${ppl.meanKl!.toExponential(2)}, top-1 ${(100 * ppl.top1Agreement!).toFixed(1)}%, perplexity ${ppl.perplexity.toFixed(3)}; pass@1 ${(100 * report['pass@1']).toFixed(1)}%`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { problems: problems.length, window, rows, date: new Date().toISOString().slice(0, 10) };
}

export function formatQuantizationBench(r: QuantizationBenchResult): string {
  const lines = [
    `| type | tensors | nano-base: mean KL vs original | top-1 agreement | perplexity | nano-r1zero: pass@1 (${r.problems} sums of six) |`,
    '|---|---|---|---|---|---|',
  ];
  for (const row of r.rows) {
    const census = Object.entries(row.tensorTypes).map(([t, n]) => `${t} ×${n}`).join(', ');
    lines.push(`| ${row.type} | ${census} | ${row.type === 'original' ? '—' : row.base.meanKl!.toExponential(2)} | ${(100 * row.base.top1Agreement!).toFixed(1)}% | ${row.base.perplexity.toFixed(3)} | ${(100 * row.passAt1).toFixed(1)}% |`);
  }
  return `${lines.join('\n')}\n`;
}
