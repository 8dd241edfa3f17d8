// Offline generation: many prompts (and several samples of each, as GRPO wants) decoded together
// through one engine, so the batched forward is shared by all of them.
import type { CausalLM } from '../model/model.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { Rng } from '../util/rng.js';
import { Engine, type GenerationOptions, type GenerationResult } from './engine.js';

export interface BatchGenerateOptions extends Omit<GenerationOptions, 'onToken' | 'signal' | 'seed'> {
  /** Completions per prompt (GRPO's group size G). Default 1. */
  samplesPerPrompt?: number;
  /** Sequences decoded together (default 64). */
  maxBatch?: number;
  prefillChunk?: number;
  /** Prepend BOS to text prompts (default false: chat templates write their own). */
  addBos?: boolean;
  /**
   * Makes the whole batch reproducible: each sequence's seed is drawn from it in submission order,
   * so the result does not depend on how sequences happen to be scheduled together.
   */
  seed?: number;
  signal?: AbortSignal;
  /** Called as each completion finishes. */
  onResult?: (result: BatchResult) => void;
}

export interface BatchResult extends GenerationResult {
  /** Index of the prompt this completes. */
  promptIndex: number;
  /** Which of its samplesPerPrompt samples this is. */
  sampleIndex: number;
}

/**
 * Completes every prompt (text, or token ids) samplesPerPrompt times. Results come back prompt-major:
 * result[p·G + g] is sample g of prompt p. An aborted signal ends the unfinished ones as 'cancelled'.
 */
export async function generate(
  model: CausalLM,
  tokenizer: Tokenizer,
  prompts: readonly (string | readonly number[])[],
  options: BatchGenerateOptions = {},
): Promise<BatchResult[]> {
  const { samplesPerPrompt = 1, maxBatch = 64, prefillChunk, addBos = false, seed, signal, onResult, ...sampling } = options;
  if (!Number.isSafeInteger(samplesPerPrompt) || samplesPerPrompt < 1) throw new RangeError(`samplesPerPrompt must be a positive integer, got ${samplesPerPrompt}`);
  const encoded = prompts.map((p) => (typeof p === 'string' ? tokenizer.encode(p, { addBos }) : p));
  // A single sequence has no one to share its prompt with: the prefix cache would only hold a copy.
  const prefixCache = encoded.length * samplesPerPrompt > 1 ? undefined : { maxBytes: 0 };
  const engine = new Engine(model, tokenizer, { maxConcurrent: maxBatch, maxQueue: Infinity, prefillChunk, seed, prefixCache });
  const seeds = new Rng(seed ?? Date.now());
  const pending: Promise<BatchResult>[] = [];
  try {
    for (let p = 0; p < encoded.length; p++) {
      for (let g = 0; g < samplesPerPrompt; g++) {
        const gen = engine.submit(encoded[p], { ...sampling, seed: seeds.int(0, 2 ** 48), signal });
        pending.push(
          gen.result.then((r) => {
            const out = { ...r, promptIndex: p, sampleIndex: g };
            onResult?.(out);
            return out;
          }),
        );
      }
    }
    return await Promise.all(pending);
  } finally {
    engine.cancelAll(); // after a failure (a bad prompt, a throwing onResult) the rest must not keep decoding
  }
}
