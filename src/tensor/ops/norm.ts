// RMSNorm: y = x / sqrt(mean(x²) + eps) · w, over the last dimension.
import { Tensor, empty, gradOf, opError, record, sameDType } from '../tensor.js';

export function rmsnorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  sameDType('rmsnorm', x, weight);
  const dim = x.shape[x.rank - 1];
  if (weight.rank !== 1 || weight.shape[0] !== dim) throw opError('rmsnorm', 'weight must be 1-D and match the last dimension', x, weight);
  if (!(eps > 0)) throw opError('rmsnorm', `eps must be positive, got ${eps}`, x);
  const rows = x.size / dim;
  const out = empty(x.shape, x.dtype);
  const rstd = new Float64Array(rows); // kept for backward: one number a row
  const xd = x.data, w = weight.data, o = out.data;
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += xd[base + i] * xd[base + i];
    const s = 1 / Math.sqrt(ss / dim + eps);
    rstd[r] = s;
    for (let i = 0; i < dim; i++) o[base + i] = xd[base + i] * s * w[i];
  }
  return record([x, weight], out, (g) => {
    const gx = x.requiresGrad ? gradOf(x) : null;
    const gw = weight.requiresGrad ? gradOf(weight) : null;
    for (let r = 0; r < rows; r++) {
      const base = r * dim;
      const s = rstd[r];
      if (gw !== null) for (let i = 0; i < dim; i++) gw[i] += g[base + i] * xd[base + i] * s;
      if (gx !== null) {
        // dx = s·(g⊙w) − x·s³·mean(g⊙w⊙x)
        let dot = 0;
        for (let i = 0; i < dim; i++) dot += g[base + i] * w[i] * xd[base + i];
        const c = (dot / dim) * s * s * s;
        for (let i = 0; i < dim; i++) gx[base + i] += g[base + i] * w[i] * s - xd[base + i] * c;
      }
    }
  });
}
