// Softmax family over the last dimension, computed with the max subtracted so large logits stay finite.
import { Tensor, empty, gradOf, record } from '../tensor.js';
import { logSumExp, softmaxRow } from '../../kernels/reference.js';

export { logSumExp, softmaxRow } from '../../kernels/reference.js';

export function softmax(x: Tensor): Tensor {
  const n = x.shape[x.rank - 1];
  const rows = x.size / n;
  const out = empty(x.shape, x.dtype);
  const xd = x.data, y = out.data;
  for (let r = 0; r < rows; r++) softmaxRow(xd, y, r * n, n);
  return record('softmax', [x], out, (g) => {
    const gx = gradOf(x);
    for (let r = 0; r < rows; r++) {
      const base = r * n;
      let dot = 0;
      for (let i = 0; i < n; i++) dot += g[base + i] * y[base + i];
      for (let i = 0; i < n; i++) gx[base + i] += y[base + i] * (g[base + i] - dot);
    }
  });
}

export function logSoftmax(x: Tensor): Tensor {
  const n = x.shape[x.rank - 1];
  const rows = x.size / n;
  const out = empty(x.shape, x.dtype);
  const xd = x.data, y = out.data;
  for (let r = 0; r < rows; r++) {
    const base = r * n;
    const lse = logSumExp(xd, base, n);
    for (let i = 0; i < n; i++) y[base + i] = xd[base + i] - lse;
  }
  return record('logSoftmax', [x], out, (g) => {
    const gx = gradOf(x);
    for (let r = 0; r < rows; r++) {
      const base = r * n;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += g[base + i];
      for (let i = 0; i < n; i++) gx[base + i] += g[base + i] - Math.exp(y[base + i]) * sum;
    }
  });
}
