// AdamW with decoupled weight decay, global-norm gradient clipping folded into the update kernel.
import { backend } from '../kernels/backend.js';
import { referenceBackend } from '../kernels/reference.js';
import type { TrainableParam } from '../model/params.js';
import { Tensor, gradOf, untracked, zeros } from '../tensor/tensor.js';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this value (0 = off). */
  gradClip: number;
}

export const defaultAdamW: AdamWConfig = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1.0 };

/** What AdamW updates: a tensor and its weight-decay flag (a model's `trainableParams()`). */
export type OptimParam = TrainableParam;

export class AdamW {
  readonly params: OptimParam[];
  readonly m: Tensor[];
  readonly v: Tensor[];
  step = 0;

  constructor(params: OptimParam[], public config: AdamWConfig = defaultAdamW) {
    this.params = params;
    this.m = untracked(() => params.map((p) => zeros(p.tensor.shape, p.tensor.dtype)));
    this.v = untracked(() => params.map((p) => zeros(p.tensor.shape, p.tensor.dtype)));
    // Every parameter gets a (zero) gradient now, so a parameter no token has reached yet (an unused
    // expert) is still updated — its moments decay and weight decay applies — exactly as after a resume.
    for (const p of params) gradOf(p.tensor);
  }

  /** √Σ g² over every parameter's gradient. */
  gradNorm(): number {
    let ss = 0;
    for (const { tensor } of this.params) {
      const be = tensor.dtype === 'f64' ? referenceBackend : backend();
      ss += be.sumSquares(gradOf(tensor), tensor.size);
    }
    return Math.sqrt(ss);
  }

  /**
   * Applies one update with learning rate `lr` (defaults to the config's) and returns the gradient
   * norm before clipping. `gradScale` multiplies gradients first (e.g. 1/accumulation steps).
   */
  update(lr = this.config.lr, gradScale = 1): number {
    const norm = this.gradNorm() * Math.abs(gradScale);
    if (!Number.isFinite(norm)) throw new Error(`AdamW: gradient norm is ${norm}; refusing to update (a NaN or Inf reached the gradients)`);
    const clip = this.config.gradClip > 0 && norm > this.config.gradClip ? this.config.gradClip / norm : 1;
    this.step++;
    this.params.forEach(({ tensor, decay }, i) => {
      const be = tensor.dtype === 'f64' ? referenceBackend : backend();
      be.adamw({
        param: tensor.data, grad: gradOf(tensor), m: this.m[i].data, v: this.v[i].data, n: tensor.size,
        lr, beta1: this.config.beta1, beta2: this.config.beta2, eps: this.config.eps,
        weightDecay: decay ? this.config.weightDecay : 0, step: this.step, gradScale: gradScale * clip,
      });
    });
    return norm;
  }

  zeroGrad(): void {
    for (const { tensor } of this.params) tensor.grad?.data.fill(0);
  }
}

/** Linear warmup then cosine decay to `minRatio`·peak at `total` steps. */
export function cosineSchedule(step: number, peak: number, warmup: number, total: number, minRatio = 0.1): number {
  if (step < warmup) return (peak * (step + 1)) / warmup;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
