// Rollouts and log-probabilities for GRPO (and for evaluation, which samples the same way).
//
// Prompts are rendered the way the policy is asked in RL: BOS + the R1-Zero template, or the
// tokenizer's chat template (R1). Completions are decoded together with the KV cache; each sampled
// token keeps its log-probability under the policy's own temperature-1 distribution (π_old for the
// ratio). Teacher-forced recomputation runs full-sequence forwards in micro-batches whose shapes come
// from a small fixed set: the tensor heap keeps freed buffers per exact size, so every new batch
// shape would reserve its own activations for the rest of the run.
import { Engine, promptOpensThink } from '../infer/index.js';
import type { CausalLM } from '../model/model.js';
import { questionText, zeroPrompt, type Problem } from '../tasks/index.js';
import * as T from '../tensor/index.js';
import { applyChatTemplate, type Tokenizer } from '../tokenizer/index.js';
import { Rng } from '../util/rng.js';
import type { PromptTemplate } from './grpo-config.js';

export interface RenderedPrompt {
  /** The prompt text (without a BOS the tokenizer adds). */
  text: string;
  ids: number[];
  /** The prompt leaves the model inside an open <think> block. */
  opensThink: boolean;
}

/** The prompt for a problem in the given template, as text and token ids. */
export function renderPrompt(tokenizer: Tokenizer, problem: Problem, template: PromptTemplate, openThink = false): RenderedPrompt {
  if (template === 'r1') {
    const text = applyChatTemplate(tokenizer, [{ role: 'user', content: questionText(problem) }]);
    return { text, ids: tokenizer.encode(text), opensThink: promptOpensThink(text) };
  }
  const text = zeroPrompt(problem, { openThink });
  return { text, ids: tokenizer.encode(text, { addBos: tokenizer.special.bos !== undefined }), opensThink: openThink };
}

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

/** A prompt and its completion, as token ids. */
export interface Sequence {
  prompt: readonly number[];
  completion: readonly number[];
}

export interface MicroBatch {
  /** Indices into the sequence list, longest first. */
  members: number[];
  /** Rows of the batch; rows past members.length are padding. */
  B: number;
  T: number;
}

const ALIGN = 32;

/**
 * Groups sequences into micro-batches of about `tokens` positions: sorted longest first, each batch
 * takes T = a multiple of 32 that divides `tokens` and holds its longest sequence, and B = tokens / T
 * rows. The last batch shrinks by halving B while its sequences still fit. So B·T is `tokens` or
 * `tokens`/2^k, whatever the lengths: a handful of buffer sizes for the whole run.
 */
export function planMicroBatches(seqs: readonly Sequence[], tokens: number): MicroBatch[] {
  if (!Number.isSafeInteger(tokens) || tokens < ALIGN || tokens % ALIGN !== 0) throw new Error(`micro-batch size: ${tokens} tokens must be a positive multiple of ${ALIGN}`);
  const order = seqs.map((s, i) => ({ i, n: s.prompt.length + s.completion.length - 1 })).sort((a, b) => b.n - a.n || a.i - b.i);
  const out: MicroBatch[] = [];
  let at = 0;
  while (at < order.length) {
    const need = Math.max(1, order[at].n);
    let T = Math.ceil(need / ALIGN) * ALIGN;
    while (T <= tokens && tokens % T !== 0) T += ALIGN;
    if (T > tokens) throw new Error(`a sequence of ${need + 1} tokens does not fit a micro-batch of ${tokens} tokens; raise micro_tokens`);
    let B = tokens / T;
    const left = order.length - at;
    while (B % 2 === 0 && B / 2 >= left) B /= 2;
    const members = order.slice(at, at + B).map((o) => o.i);
    out.push({ members, B, T });
    at += members.length;
  }
  return out;
}

/** The [B, T] inputs of a micro-batch and, per member, the rows whose logits predict its completion. */
export function batchInputs(seqs: readonly Sequence[], mb: MicroBatch, padId: number): { ids: Int32Array; rows: number[]; targets: number[] } {
  const ids = new Int32Array(mb.B * mb.T).fill(padId);
  const rows: number[] = [];
  const targets: number[] = [];
  mb.members.forEach((s, b) => {
    const { prompt, completion } = seqs[s];
    const full = [...prompt, ...completion];
    for (let t = 0; t < full.length - 1; t++) ids[b * mb.T + t] = full[t];
    for (let j = 0; j < completion.length; j++) {
      rows.push(b * mb.T + prompt.length - 1 + j);
      targets.push(completion[j]);
    }
  });
  return { ids, rows, targets };
}

/** log π(completion token) for the members of one micro-batch, concatenated in member order: [N]. */
export function microBatchLogProbs(model: CausalLM, seqs: readonly Sequence[], mb: MicroBatch, padId: number): T.Tensor {
  const { ids, rows, targets } = batchInputs(seqs, mb, padId);
  const { logits } = model.forward(ids, mb.B, mb.T);
  return T.tokenLogProbs(T.gatherRows(logits, rows), targets);
}

/** Teacher-forced log-probs of every completion token (no gradients), per sequence. */
export function sequenceLogProbs(model: CausalLM, seqs: readonly Sequence[], padId: number, microTokens: number): Float64Array[] {
  const out: Float64Array[] = seqs.map((s) => new Float64Array(s.completion.length));
  T.noGrad(() => {
    for (const mb of planMicroBatches(seqs, microTokens)) {
      T.tidy(() => {
        const lp = microBatchLogProbs(model, seqs, mb, padId).data;
        let at = 0;
        for (const s of mb.members) {
          out[s].set(lp.subarray(at, at + seqs[s].completion.length));
          at += seqs[s].completion.length;
        }
      });
    }
  });
  return out;
}
