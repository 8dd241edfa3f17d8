// Fused causal attention: scores, mask, softmax and the weighted sum in one op with a hand-written
// backward. Tensors stay in the projection layout [B, T, H, d]; each (batch, head) slice is addressed
// with a row stride, so no transposes are materialised.
import { gemmArgs } from '../../kernels/backend.js';
import { Tensor, empty, gradFor, kernels, opError, record, sameDType } from '../tensor.js';

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
  const mask = opts.causal ? { period: T, offset } : null;
  const be = kernels(q);
  const out = empty([B, T, H, dv], q.dtype);
  const probs = empty([B, H, T, S], q.dtype);
  const P = probs.data, Q = q.data, K = k.data, V = v.data, O = out.data;
  // Each GEMM below covers, for one batch entry b and one j < group, the heads h = kh·group + j of
  // every kv head kh at once, as a strided batch: one call per (b, j) instead of one per head, big
  // enough to be split across threads. (Without GQA, group = 1 and that is every head of b.)
  const pOff = (b: number, j: number): number => (b * H + j) * T * S;
  const qOff = (b: number, j: number): number => b * T * H * dk + j * dk;
  const oOff = (b: number, j: number): number => b * T * H * dv + j * dv;
  const kOff = (b: number): number => b * S * Hk * dk;
  const vOff = (b: number): number => b * S * Hk * dv;
  const heads = { batch: Hk, strideP: group * T * S };
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < group; j++) {
      be.gemm(gemmArgs({
        m: T, n: S, k: dk, a: Q, aOff: qOff(b, j), lda: H * dk, b: K, bOff: kOff(b), ldb: Hk * dk, transB: true,
        c: P, cOff: pOff(b, j), ldc: S, alpha: opts.scale, batch: heads.batch, strideA: group * dk, strideB: dk, strideC: heads.strideP,
      }));
    }
  }
  // Causal rows normalise over their visible prefix only; the masked tail is exactly zero.
  be.softmaxRows(P, B * H * T, S, mask);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < group; j++) {
      be.gemm(gemmArgs({
        m: T, n: dv, k: S, a: P, aOff: pOff(b, j), lda: S, b: V, bOff: vOff(b), ldb: Hk * dv,
        c: O, cOff: oOff(b, j), ldc: H * dv, batch: heads.batch, strideA: heads.strideP, strideB: dv, strideC: group * dv,
      }));
    }
  }
  const recorded = record('attention', [q, k, v], out, (g) => {
    // Each gradient is fetched right before its first write: with q, k or v the same tensor, the later
    // ones then add to what the earlier wrote. A fresh buffer takes beta = 0 on the first (b, j) that
    // covers each part of it: every j for gq, j = 0 for gk and gv (heads of one kv head add into them
    // one j after another, never concurrently).
    const betaFor = (fresh: boolean, j: number): number => (fresh && j === 0 ? 0 : 1);
    if (v.requiresGrad) {
      const { data: gv, fresh } = gradFor(v);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < group; j++) {
          be.gemm(gemmArgs({
            m: S, n: dv, k: T, a: P, aOff: pOff(b, j), lda: S, transA: true, b: g, bOff: oOff(b, j), ldb: H * dv,
            c: gv, cOff: vOff(b), ldc: Hk * dv, beta: betaFor(fresh, j), batch: heads.batch, strideA: heads.strideP, strideB: group * dv, strideC: dv,
          }));
        }
      }
    }
    if (!q.requiresGrad && !k.requiresGrad) return;
    const scratch = empty([B, H, T, S], q.dtype);
    const dP = scratch.data;
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < group; j++) {
        be.gemm(gemmArgs({
          m: T, n: S, k: dv, a: g, aOff: oOff(b, j), lda: H * dv, b: V, bOff: vOff(b), ldb: Hk * dv, transB: true,
          c: dP, cOff: pOff(b, j), ldc: S, batch: heads.batch, strideA: group * dv, strideB: dv, strideC: heads.strideP,
        }));
      }
    }
    // dScores = P ⊙ (dP − rowsum(dP ⊙ P)), zero where masked.
    be.softmaxBackwardRows(P, dP, B * H * T, S, mask);
    if (q.requiresGrad) {
      const { data: gq, fresh } = gradFor(q);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < group; j++) {
          be.gemm(gemmArgs({
            m: T, n: dk, k: S, a: dP, aOff: pOff(b, j), lda: S, b: K, bOff: kOff(b), ldb: Hk * dk,
            c: gq, cOff: qOff(b, j), ldc: H * dk, alpha: opts.scale, beta: fresh ? 0 : 1, batch: heads.batch, strideA: heads.strideP, strideB: dk, strideC: group * dk,
          }));
        }
      }
    }
    if (k.requiresGrad) {
      const { data: gk, fresh } = gradFor(k);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < group; j++) {
          be.gemm(gemmArgs({
            m: S, n: dk, k: T, a: dP, aOff: pOff(b, j), lda: S, transA: true, b: Q, bOff: qOff(b, j), ldb: H * dk,
            c: gk, cOff: kOff(b), ldc: Hk * dk, alpha: opts.scale, beta: betaFor(fresh, j), batch: heads.batch, strideA: heads.strideP, strideB: group * dk, strideC: dk,
          }));
        }
      }
    }
    scratch.dispose();
  });
  if (!recorded.requiresGrad) probs.dispose();
  return recorded;
}
