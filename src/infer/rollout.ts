// Rollouts: every prompt completed n times through one engine, each sampled token with its
// log-probability under the weights that sampled it. GRPO samples its groups this way, evaluation its
// greedy and sampled answers, rejection sampling its candidates (and distillation its teacher's).
//
// Completions are decoded together with the KV cache; each sampled token keeps its log-probability
// under the policy's own temperature-1 distribution (π_old for the ratio in RL).
import type { CausalLM } from '../model/model.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { Rng } from '../util/rng.js';
import { Engine } from './engine.js';

/** Token ids that end a completion: EOS (model config and tokenizer) and </answer>. */
export function stopIds(model: CausalLM, tokenizer: Tokenizer): number[] {
  const ids = new Set<number>();
  const e = model.config.eos_token_id;
  for (const id of Array.isArray(e) ? e : e === null ? [] : [e]) ids.add(id);
  for (const id of [tokenizer.special.eos, tokenizer.special.answerEnd]) if (id !== undefined) ids.add(id);
  return [...ids];
}

export interface SamplingSettings {
  /** Completions per prompt. */
  samples: number;
  maxNewTokens: number;
  /** 0: greedy. */
  temperature: number;
  topP?: number;
  topK?: number;
  /** Seeds every sequence's sampler, in submission order. */
  seed: number;
  /** Sequences decoded together (default 128). */
  maxBatch?: number;
}

export interface Completion {
  promptIndex: number;
  sampleIndex: number;
  /** Sampled tokens, the stop token included. */
  tokens: number[];
  /** log π(token) under the temperature-1 distribution of the weights that sampled it. */
  logprobs: number[];
  /** Decoded tokens; EOS left out, </answer> kept (the grader needs it). */
  text: string;
  finishReason: 'stop' | 'length' | 'cancelled';
}

/**
 * Completes each prompt `samples` times. Result i·samples + g is sample g of prompt i. The samplers'
 * seeds are drawn from `seed` in submission order, so the result does not depend on scheduling.
 */
export async function sampleCompletions(model: CausalLM, tokenizer: Tokenizer, prompts: readonly (readonly number[])[], s: SamplingSettings): Promise<Completion[]> {
  // Offline batches prefill in large chunks: no request here waits on another.
  const engine = new Engine(model, tokenizer, { maxConcurrent: s.maxBatch ?? 128, maxQueue: Infinity, prefillChunk: 512, prefillBudget: 4096, stopTokenIds: stopIds(model, tokenizer) });
  const seeds = new Rng(s.seed);
  const pending: Promise<Completion>[] = [];
  try {
    prompts.forEach((prompt, p) => {
      for (let g = 0; g < s.samples; g++) {
        const gen = engine.submit(prompt, { maxTokens: s.maxNewTokens, temperature: s.temperature, topP: s.topP, topK: s.topK, seed: seeds.int(0, 2 ** 48) });
        pending.push(
          gen.result.then((r) => ({
            promptIndex: p,
            sampleIndex: g,
            tokens: r.tokens,
            logprobs: r.logprobs,
            text: tokenizer.decode(r.tokens, { skipSpecial: true }),
            finishReason: r.finishReason,
          })),
        );
      }
    });
    return await Promise.all(pending);
  } finally {
    engine.cancelAll();
  }
}
