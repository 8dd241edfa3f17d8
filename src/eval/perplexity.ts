// How much a model's predictions change when its weights are quantized, measured as llama.cpp's
// perplexity tool does with --kl-divergence: run the quantized model and a reference (its float32
// original) over the same held-out text in fixed windows, and compare next-token distributions at
// every position: mean KL(reference ‖ model), how often the top token agrees, and each model's
// perplexity on the text itself.
import type { CausalLM } from '../model/model.js';
import * as T from '../tensor/index.js';

export interface PerplexityOptions {
  /** Tokens per window (each window is one forward pass; its first half only provides context). */
  window: number;
  /** At most this many windows. */
  maxWindows?: number;
}

export interface PerplexityReport {
  /** Positions scored (the second half of every window). */
  positions: number;
  /** exp(mean negative log-likelihood of the actual next token). */
  perplexity: number;
  /** The reference's perplexity on the same positions (with a reference). */
  referencePerplexity: number | null;
  /** Mean KL(reference ‖ model) in nats (with a reference). */
  meanKl: number | null;
  /** 99th percentile of the per-position KL (with a reference). */
  p99Kl: number | null;
  /** Share of positions where both put the same token first (with a reference). */
  top1Agreement: number | null;
}

/** log-softmax of row r of a [rows, V] logits array into out. */
function logSoftmaxRow(logits: ArrayLike<number>, r: number, V: number, out: Float64Array): void {
  let m = -Infinity;
  for (let i = 0; i < V; i++) m = Math.max(m, logits[r * V + i]);
  let s = 0;
  for (let i = 0; i < V; i++) s += Math.exp(logits[r * V + i] - m);
  const lse = m + Math.log(s);
  for (let i = 0; i < V; i++) out[i] = logits[r * V + i] - lse;
}

function argmax(a: Float64Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

function windowLogits(model: CausalLM, ids: readonly number[]): Float32Array {
  return T.noGrad(() => T.tidy(() => Float32Array.from(model.forward(ids, 1, ids.length).logits.data)));
}

/**
 * Scores `model` (and compares it with `reference`, if given) on `tokens` cut into windows of
 * `window` tokens; only the second half of each window is scored, so every scored position sees at
 * least window/2 tokens of context.
 */
export function measurePerplexity(model: CausalLM, tokens: readonly number[], opts: PerplexityOptions, reference?: CausalLM): PerplexityReport {
  const { window } = opts;
  if (!Number.isSafeInteger(window) || window < 2) throw new Error(`perplexity: window must be an integer >= 2, got ${window}`);
  if (window > model.config.max_position_embeddings) throw new Error(`perplexity: window ${window} exceeds the model's context ${model.config.max_position_embeddings}`);
  const V = model.config.vocab_size;
  if (reference !== undefined && reference.config.vocab_size !== V) {
    throw new Error(`perplexity: the reference's vocabulary (${reference.config.vocab_size}) differs from the model's (${V})`);
  }
  const windows = Math.min(Math.floor(tokens.length / window), opts.maxWindows ?? Infinity);
  if (windows < 1) throw new Error(`perplexity: the text has ${tokens.length} tokens, fewer than one window of ${window}`);
  const lp = new Float64Array(V);
  const lq = new Float64Array(V);
  let nll = 0, refNll = 0, kl = 0, agree = 0, positions = 0;
  const kls: number[] = [];
  for (let w = 0; w < windows; w++) {
    const ids = tokens.slice(w * window, (w + 1) * window);
    const logits = windowLogits(model, ids);
    const refLogits = reference !== undefined ? windowLogits(reference, ids) : null;
    for (let t = Math.floor(window / 2); t + 1 < window; t++) {
      const next = ids[t + 1];
      logSoftmaxRow(logits, t, V, lq);
      nll -= lq[next];
      if (refLogits !== null) {
        logSoftmaxRow(refLogits, t, V, lp);
        refNll -= lp[next];
        let k = 0;
        for (let i = 0; i < V; i++) k += Math.exp(lp[i]) * (lp[i] - lq[i]);
        kl += k;
        kls.push(k);
        if (argmax(lp) === argmax(lq)) agree++;
      }
      positions++;
    }
  }
  kls.sort((a, b) => a - b);
  const withRef = reference !== undefined;
  return {
    positions,
    perplexity: Math.exp(nll / positions),
    referencePerplexity: withRef ? Math.exp(refNll / positions) : null,
    meanKl: withRef ? kl / positions : null,
    p99Kl: withRef ? kls[Math.min(kls.length - 1, Math.floor(0.99 * kls.length))] : null,
    top1Agreement: withRef ? agree / positions : null,
  };
}
