// The GRPO objective (DeepSeekMath, DeepSeek-R1) and its published refinements, as one fused op.
//
// For each prompt, G completions are sampled and scored; a completion's advantage is its reward
// relative to its group, shared by all of its tokens. Per token:
//   ρ = π_θ / π_old,   surrogate = min(ρ·Â, clip(ρ, 1−ε_low, 1+ε_high)·Â),
//   KL (k3) = π_ref/π_θ − log(π_ref/π_θ) − 1,   objective = surrogate − β·KL,
// and the loss is minus the objective aggregated over tokens in one of three ways (see Aggregation).

import type { Tensor } from '../../tensor/index.js';
import { empty, gradOf, opError, record } from '../../tensor/index.js';

/**
 * - 'sequence': mean over completions of the per-completion token mean (the paper's 1/G Σ 1/|o_i| Σ_t).
 * - 'token': sum over all tokens / total tokens (DAPO): long completions weigh by their length.
 * - 'constant': sum over all tokens / (completions × a constant length) (Dr. GRPO): no length bias.
 */
export type Aggregation = 'sequence' | 'token' | 'constant';

export interface AdvantageOptions {
  /** Divide by the group's standard deviation (the paper). Dr. GRPO turns this off. */
  scaleByStd?: boolean;
  /** Added to the std before dividing. */
  eps?: number;
}

/**
 * Group-normalised advantages: rewards [groups·G] in group order → Â_i = (r_i − mean) / (std + eps),
 * with the sample standard deviation. A group whose rewards are all equal gets all-zero advantages.
 */
export function groupAdvantages(rewards: ArrayLike<number>, G: number, opts: AdvantageOptions = {}): Float64Array {
  if (!Number.isInteger(G) || G < 2) {
    throw new Error(`GRPO needs at least 2 samples per prompt (group size G = ${G}): with one sample there is no group to compare against, so every advantage is zero`);
  }
  if (rewards.length % G !== 0) throw new Error(`groupAdvantages: ${rewards.length} rewards are not a whole number of groups of ${G}`);
  const scaleByStd = opts.scaleByStd ?? true;
  const eps = opts.eps ?? 1e-4;
  const out = new Float64Array(rewards.length);
  for (let g = 0; g < rewards.length; g += G) {
    let mean = 0;
    for (let i = 0; i < G; i++) {
      const r = rewards[g + i];
      if (!Number.isFinite(r)) throw new Error(`groupAdvantages: reward ${r} at index ${g + i} is not a finite number`);
      mean += r / G;
    }
    let ss = 0;
    for (let i = 0; i < G; i++) ss += (rewards[g + i] - mean) ** 2;
    const std = Math.sqrt(ss / (G - 1));
    for (let i = 0; i < G; i++) {
      const centred = rewards[g + i] - mean;
      out[g + i] = std === 0 ? 0 : scaleByStd ? centred / (std + eps) : centred;
    }
  }
  return out;
}

/** Indices of the groups whose rewards are not all equal (DAPO's dynamic sampling keeps only these). */
export function informativeGroups(rewards: ArrayLike<number>, G: number): number[] {
  const keep: number[] = [];
  for (let g = 0; g * G < rewards.length; g++) {
    const first = rewards[g * G];
    for (let i = 1; i < G; i++) {
      if (rewards[g * G + i] !== first) {
        keep.push(g);
        break;
      }
    }
  }
  return keep;
}

export interface GrpoLossInputs {
  /** log π_θ of every completion token [N] (differentiable: from tokenLogProbs). */
  logp: Tensor;
  /** log π_old of the same tokens (from sampling time, or the policy before the first of μ updates). */
  oldLogp: ArrayLike<number>;
  /** log π_ref (frozen reference), or null when β = 0. */
  refLogp: ArrayLike<number> | null;
  /** Advantage of the completion each token belongs to, per token [N]. */
  advantages: ArrayLike<number>;
  /** Token counts of the completions, in order; they add up to N. */
  lengths: readonly number[];
  epsLow: number;
  /** ε_high for clip-higher (DAPO); defaults to epsLow. */
  epsHigh?: number;
  beta: number;
  aggregation: Aggregation;
  /** The constant length of the 'constant' aggregation (e.g. the maximum completion length). */
  constantLength?: number;
}

export interface GrpoLossStats {
  /** Mean k3 KL per token (0 when β = 0 or no reference). */
  kl: number;
  /** Fraction of tokens whose ratio was clipped (the clipped branch won the min). */
  clipFraction: number;
  /** Mean probability ratio π_θ/π_old. */
  meanRatio: number;
}

/** Returns the scalar loss (−objective) and statistics. Differentiable in `logp`. */
export function grpoLoss(x: GrpoLossInputs): { loss: Tensor; stats: GrpoLossStats } {
  const op = 'grpoLoss';
  const N = x.logp.size;
  if (x.logp.rank !== 1) throw opError(op, 'logp must be 1-D [tokens]', x.logp);
  if (x.oldLogp.length !== N || x.advantages.length !== N || (x.refLogp !== null && x.refLogp.length !== N)) {
    throw opError(op, `oldLogp (${x.oldLogp.length}), advantages (${x.advantages.length}) and refLogp (${x.refLogp?.length ?? 'none'}) must each have one value per token (${N})`, x.logp);
  }
  if (x.lengths.reduce((s, n) => s + n, 0) !== N) throw opError(op, `completion lengths add up to ${x.lengths.reduce((s, n) => s + n, 0)}, not ${N}`, x.logp);
  if (x.beta > 0 && x.refLogp === null) throw new Error(`${op}: β = ${x.beta} needs reference log-probs`);
  if (!(x.epsLow >= 0)) throw new Error(`${op}: epsLow must be >= 0, got ${x.epsLow}`);
  const epsHigh = x.epsHigh ?? x.epsLow;
  if (x.aggregation === 'constant' && !(x.constantLength !== undefined && x.constantLength > 0)) {
    throw new Error(`${op}: the 'constant' aggregation needs a positive constantLength`);
  }
  const lp = x.logp.data;
  // Each token's weight in the aggregate, so the objective is Σ_t weight_t · o_t.
  const weight = new Float64Array(N);
  const S = x.lengths.length;
  let at = 0;
  for (const len of x.lengths) {
    const w = x.aggregation === 'sequence' ? 1 / (S * Math.max(len, 1)) : x.aggregation === 'token' ? 1 / Math.max(N, 1) : 1 / (S * x.constantLength!);
    for (let i = 0; i < len; i++) weight[at + i] = w;
    at += len;
  }
  const dobj = new Float64Array(N); // d objective_t / d logp_t
  let objective = 0, klSum = 0, clipped = 0, ratioSum = 0;
  for (let t = 0; t < N; t++) {
    const A = x.advantages[t];
    const ratio = Math.exp(lp[t] - x.oldLogp[t]);
    const clippedRatio = Math.min(Math.max(ratio, 1 - x.epsLow), 1 + epsHigh);
    const unclippedTerm = ratio * A, clippedTerm = clippedRatio * A;
    let surrogate: number, dSurrogate: number;
    if (unclippedTerm <= clippedTerm) {
      surrogate = unclippedTerm;
      dSurrogate = ratio * A;
    } else {
      surrogate = clippedTerm;
      dSurrogate = 0; // the clipped branch is flat in θ
      clipped++;
    }
    let kl = 0, dKl = 0;
    if (x.beta > 0 && x.refLogp !== null) {
      const d = x.refLogp[t] - lp[t];
      kl = Math.exp(d) - d - 1;
      dKl = 1 - Math.exp(d);
    }
    objective += weight[t] * (surrogate - x.beta * kl);
    dobj[t] = weight[t] * (dSurrogate - x.beta * dKl);
    klSum += kl;
    ratioSum += ratio;
  }
  const loss = empty([], x.logp.dtype);
  loss.data[0] = -objective;
  record('grpoLoss', [x.logp], loss, (g) => {
    const gl = gradOf(x.logp);
    for (let t = 0; t < N; t++) gl[t] -= g[0] * dobj[t];
  });
  return { loss, stats: { kl: N > 0 ? klSum / N : 0, clipFraction: N > 0 ? clipped / N : 0, meanRatio: N > 0 ? ratioSum / N : 1 } };
}
