// Fused causal attention: scores, mask, softmax and the weighted sum in one op with a hand-written
// backward. Tensors stay in the projection layout [B, T, H, d]; each (batch, head) slice is addressed
// with a row stride, so no transposes are materialised.
import { gemmArgs } from '../../kernels/backend.js';
import { Tensor, empty, gradOf, kernels, opError, record, sameDType } from '../tensor.js';
import { softmaxRow } from './softmax.js';

export interface AttentionOptions {
  /** Multiplies q·k (e.g. 1/sqrt(d), times YaRN's mscale² in DeepSeek-V3). */
  scale: number;
  /** Query i sees keys j <= i + (S - T): with S > T the queries are the last T positions. */
  causal: boolean;
}

/**
 * q [B, T, H, dk], k [B, S, Hk, dk], v [B, S, Hk, dv] → [B, T, H, dv].
 * Hk may divide H (grouped-query attention: head h reads kv head h / (H / Hk)).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Tensor {
  const op = 'attention';
  sameDType(op, q, k, v);
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) throw opError(op, 'q, k, v must be [B, T, H, d]', q, k, v);
  const [B, T, H, dk] = q.shape;
  const [Bk, S, Hk, dk2] = k.shape;
  const dv = v.shape[3];
  if (Bk !== B || v.shape[0] !== B || v.shape[1] !== S || v.shape[2] !== Hk) throw opError(op, 'k and v must agree in batch, length and heads', q, k, v);
  if (dk2 !== dk) throw opError(op, `q and k head widths differ (${dk} vs ${dk2})`, q, k);
  if (H % Hk !== 0) throw opError(op, `${H} query heads are not a multiple of ${Hk} kv heads`, q, k);
  if (opts.causal && S < T) throw opError(op, 'causal attention needs at least as many keys as queries', q, k);
  const group = H / Hk;
  const offset = S - T;
  const be = kernels(q);
  const out = empty([B, T, H, dv], q.dtype);
  const probs = empty([B, H, T, S], q.dtype);
  const P = probs.data, Q = q.data, K = k.data, V = v.data, O = out.data;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / group);
      const pOff = (b * H + h) * T * S;
      const qOff = b * T * H * dk + h * dk;
      const kOff = b * S * Hk * dk + kh * dk;
      const vOff = b * S * Hk * dv + kh * dv;
      be.gemm(gemmArgs({ m: T, n: S, k: dk, a: Q, aOff: qOff, lda: H * dk, b: K, bOff: kOff, ldb: Hk * dk, transB: true, c: P, cOff: pOff, ldc: S, alpha: opts.scale }));
      for (let t = 0; t < T; t++) {
        // Causal rows normalise over their visible prefix only; the masked tail is exactly zero, as
        // exp(-inf) would make it, without paying for the exponentials.
        const row = pOff + t * S;
        const visible = opts.causal ? t + offset + 1 : S;
        softmaxRow(P, P, row, visible);
        if (visible < S) P.fill(0, row + visible, row + S);
      }
      be.gemm(gemmArgs({ m: T, n: dv, k: S, a: P, aOff: pOff, lda: S, b: V, bOff: vOff, ldb: Hk * dv, c: O, cOff: b * T * H * dv + h * dv, ldc: H * dv }));
    }
  }
  const recorded = record([q, k, v], out, (g) => {
    const gq = q.requiresGrad ? gradOf(q) : null;
    const gk = k.requiresGrad ? gradOf(k) : null;
    const gv = v.requiresGrad ? gradOf(v) : null;
    const scratch = empty([T, S], q.dtype);
    const dP = scratch.data;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const kh = Math.floor(h / group);
        const pOff = (b * H + h) * T * S;
        const qOff = b * T * H * dk + h * dk;
        const kOff = b * S * Hk * dk + kh * dk;
        const vOff = b * S * Hk * dv + kh * dv;
        const oOff = b * T * H * dv + h * dv;
        if (gv !== null) {
          be.gemm(gemmArgs({ m: S, n: dv, k: T, a: P, aOff: pOff, lda: S, transA: true, b: g, bOff: oOff, ldb: H * dv, c: gv, cOff: vOff, ldc: Hk * dv, beta: 1 }));
        }
        if (gq === null && gk === null) continue;
        be.gemm(gemmArgs({ m: T, n: S, k: dv, a: g, aOff: oOff, lda: H * dv, b: V, bOff: vOff, ldb: Hk * dv, transB: true, c: dP, ldc: S }));
        for (let t = 0; t < T; t++) {
          const row = t * S;
          const visible = opts.causal ? t + offset + 1 : S; // P is zero past it, so dP is too
          let dot = 0;
          for (let s = 0; s < visible; s++) dot += dP[row + s] * P[pOff + row + s];
          for (let s = 0; s < visible; s++) dP[row + s] = P[pOff + row + s] * (dP[row + s] - dot);
          if (visible < S) dP.fill(0, row + visible, row + S);
        }
        if (gq !== null) {
          be.gemm(gemmArgs({ m: T, n: dk, k: S, a: dP, lda: S, b: K, bOff: kOff, ldb: Hk * dk, c: gq, cOff: qOff, ldc: H * dk, alpha: opts.scale, beta: 1 }));
        }
        if (gk !== null) {
          be.gemm(gemmArgs({ m: S, n: dk, k: T, a: dP, lda: S, transA: true, b: Q, bOff: qOff, ldb: H * dk, c: gk, cOff: kOff, ldc: Hk * dk, alpha: opts.scale, beta: 1 }));
        }
      }
    }
    scratch.dispose();
  });
  if (!recorded.requiresGrad) probs.dispose();
  return recorded;
}
