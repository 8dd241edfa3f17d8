// Finite-difference gradient checking, in float64: the test every differentiable op and the whole
// model must pass.
import { Tensor, backward, noGrad, tidy } from './tensor.js';

export interface GradcheckOptions {
  /** Central-difference step. */
  eps?: number;
  /** Check at most this many elements per input (spread evenly); all when undefined. */
  samplesPerInput?: number;
}

export interface GradcheckResult {
  /** Largest |analytic − numeric| / max(1, |numeric|, |analytic|) seen, with where it was. */
  maxError: number;
  worst: { input: number; name: string | undefined; index: number; analytic: number; numeric: number };
  checked: number;
}

/**
 * `loss` must build a scalar from `inputs` (float64 tensors, modified in place between calls).
 * Returns the worst disagreement between back-propagated and numeric gradients.
 */
export function gradcheck(loss: () => Tensor, inputs: readonly Tensor[], opts: GradcheckOptions = {}): GradcheckResult {
  const eps = opts.eps ?? 1e-6;
  for (const t of inputs) {
    if (t.dtype !== 'f64') throw new Error(`gradcheck: input ${t.name ?? ''} must be float64`);
    t.requiresGrad = true;
    t.grad?.dispose();
    t.grad = null;
  }
  tidy(() => backward(loss()));
  const analytic = inputs.map((t) => (t.grad === null ? new Float64Array(t.size) : Float64Array.from(t.grad.data)));
  const value = (): number => noGrad(() => tidy(() => loss().item()));
  const result: GradcheckResult = { maxError: 0, worst: { input: -1, name: undefined, index: -1, analytic: 0, numeric: 0 }, checked: 0 };
  inputs.forEach((t, n) => {
    const d = t.data;
    const count = opts.samplesPerInput === undefined ? t.size : Math.min(t.size, opts.samplesPerInput);
    for (let s = 0; s < count; s++) {
      const i = count === t.size ? s : Math.floor((s * t.size) / count + (t.size / count) / 2);
      const orig = d[i];
      d[i] = orig + eps;
      const up = value();
      d[i] = orig - eps;
      const down = value();
      d[i] = orig;
      const numeric = (up - down) / (2 * eps);
      const a = analytic[n][i];
      const err = Math.abs(a - numeric) / Math.max(1, Math.abs(numeric), Math.abs(a));
      result.checked++;
      if (err > result.maxError || result.worst.input === -1) {
        if (err >= result.maxError) result.maxError = err;
        result.worst = { input: n, name: t.name, index: i, analytic: a, numeric };
      }
    }
  });
  for (const t of inputs) {
    t.grad?.dispose();
    t.grad = null;
  }
  return result;
}
