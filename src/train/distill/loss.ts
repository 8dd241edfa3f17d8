// Logit-level knowledge distillation losses, as one fused op over the student's logits.
//
// Per response token, with p_S = softmax(z_S / τ) and p_T = softmax(z_T / τ):
//   forward KL  KL(p_T ‖ p_S) = Σ p_T (log p_T − log p_S)        Hinton's KD: mode-covering
//   reverse KL  KL(p_S ‖ p_T) = Σ p_S (log p_S − log p_T)        MiniLLM: mode-seeking
//   JSD(β)      β·KL(p_T ‖ M) + (1−β)·KL(p_S ‖ M),  M = β·p_T + (1−β)·p_S   (GKD)
// JSD(β) vanishes at β = 0 and β = 1 (M becomes one of the two); as in GKD's reference
// implementation (TRL), β = 0 means forward KL and β = 1 reverse KL there.
// The divergence is scaled by τ² (so its gradients keep their size as τ changes, Hinton et al.) and
// averaged over the rows whose mask is set. `distillLoss` mixes it with the SFT cross-entropy:
//   loss = α·CE + (1 − α)·τ²·D.
//
// Gradients, per row, in s = z_S / τ (then ÷ τ for z_S):
//   forward:  ∂/∂s_j = p_S,j − p_T,j
//   reverse and JSD: ∂/∂s_j = p_S,j (g_j − Σ_k p_S,k g_k), with g = log p_S − log p_T (reverse) or
//   g = (1−β)(log p_S − log M) (JSD: the terms through M cancel to that).
// The teacher is a constant: no gradient flows into its logits.
import type { Tensor } from '../../tensor/index.js';
import * as T from '../../tensor/index.js';
import { empty, gradOf, opError, record } from '../../tensor/index.js';

export type Divergence = 'forward' | 'reverse' | 'jsd';
export const DIVERGENCES: readonly Divergence[] = ['forward', 'reverse', 'jsd'];

export interface KdOptions {
  divergence: Divergence;
  /** JSD's β in [0, 1] (0: forward KL, 1: reverse KL). Ignored by the KLs. */
  beta?: number;
  /** Softmax temperature τ > 0 of both distributions (default 1). */
  temperature?: number;
}

/** log-softmax of `x[base .. base+n) / tau` into `out[0..n)`. */
function logSoftmaxRow(x: ArrayLike<number>, base: number, n: number, tau: number, out: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, x[base + i] / tau);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(x[base + i] / tau - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < n; i++) out[i] = x[base + i] / tau - lse;
}

/** log(a·e^x + b·e^y) for a, b > 0, without overflow. */
function logMix(logA: number, x: number, logB: number, y: number): number {
  const u = logA + x, v = logB + y;
  const m = Math.max(u, v);
  return m === -Infinity ? -Infinity : m + Math.log(Math.exp(u - m) + Math.exp(v - m));
}

/**
 * One row: the divergence, and (when `grad` is given) its gradient in s = z_S/τ written to grad.
 * ls, lt: log p_S, log p_T of the row.
 */
function rowDivergence(ls: Float64Array, lt: Float64Array, V: number, kind: Divergence, beta: number, grad: Float64Array | null): number {
  if (kind === 'jsd' && beta === 0) kind = 'forward';
  if (kind === 'jsd' && beta === 1) kind = 'reverse';
  let d = 0;
  if (kind === 'forward') {
    for (let i = 0; i < V; i++) {
      const pt = Math.exp(lt[i]);
      if (pt > 0) d += pt * (lt[i] - ls[i]);
      if (grad) grad[i] = Math.exp(ls[i]) - pt;
    }
    return d;
  }
  // Reverse KL and JSD share the softmax chain rule through g.
  const g = grad ?? new Float64Array(V);
  if (kind === 'reverse') {
    for (let i = 0; i < V; i++) {
      const ps = Math.exp(ls[i]);
      g[i] = ls[i] - lt[i];
      if (ps > 0) d += ps * g[i];
    }
  } else {
    const la = Math.log(beta), lb = Math.log(1 - beta);
    for (let i = 0; i < V; i++) {
      const ps = Math.exp(ls[i]), pt = Math.exp(lt[i]);
      const lm = logMix(la, lt[i], lb, ls[i]);
      if (pt > 0) d += beta * pt * (lt[i] - lm);
      if (ps > 0) d += (1 - beta) * ps * (ls[i] - lm);
      g[i] = (1 - beta) * (ls[i] - lm);
    }
  }
  if (grad) {
    let mean = 0;
    for (let i = 0; i < V; i++) mean += Math.exp(ls[i]) * g[i];
    for (let i = 0; i < V; i++) grad[i] = Math.exp(ls[i]) * (g[i] - mean);
  }
  return d;
}

function checkKdOptions(op: string, o: KdOptions): { tau: number; beta: number } {
  const tau = o.temperature ?? 1;
  const beta = o.beta ?? 0.5;
  if (!DIVERGENCES.includes(o.divergence)) throw new Error(`${op}: divergence must be one of ${DIVERGENCES.join(', ')}, got ${JSON.stringify(o.divergence)}`);
  if (!(tau > 0 && Number.isFinite(tau))) throw new Error(`${op}: temperature must be > 0, got ${tau}`);
  if (!(beta >= 0 && beta <= 1)) throw new Error(`${op}: beta must be in [0, 1], got ${beta}`);
  return { tau, beta };
}

/**
 * τ²·D(p_T, p_S) averaged over the rows whose `mask` is nonzero (all rows without a mask): a
 * scalar, differentiable in `student` [N, V]. `teacher` holds the teacher's logits for the same
 * rows, N·V values row-major. No masked row: 0 with a zero gradient.
 */
export function kdLoss(student: Tensor, teacher: ArrayLike<number>, o: KdOptions, mask?: ArrayLike<number>): Tensor {
  const op = 'kdLoss';
  if (student.rank !== 2) throw opError(op, 'student logits must be [N, V]', student);
  const [N, V] = student.shape;
  if (teacher.length !== N * V) throw opError(op, `${teacher.length} teacher logits for ${N} rows of ${V} (the vocabularies must match)`, student);
  if (mask !== undefined && mask.length !== N) throw opError(op, `mask has ${mask.length} entries for ${N} rows`, student);
  const { tau, beta } = checkKdOptions(op, o);
  const on = (r: number) => mask === undefined || mask[r] !== 0;
  let count = 0;
  for (let r = 0; r < N; r++) if (on(r)) count++;
  const x = student.data;
  const ls = new Float64Array(V), lt = new Float64Array(V);
  let total = 0;
  for (let r = 0; r < N; r++) {
    if (!on(r)) continue;
    logSoftmaxRow(x, r * V, V, tau, ls);
    logSoftmaxRow(teacher, r * V, V, tau, lt);
    total += rowDivergence(ls, lt, V, o.divergence, beta, null);
  }
  const out = empty([], student.dtype);
  out.data[0] = count > 0 ? (tau * tau * total) / count : 0;
  if (!Number.isFinite(out.data[0])) throw opError(op, `the divergence is ${out.data[0]} (non-finite logits?)`, student);
  return record(op, [student], out, (g) => {
    if (count === 0) return;
    // τ² from the loss, 1/τ from s = z/τ.
    const s = (g[0] * tau) / count;
    const gx = gradOf(student);
    const grad = new Float64Array(V);
    for (let r = 0; r < N; r++) {
      if (!on(r)) continue;
      logSoftmaxRow(x, r * V, V, tau, ls);
      logSoftmaxRow(teacher, r * V, V, tau, lt);
      rowDivergence(ls, lt, V, o.divergence, beta, grad);
      for (let i = 0; i < V; i++) gx[r * V + i] += s * grad[i];
    }
  });
}

export interface DistillLossOptions extends KdOptions {
  /** Weight of the SFT cross-entropy; the divergence gets 1 − α. */
  alpha: number;
}

export interface DistillLoss {
  /** α·CE + (1 − α)·τ²·D, the value minimised. */
  loss: Tensor;
  /** Mean cross-entropy on the target tokens (at temperature 1). */
  ce: number;
  /** τ²·D, mean over the target tokens. */
  kd: number;
  /** Rows that counted (targets other than IGNORE_INDEX). */
  tokens: number;
}

/**
 * The distillation objective on rows of student logits [N, V] with their next-token `targets`
 * (IGNORE_INDEX: a prompt or padding row, left out of both terms: the loss is on response tokens
 * only) and the teacher's logits for the same rows.
 */
export function distillLoss(student: Tensor, teacher: ArrayLike<number>, targets: ArrayLike<number>, o: DistillLossOptions): DistillLoss {
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw new Error(`distillLoss: alpha must be in [0, 1], got ${o.alpha}`);
  const mask = Array.from(targets, (t) => (t === T.IGNORE_INDEX ? 0 : 1));
  const tokens = mask.reduce((s: number, m) => s + m, 0);
  const kd = kdLoss(student, teacher, o, mask);
  const kdValue = kd.item();
  // With α = 0 the cross-entropy is only reported (on-policy batches: the student's own tokens).
  if (o.alpha === 0) return { loss: kd, ce: T.noGrad(() => T.tidy(() => T.crossEntropy(student, targets).item())), kd: kdValue, tokens };
  const ce = T.crossEntropy(student, targets);
  const ceValue = ce.item();
  const loss = o.alpha === 1 ? ce : T.add(T.scale(ce, o.alpha), T.scale(kd, 1 - o.alpha));
  return { loss, ce: ceValue, kd: kdValue, tokens };
}
