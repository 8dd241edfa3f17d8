// Plain TypeScript kernels: the definition every faster backend is tested against, and the path
// float64 tensors (used by gradient checks) always take.
import type { AdamWArgs, Backend, GemmArgs } from './backend.js';

export function gemmReference(g: GemmArgs): void {
  const { m, n, k, a, b, c, lda, ldb, ldc, transA, transB, alpha, beta } = g;
  const sa = transA ? 1 : lda; // step between rows of op(A)
  const ka = transA ? lda : 1; // step along k in op(A)
  const kb = transB ? 1 : ldb; // step along k in op(B)
  const nb = transB ? ldb : 1; // step along n in op(B)
  for (let bi = 0; bi < g.batch; bi++) {
    const aOff = g.aOff + bi * g.strideA;
    const bOff = g.bOff + bi * g.strideB;
    const cOff = g.cOff + bi * g.strideC;
    for (let i = 0; i < m; i++) {
      const crow = cOff + i * ldc;
      if (beta === 0) for (let j = 0; j < n; j++) c[crow + j] = 0;
      else if (beta !== 1) for (let j = 0; j < n; j++) c[crow + j] *= beta;
      for (let p = 0; p < k; p++) {
        const av = alpha * a[aOff + i * sa + p * ka];
        if (av === 0) continue;
        const brow = bOff + p * kb;
        for (let j = 0; j < n; j++) c[crow + j] += av * b[brow + j * nb];
      }
    }
  }
}

export function adamwReference(o: AdamWArgs): void {
  const { param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step, gradScale } = o;
  const bc1 = 1 - Math.pow(beta1, step);
  const bc2 = 1 - Math.pow(beta2, step);
  const decay = 1 - lr * weightDecay;
  for (let i = 0; i < n; i++) {
    const g = grad[i] * gradScale;
    const mi = beta1 * m[i] + (1 - beta1) * g;
    const vi = beta2 * v[i] + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
  }
}

export const referenceBackend: Backend = {
  name: 'reference',
  threads: 1,
  gemm: gemmReference,
  adamw: adamwReference,
};
