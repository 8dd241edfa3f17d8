// Choosing the next token from a row of logits.
//
// Every sample also reports its log-probability under the model's own distribution (softmax of the raw
// logits: temperature 1, no penalties, no truncation). That is the quantity policy-gradient methods
// need for the sampled tokens; the probability under the sampling distribution would be a property of
// the decoding settings, not of the policy.
import { Rng } from '../util/rng.js';

export interface SamplingOptions {
  /** 0 picks the most likely token (greedy). Default 1. */
  temperature?: number;
  /** Nucleus sampling: keep the most likely tokens whose probabilities sum to at least topP. Default 1 (off). */
  topP?: number;
  /** Keep only the topK most likely tokens; 0 = off. */
  topK?: number;
  /**
   * CTRL / Hugging Face repetition penalty over the prompt and the completion so far: a seen token's
   * positive logit is divided by it, a negative one multiplied. 1 = off.
   */
  repetitionPenalty?: number;
  /** OpenAI presence penalty: subtracted once from the logit of every token already generated. */
  presencePenalty?: number;
  /** OpenAI frequency penalty: subtracted per occurrence in the completion so far. */
  frequencyPenalty?: number;
  /** Seed of this sequence's random stream; the same seed and logits give the same tokens. */
  seed?: number;
}

export interface Sample {
  token: number;
  /** log p(token) under softmax(raw logits). */
  logprob: number;
}

// One scratch set shared by all samplers: sampling is synchronous, so two never run at once, and a
// per-sequence copy of vocabulary-sized buffers would cost megabytes per running request.
let scratchLogits = new Float64Array(0);
let scratchProbs = new Float64Array(0);
let scratchIndex = new Int32Array(0);
let scratchMasked = new Float64Array(0);

function scratch(V: number): void {
  if (scratchLogits.length >= V) return;
  scratchLogits = new Float64Array(V);
  scratchProbs = new Float64Array(V);
  scratchIndex = new Int32Array(V);
}

function checkRange(name: string, v: number, lo: number, hi: number, loOpen = false): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || (loOpen ? v <= lo : v < lo) || v > hi) {
    throw new RangeError(`${name} must be a number in ${loOpen ? '(' : '['}${lo}, ${hi}], got ${v}`);
  }
}

/** Throws a RangeError naming the first invalid option. */
export function checkSamplingOptions(o: SamplingOptions): void {
  if (o.temperature !== undefined) checkRange('temperature', o.temperature, 0, 100);
  if (o.topP !== undefined) checkRange('topP', o.topP, 0, 1, true);
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) throw new RangeError(`topK must be a non-negative integer, got ${o.topK}`);
  if (o.repetitionPenalty !== undefined) checkRange('repetitionPenalty', o.repetitionPenalty, 0, 100, true);
  if (o.presencePenalty !== undefined) checkRange('presencePenalty', o.presencePenalty, -100, 100);
  if (o.frequencyPenalty !== undefined) checkRange('frequencyPenalty', o.frequencyPenalty, -100, 100);
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) throw new RangeError(`seed must be a safe integer, got ${o.seed}`);
}

/** log Σ exp(row), computed stably. */
export function logSumExp(row: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return max + Math.log(sum);
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Indices of the k largest values (ties: smaller index first), in no particular order. */
function topKInto(values: ArrayLike<number>, V: number, k: number, out: Int32Array): void {
  // A min-heap of size k: the root is the weakest survivor, replaced whenever something beats it.
  const worse = (a: number, b: number): boolean => values[a] < values[b] || (values[a] === values[b] && a > b);
  const siftDown = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < k && worse(out[l], out[m])) m = l;
      if (r < k && worse(out[r], out[m])) m = r;
      if (m === i) return;
      const t = out[i];
      out[i] = out[m];
      out[m] = t;
      i = m;
    }
  };
  for (let i = 0; i < k; i++) out[i] = i;
  for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(i);
  for (let i = k; i < V; i++) {
    if (worse(out[0], i)) {
      out[0] = i;
      siftDown(0);
    }
  }
}

/**
 * One sequence's sampler: its random stream and the token history the penalties look at. Feed the
 * prompt with `observe`; `sample` records the token it returns.
 */
export class Sampler {
  readonly temperature: number;
  readonly topP: number;
  readonly topK: number;
  readonly repetitionPenalty: number;
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
  private readonly rng: Rng;
  /** Every token of the prompt and completion (for the repetition penalty). */
  private readonly seen = new Set<number>();
  /** Occurrences of each token in the completion (for the OpenAI penalties). */
  private readonly generated = new Map<number, number>();

  constructor(options: SamplingOptions = {}) {
    checkSamplingOptions(options);
    this.temperature = options.temperature ?? 1;
    this.topP = options.topP ?? 1;
    this.topK = options.topK ?? 0;
    this.repetitionPenalty = options.repetitionPenalty ?? 1;
    this.presencePenalty = options.presencePenalty ?? 0;
    this.frequencyPenalty = options.frequencyPenalty ?? 0;
    this.rng = new Rng(options.seed ?? 0);
  }

  /** Always picks the likeliest token: temperature 0 and no penalties. */
  get greedy(): boolean {
    return this.temperature === 0 && !this.penalised;
  }

  private get penalised(): boolean {
    return this.repetitionPenalty !== 1 || this.presencePenalty !== 0 || this.frequencyPenalty !== 0;
  }

  /** Adds prompt tokens to the history the repetition penalty sees. */
  observe(ids: ArrayLike<number>): void {
    for (let i = 0; i < ids.length; i++) this.seen.add(ids[i]);
  }

  /**
   * Picks the next token. `withLogprob` false skips the normaliser over the whole vocabulary (a pass
   * of exponentials) when the sampling itself does not need it; the log-prob is then NaN.
   */
  sample(row: ArrayLike<number>, withLogprob = true, allowed?: Uint32Array): Sample {
    if (allowed !== undefined) return this.sampleAllowed(row, withLogprob, allowed);
    const V = row.length;
    scratch(V);
    let best = 0;
    for (let i = 1; i < V; i++) if (row[i] > row[best]) best = i;
    const max = row[best];
    // The exponentials are kept: at temperature 1 they are the sampling weights too.
    let sum = NaN;
    if (withLogprob) {
      const e = scratchProbs;
      sum = 0;
      for (let i = 0; i < V; i++) sum += e[i] = Math.exp(row[i] - max);
    }
    const token = this.temperature === 0 && !this.penalised ? best : this.choose(row, V, sum);
    this.seen.add(token);
    this.generated.set(token, (this.generated.get(token) ?? 0) + 1);
    return { token, logprob: withLogprob ? row[token] - max - Math.log(sum) : NaN };
  }

  /**
   * Samples among the tokens whose bit is set in `allowed` (constrained decoding): the others' logits
   * become −∞ before penalties, temperature and truncation. The log-prob stays that of the model's
   * own, unmasked distribution.
   */
  private sampleAllowed(row: ArrayLike<number>, withLogprob: boolean, allowed: Uint32Array): Sample {
    const V = row.length;
    if (scratchMasked.length < V) scratchMasked = new Float64Array(V);
    const m = scratchMasked.subarray(0, V);
    for (let i = 0; i < V; i++) m[i] = (allowed[i >>> 5] & (1 << (i & 31))) !== 0 ? row[i] : -Infinity;
    const { token } = this.sample(m, false);
    return { token, logprob: withLogprob ? row[token] - logSumExp(row) : NaN };
  }

  /** `sum`: Σ exp(row − max) with its terms in scratchProbs, or NaN when they were not computed. */
  private choose(row: ArrayLike<number>, V: number, sum: number): number {
    let l: ArrayLike<number> = row;
    let z = sum;
    const p = scratchProbs;
    if (this.penalised) {
      const c = scratchLogits;
      for (let i = 0; i < V; i++) c[i] = row[i];
      if (this.repetitionPenalty !== 1) {
        for (const t of this.seen) c[t] = c[t] > 0 ? c[t] / this.repetitionPenalty : c[t] * this.repetitionPenalty;
      }
      if (this.presencePenalty !== 0 || this.frequencyPenalty !== 0) {
        for (const [t, n] of this.generated) c[t] -= this.presencePenalty + n * this.frequencyPenalty;
      }
      l = c;
      if (this.temperature === 0) return argmax(c.subarray(0, V));
    }
    const idx = scratchIndex;
    let n = V;
    if (this.topK > 0 && this.topK < V) {
      n = this.topK;
      topKInto(l, V, n, idx);
    } else {
      for (let i = 0; i < V; i++) idx[i] = i;
    }
    if (this.penalised || this.temperature !== 1 || n < V || Number.isNaN(sum)) {
      let m = -Infinity;
      for (let j = 0; j < n; j++) if (l[idx[j]] > m) m = l[idx[j]];
      if (m === -Infinity) return idx[0]; // every candidate penalised away: nothing to weigh
      z = 0;
      for (let j = 0; j < n; j++) z += p[idx[j]] = Math.exp((l[idx[j]] - m) / this.temperature);
    }
    if (this.topP < 1) {
      n = this.nucleus(idx, n, p, z);
      z = 0;
      for (let j = 0; j < n; j++) z += p[idx[j]];
    }
    let u = this.rng.next() * z;
    for (let j = 0; j < n; j++) {
      u -= p[idx[j]];
      if (u < 0) return idx[j];
    }
    return idx[n - 1]; // u ran past the end by rounding
  }

  /**
   * Reorders idx[0, n) so that its first m entries are the nucleus (in no particular order) and
   * returns m. Only candidates with probability ≥ (1 − topP)/n can be in it: together the others hold
   * less than 1 − topP. A selection by mass then finds the smallest head of the (probability desc,
   * index asc) order reaching topP in expected linear time; a full sort of a flat 100k-token
   * distribution would cost milliseconds per token.
   */
  private nucleus(idx: Int32Array, n: number, p: Float64Array, z: number): number {
    const swap = (i: number, j: number): void => {
      const t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
    };
    const before = (a: number, b: number): boolean => p[a] > p[b] || (p[a] === p[b] && a < b);
    const floor = ((1 - this.topP) / n) * z;
    let hi = 0;
    for (let j = 0; j < n; j++) if (p[idx[j]] >= floor) swap(j, hi++);
    // Invariant: idx[0, lo) is in the nucleus, idx[hi, …) is not, and `need` is the mass still missing.
    let lo = 0;
    let need = this.topP * z;
    while (hi - lo > 1) {
      swap((lo + hi) >> 1, hi - 1);
      const pivot = idx[hi - 1];
      let m = lo;
      let mass = 0;
      for (let j = lo; j < hi - 1; j++) {
        if (before(idx[j], pivot)) {
          swap(j, m);
          mass += p[idx[m]];
          m++;
        }
      }
      swap(m, hi - 1);
      if (mass >= need) {
        hi = m;
      } else if (mass + p[pivot] >= need) {
        return m + 1;
      } else {
        need -= mass + p[pivot];
        lo = m + 1;
      }
    }
    return Math.max(hi, 1);
  }
}
