// `nanoseek tokenize …` (inspect how a tokenizer cuts text), `nanoseek tokenizer train …` and
// `nanoseek bench tokenizer`.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadTokenizer, readCorpusFile, trainTokenizer, type Tokenizer } from '../../tokenizer/index.js';
import { benchCommand } from './bench.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The text output: one token per line as `id  piece  "decoded text"`. */
function formatTokens(tokenizer: Tokenizer, ids: number[]): string {
  const width = Math.max(1, ...ids.map((id) => String(id).length));
  const lines = ids.map((id) => `${String(id).padStart(width)}  ${tokenizer.idToToken(id)}  ${JSON.stringify(tokenizer.decode([id]))}`);
  lines.push(`${ids.length} tokens`);
  return `${lines.join('\n')}\n`;
}

function positiveInt(flag: string): (text: string) => number {
  return (text) => {
    const v = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${flag}: expected a positive integer, got ${JSON.stringify(text)}`);
    return v;
  };
}

/** Where the commands print; tests pass their own. */
export interface CommandOutput {
  out(text: string): void;
  err(text: string): void;
}

const processOutput: CommandOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

export function register(program: Command, io: CommandOutput = processOutput): void {
  program
    .command('tokenize')
    .description('encode text and print its token ids and pieces (no BOS unless --bos)')
    .argument('<text>', 'the text to encode ("-" reads standard input)')
    .requiredOption('--tokenizer <path>', 'tokenizer.json, or a directory holding one')
    .option('--json', 'print {"ids": [...], "pieces": [...]}')
    .option('--bos', 'prepend the BOS token')
    .action(async (text: string, opts: { tokenizer: string; json?: boolean; bos?: boolean }) => {
      const tokenizer = await loadTokenizer(opts.tokenizer);
      const input = text === '-' ? await readStdin() : text;
      const ids = tokenizer.encode(input, { addBos: opts.bos === true });
      if (opts.json) {
        const pieces = ids.map((id) => tokenizer.idToToken(id));
        io.out(`${JSON.stringify({ ids, pieces })}\n`);
      } else {
        io.out(formatTokens(tokenizer, ids));
      }
    });

  const group = program.command('tokenizer').description('tokenizer tools');
  group
    .command('train')
    .description('train a byte-level BPE tokenizer on a text file; writes tokenizer.json and tokenizer_config.json')
    .requiredOption('--corpus <file>', 'UTF-8 text file')
    .requiredOption('--vocab-size <n>', 'vocabulary size, special and byte tokens included', positiveInt('--vocab-size'))
    .requiredOption('--out <dir>', 'output directory')
    .option('--min-frequency <n>', 'stop when the best pair is rarer than this', positiveInt('--min-frequency'), 2)
    .action(async (opts: { corpus: string; vocabSize: number; out: string; minFrequency: number }) => {
      const info = await stat(opts.corpus).catch(() => null);
      if (!info?.isFile()) throw new Error(`${opts.corpus}: no such file`);
      const started = Date.now();
      const tokenizer = await trainTokenizer(readCorpusFile(opts.corpus), {
        vocabSize: opts.vocabSize,
        minFrequency: opts.minFrequency,
        onProgress: (done, total) => io.err(`\rmerges ${done}/${total}`),
      });
      io.err('\n');
      await tokenizer.save(opts.out);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      io.out(`wrote ${join(opts.out, 'tokenizer.json')} (vocab ${tokenizer.vocabSize}, ${seconds} s)\n`);
    });

  benchCommand(program)
    .command('tokenizer')
    .description('encoding MB/s of our BPE vs @huggingface/tokenizers on the same text, with an id-for-id check')
    .option('--json', 'one JSON document: {textBytes, documents, results: [{tokenizer, ours, huggingface, speedup, identical, ...}]}')
    .option('--mb <n>', 'size of the generated text in MB', positiveInt('--mb'), 4)
    .option('--tokenizer <path...>', 'tokenizer.json files or directories (default: DeepSeek-V3 and Qwen3 from the dev dependencies)')
    .action(async (opts: { json?: boolean; mb: number; tokenizer?: string[] }) => {
      // Loaded on demand: the other commands need neither the bench nor @huggingface/tokenizers.
      const { formatTokenizerBench, runTokenizerBench } = await import('../../../bench/tokenizer.js');
      const result = await runTokenizerBench({ mb: opts.mb, tokenizers: opts.tokenizer });
      io.out(opts.json ? `${JSON.stringify(result, null, 2)}\n` : formatTokenizerBench(result));
    });
}
