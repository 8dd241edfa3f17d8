// RMSNorm: y = x / sqrt(mean(x²) + eps) · w, over the last dimension.
import { Tensor, empty, gradFor, gradOf, kernels, opError, record, sameDType } from '../tensor.js';

export function rmsnorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  sameDType('rmsnorm', x, weight);
  const dim = x.shape[x.rank - 1];
  if (weight.rank !== 1 || weight.shape[0] !== dim) throw opError('rmsnorm', 'weight must be 1-D and match the last dimension', x, weight);
  if (!(eps > 0)) throw opError('rmsnorm', `eps must be positive, got ${eps}`, x);
  const rows = x.size / dim;
  const out = empty(x.shape, x.dtype);
  const rstd = empty([rows], x.dtype); // kept for backward: one number a row
  const be = kernels(x);
  be.rmsnorm(x.data, weight.data, out.data, rstd.data, rows, dim, eps);
  // dx = s·(g⊙w) − x·s³·mean(g⊙w⊙x), dw = Σ_rows g⊙x·s (see the kernels).
  const recorded = record('rmsnorm', [x, weight], out, (g) => {
    const gx = x.requiresGrad ? gradFor(x) : null;
    be.rmsnormBackward(x.data, weight.data, rstd.data, g, gx?.data ?? null, weight.requiresGrad ? gradOf(weight) : null, rows, dim, gx?.fresh ?? false);
  });
  if (!recorded.requiresGrad) rstd.dispose();
  return recorded;
}
