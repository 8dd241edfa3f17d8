// `nanoseek perplexity`: a model's perplexity on held-out text and, with --kl-base, how far its
// next-token distributions are from a reference model's (llama.cpp's perplexity --kl-divergence).
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { measurePerplexity } from '../../eval/perplexity.js';
import { loadForInference } from '../../infer/index.js';
import { heldOutText } from '../../tasks/index.js';
import { intFlag } from './generate.js';

export function register(program: Command): void {
  program
    .command('perplexity')
    .description('perplexity on held-out text; with --kl-base, KL divergence and top-1 agreement against a reference model (e.g. the F32 original of a quantized file)')
    .requiredOption('--model <path>', 'checkpoint directory or .gguf file')
    .option('--kl-base <path>', 'reference model (same tokenizer): mean KL(base ‖ model), top-1 agreement')
    .option('--text <file>', 'a text file (default: held-out documents of the generated task corpus, which the shipped models know)')
    .option('--window <n>', 'tokens per window; the second half of each is scored', intFlag('--window'), 256)
    .option('--windows <n>', 'at most this many windows', intFlag('--windows'), 16)
    .option('--json', 'one JSON object')
    .action(async (o: { model: string; klBase?: string; text?: string; window: number; windows: number; json?: boolean }) => {
      const ck = await loadForInference(o.model);
      const base = o.klBase === undefined ? undefined : await loadForInference(o.klBase);
      const text = o.text === undefined ? heldOutText(o.window * o.windows * 8) : await readFile(o.text, 'utf8');
      const tokens = ck.tokenizer.encode(text);
      if (base !== undefined && base.tokenizer.encode(text).join(',') !== tokens.join(',')) {
        throw new Error(`--kl-base ${o.klBase}: its tokenizer encodes the text differently from ${o.model}'s; the models must share a tokenizer`);
      }
      const r = measurePerplexity(ck.model, tokens, { window: o.window, maxWindows: o.windows }, base?.model);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ model: ck.dir, kl_base: base?.dir ?? null, window: o.window, ...r })}\n`);
        return;
      }
      const lines = [`${ck.name}: perplexity ${r.perplexity.toFixed(4)} over ${r.positions} positions`];
      if (base !== undefined) {
        lines.push(`  ${base.name} (reference): perplexity ${r.referencePerplexity!.toFixed(4)}`);
        lines.push(`  KL(reference ‖ model): mean ${r.meanKl!.toExponential(3)}, p99 ${r.p99Kl!.toExponential(3)} nats; top-1 agreement ${(100 * r.top1Agreement!).toFixed(2)}%`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
