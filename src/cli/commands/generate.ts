// `nanoseek generate`: one completion from the command line, streamed, or as one JSON object. Also the
// flag parsing and reply printing that `chat` and `serve` share.
import type { Command } from 'commander';
import { Engine, loadForInference, promptOpensThink, ReasoningSplitter, resolveModelDir, splitCompletion, type InferenceCheckpoint, type SamplingOptions } from '../../infer/index.js';
import { applyChatTemplate, type ChatMessage } from '../../tokenizer/index.js';
import { startExperts, withExpertFlags, type ExpertFlags } from '../expert-flags.js';

export function intFlag(flag: string, min = 1, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text) => {
    const v = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
    if (!Number.isSafeInteger(v) || v < min || v > max) {
      throw new Error(`${flag}: expected an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, got ${JSON.stringify(text)}`);
    }
    return v;
  };
}

export function numberFlag(flag: string, lo: number, hi: number): (text: string) => number {
  return (text) => {
    const v = text.trim() === '' ? NaN : Number(text);
    if (!Number.isFinite(v) || v < lo || v > hi) throw new Error(`${flag}: expected a number in [${lo}, ${hi}], got ${JSON.stringify(text)}`);
    return v;
  };
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export interface SamplingFlags {
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  seed?: number;
  maxTokens?: number;
}

/** --model/--tokenizer/--no-finite-check, for commands that load a model to generate. */
export function withModelFlags(cmd: Command): Command {
  return cmd
    .option('--model <path>', 'checkpoint directory or .gguf file (default: models/nano-r1zero in the package)')
    .option('--tokenizer <path>', 'tokenizer.json or its directory (default: the checkpoint\'s)')
    .option('--no-finite-check', 'skip the check that every weight is finite (faster loading of large models)');
}

export function withSamplingFlags(cmd: Command, defaultMaxTokens: number): Command {
  return cmd
    .option('--max-tokens <n>', 'most tokens to generate', intFlag('--max-tokens'), defaultMaxTokens)
    .option('--temperature <t>', "0 = greedy (default: the checkpoint's generation_config.json)", numberFlag('--temperature', 0, 2))
    .option('--top-p <p>', 'nucleus sampling mass', numberFlag('--top-p', Number.MIN_VALUE, 1))
    .option('--top-k <k>', 'sample from the k most likely tokens (0: all)', intFlag('--top-k', 0))
    .option('--repetition-penalty <r>', 'penalise tokens already seen (1: off)', numberFlag('--repetition-penalty', Number.MIN_VALUE, 10))
    .option('--seed <n>', 'random seed (reproducible output)', intFlag('--seed', 0));
}

/** Flags over the checkpoint's defaults. */
export function samplingFrom(flags: SamplingFlags, ckpt: InferenceCheckpoint): SamplingOptions {
  const d = ckpt.samplingDefaults;
  return {
    temperature: flags.temperature ?? d.temperature,
    topP: flags.topP ?? d.topP,
    topK: flags.topK ?? d.topK,
    repetitionPenalty: flags.repetitionPenalty ?? d.repetitionPenalty,
    seed: flags.seed,
  };
}

export interface ModelFlags {
  model?: string;
  tokenizer?: string;
  /** false with --no-finite-check. */
  finiteCheck?: boolean;
}

export async function loadFromFlags(flags: ModelFlags): Promise<InferenceCheckpoint> {
  const dir = await resolveModelDir(flags.model, (line) => process.stderr.write(`${line}\n`));
  return loadForInference(dir, { tokenizer: flags.tokenizer, checkFinite: flags.finiteCheck !== false });
}

const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

/**
 * Writes a streamed reply: on a terminal the reasoning dimmed and the answer plain; elsewhere the
 * reasoning between <think> tags, so that piped output still says which part is which.
 */
export class ReplyPrinter {
  private state: 'none' | 'reasoning' | 'content' = 'none';

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly tty: boolean,
  ) {}

  write(part: { reasoning: string; content: string }): void {
    if (part.reasoning !== '') {
      if (this.state === 'none') this.out.write(this.tty ? DIM : '<think>\n');
      this.state = 'reasoning';
      this.out.write(part.reasoning);
    }
    if (part.content !== '') {
      if (this.state === 'reasoning') this.out.write(this.tty ? `${RESET}\n\n` : '\n</think>\n\n');
      this.state = 'content';
      this.out.write(part.content);
    }
  }

  /** Closes the reply (and a reasoning block the model never closed). */
  end(): void {
    if (this.state === 'reasoning') this.out.write(this.tty ? RESET : '\n</think>');
    this.out.write('\n');
    this.state = 'none';
  }

  note(text: string): void {
    this.out.write(this.tty ? `${DIM}${text}${RESET}\n` : `${text}\n`);
  }
}

interface GenerateFlags extends SamplingFlags, ExpertFlags {
  model?: string;
  tokenizer?: string;
  prompt: string;
  system?: string;
  raw?: boolean;
  stop?: string[];
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('generate')
    .description('complete one prompt (as a chat message, or --raw text) and print the reasoning and the answer');
  withExpertFlags(withSamplingFlags(withModelFlags(cmd), 256))
    .requiredOption('--prompt <text>', 'the user message (with --raw: the exact text to continue)')
    .option('--system <text>', 'a system message')
    .option('--raw', 'plain text completion: no chat template')
    .option('--stop <text>', 'stop before this string (repeatable)', collect)
    .option('--json', 'print one JSON object: reasoning, content, text, tokens, finish_reason, timings')
    .action(async (o: GenerateFlags) => {
      const ckpt = await loadFromFlags(o);
      const { model, tokenizer } = ckpt;
      const experts = await startExperts(model, o, ckpt.dir, 'generate');
      let text: string;
      let ids: number[];
      if (o.raw) {
        if (o.system !== undefined) throw new Error('--system needs the chat template: drop --raw');
        text = o.prompt;
        ids = tokenizer.encode(text, { addBos: tokenizer.special.bos !== undefined });
      } else {
        const messages: ChatMessage[] = o.system === undefined ? [] : [{ role: 'system', content: o.system }];
        messages.push({ role: 'user', content: o.prompt });
        text = applyChatTemplate(tokenizer, messages);
        ids = tokenizer.encode(text);
      }
      // One prompt, one completion: no other sequence could reuse its prefix, so keep no copy of it.
      const engine = new Engine(model, tokenizer, { maxConcurrent: 1, prefixCache: { maxBytes: 0 } });
      const opened = !o.raw && promptOpensThink(text);
      const splitter = new ReasoningSplitter(opened);
      const printer = new ReplyPrinter(process.stdout, process.stdout.isTTY === true);
      const started = performance.now();
      let firstTokenAt = 0;
      let reasoningTokens = 0;
      const gen = engine.submit(ids, { ...samplingFrom(o, ckpt), maxTokens: o.maxTokens, stop: o.stop });
      for await (const e of gen) {
        if (e.index === 0) firstTokenAt = performance.now();
        if (o.raw) {
          if (!o.json) process.stdout.write(e.text);
          continue;
        }
        const part = splitter.push(e.text);
        if (part.inReasoning) reasoningTokens++;
        if (!o.json) printer.write(part);
      }
      const r = await gen.result;
      const seconds = (performance.now() - started) / 1000;
      await experts.stop();
      const summary = experts.summary();
      if (summary !== null) process.stderr.write(`${summary}\n`);
      if (o.json) {
        const split = o.raw ? { reasoning: null, content: r.text } : splitCompletion(r.text, opened);
        process.stdout.write(
          `${JSON.stringify({
            model: ckpt.name,
            ...split,
            text: r.text,
            finish_reason: r.finishReason,
            usage: { prompt_tokens: r.promptTokens, completion_tokens: r.tokens.length, reasoning_tokens: o.raw ? null : reasoningTokens },
            tokens: r.tokens,
            logprobs: r.logprobs,
            seconds,
            time_to_first_token_s: firstTokenAt === 0 ? null : (firstTokenAt - started) / 1000,
            tokens_per_s: r.tokens.length / seconds,
          })}\n`,
        );
        return;
      }
      if (o.raw) process.stdout.write('\n');
      else {
        printer.write(splitter.flush());
        printer.end();
      }
      process.stderr.write(`[${r.tokens.length} tokens in ${seconds.toFixed(1)} s, ${(r.tokens.length / seconds).toFixed(1)} tokens/s, finish: ${r.finishReason}]\n`);
    });
}
