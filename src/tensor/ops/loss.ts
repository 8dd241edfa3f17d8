// Losses over logits [N, V]. Both ops keep only one log-sum-exp per row for the backward pass and
// recompute the softmax there, so a large vocabulary costs no extra [N, V] buffer.
import { Tensor, checkFinite, checkIndices, empty, gradOf, opError, record } from '../tensor.js';
import { logSumExp } from './softmax.js';

export const IGNORE_INDEX = -100;

/** Mean cross-entropy over the rows whose target is not `ignoreIndex`. Returns a scalar. */
export function crossEntropy(logits: Tensor, targets: ArrayLike<number>, ignoreIndex = IGNORE_INDEX): Tensor {
  const op = 'crossEntropy';
  if (logits.rank !== 2) throw opError(op, 'logits must be [N, V]', logits);
  const [N, V] = logits.shape;
  if (targets.length !== N) throw opError(op, `${targets.length} targets for ${N} rows`, logits);
  const x = logits.data;
  const lse = new Float64Array(N);
  let count = 0;
  let total = 0;
  for (let r = 0; r < N; r++) {
    const t = targets[r];
    if (t === ignoreIndex) continue;
    if (!Number.isInteger(t) || t < 0 || t >= V) throw opError(op, `target ${t} at row ${r} is outside [0, ${V})`, logits);
    lse[r] = logSumExp(x, r * V, V);
    total += lse[r] - x[r * V + t];
    count++;
  }
  if (!Number.isFinite(total)) checkFinite(op, logits);
  const out = empty([], logits.dtype);
  out.data[0] = count > 0 ? total / count : 0;
  return record([logits], out, (g) => {
    if (count === 0) return;
    const gx = gradOf(logits);
    const s = g[0] / count;
    for (let r = 0; r < N; r++) {
      const t = targets[r];
      if (t === ignoreIndex) continue;
      const base = r * V;
      for (let i = 0; i < V; i++) gx[base + i] += s * Math.exp(x[base + i] - lse[r]);
      gx[base + t] -= s;
    }
  });
}

/** log p(ids[r] | row r) for each row: [N]. The per-token log-probs GRPO and distillation work with. */
export function tokenLogProbs(logits: Tensor, ids: ArrayLike<number>): Tensor {
  const op = 'tokenLogProbs';
  if (logits.rank !== 2) throw opError(op, 'logits must be [N, V]', logits);
  const [N, V] = logits.shape;
  if (ids.length !== N) throw opError(op, `${ids.length} ids for ${N} rows`, logits);
  checkIndices(op, ids, V);
  const x = logits.data;
  const lse = new Float64Array(N);
  const out = empty([N], logits.dtype);
  const o = out.data;
  for (let r = 0; r < N; r++) {
    lse[r] = logSumExp(x, r * V, V);
    o[r] = x[r * V + ids[r]] - lse[r];
  }
  return record([logits], out, (g) => {
    const gx = gradOf(logits);
    for (let r = 0; r < N; r++) {
      const gr = g[r];
      if (gr === 0) continue;
      const base = r * V;
      for (let i = 0; i < V; i++) gx[base + i] -= gr * Math.exp(x[base + i] - lse[r]);
      gx[base + ids[r]] += gr;
    }
  });
}
