// One optimizer step over one or more micro-batches: the unit every trainer (pretraining, SFT, and the
// benchmark against PyTorch) repeats. GRPO has its own loss but the same update and bias rule.
import type { CausalLM } from '../model/model.js';
import * as T from '../tensor/index.js';
import type { AdamW } from './optim.js';

/** Token ids and next-token targets, [B, T] row-major; targets may hold IGNORE_INDEX. */
export interface Batch {
  ids: Int32Array;
  targets: Int32Array;
  B: number;
  T: number;
}

export interface StepOptions {
  lr: number;
  /** Weight of the MTP loss (0 or no MTP module: off). */
  mtpWeight?: number;
  /** Weight α of the sequence-wise balance loss (0: off). */
  balanceAlpha?: number;
  /** Speed γ of the auxiliary-loss-free bias update (0: off). */
  biasUpdateSpeed?: number;
}

export interface StepStats {
  /** Mean total loss over the micro-batches (what was minimised). */
  loss: number;
  /** Mean next-token cross-entropy. */
  ce: number;
  mtpCe: number | null;
  balance: number | null;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Tokens with a target (not ignored). */
  tokens: number;
  /** Per MoE layer: tokens routed to each expert during this step. */
  expertLoad: number[][];
}

export function countTargets(b: Batch, ignore = T.IGNORE_INDEX): number {
  let n = 0;
  for (let i = 0; i < b.targets.length; i++) if (b.targets[i] !== ignore) n++;
  return n;
}

/**
 * Accumulates gradients over `micro`, applies one AdamW update, then nudges every MoE router's
 * correction bias toward balanced load. Each micro-batch weighs by its share of the step's target
 * tokens, so the step minimises the mean loss per target token however the micro-batches are filled.
 */
export function trainStep(model: CausalLM, opt: AdamW, micro: readonly Batch[], o: StepOptions): StepStats {
  if (micro.length === 0) throw new Error('trainStep: no micro-batches');
  const counts = micro.map((b) => countTargets(b));
  const tokens = counts.reduce((s, n) => s + n, 0);
  if (tokens === 0) throw new Error('trainStep: no micro-batch has a target token');
  opt.zeroGrad();
  let loss = 0, ce = 0, mtp = 0, bal = 0;
  let hasMtp = false, hasBal = false;
  micro.forEach((b, i) => {
    const w = counts[i] / tokens;
    if (w === 0) return;
    const r = T.tidy(() => {
      const out = model.loss(b.ids, b.targets, b.B, b.T, { mtpWeight: o.mtpWeight, balanceAlpha: o.balanceAlpha });
      const value = out.loss.item();
      if (!Number.isFinite(value)) throw new Error(`trainStep: loss is ${value}`);
      T.backward(out.loss, w);
      return { value, ce: out.ce, mtpCe: out.mtpCe, balance: out.balance };
    });
    loss += r.value * w;
    ce += r.ce * w;
    if (r.mtpCe !== null) { hasMtp = true; mtp += r.mtpCe * w; }
    if (r.balance !== null) { hasBal = true; bal += r.balance * w; }
  });
  const gradNorm = opt.update(o.lr);
  const expertLoad = model.moeLayers().map((m) => {
    const load = Array.from(m.pendingLoad);
    m.updateBias(o.biasUpdateSpeed ?? 0);
    return load;
  });
  return { loss, ce, mtpCe: hasMtp ? mtp : null, balance: hasBal ? bal : null, gradNorm, tokens, expertLoad };
}
